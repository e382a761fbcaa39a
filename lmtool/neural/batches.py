"""Sentences laid out for recurrent networks: one token stream cut into B columns.

Sentence at a time (``sentence_stream``), each sentence contributes inputs ``<s> w1 .. wk`` and
targets ``w1 .. wk </s>``; the state is reset where an input is ``<s>``, so every sentence is
modelled from a fresh state, exactly as it is scored. As running text (``text_stream``, ``train
--stream``), ``</s>`` is the newline: the targets are the same, but each line's first input is the
newline that ended the line before, and the state is reset only where a file starts, as char-rnn and
PyTorch's word_language_model read text. A file starts as if after a line end, from a fresh state
fed the newline: ``<s>`` would be an input seen once per file and epoch, its embedding left near its
random start, and a text generated or scored from it would begin with noise. Columns are contiguous
slices of the stream, so a column's sentences follow one another.
"""

import numpy as np

from ..vocab import BOS, EOS


def sentence_stream(ids, lengths, start=BOS):
    """(x, y: int32[n+S], reset: bool[n+S]) for sentences given as ids and lengths, each read from
    ``start`` (a stream model's lines, scored each on its own, start from the newline)."""
    n, S = len(ids), len(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    x = np.empty(n + S, np.int32)
    y = np.empty(n + S, np.int32)
    is_start = np.zeros(n + S, bool)
    is_start[starts] = True
    x[is_start] = start
    x[~is_start] = ids
    ends = starts + lengths
    is_end = np.zeros(n + S, bool)
    is_end[ends] = True
    y[is_end] = EOS
    y[~is_end] = ids
    return x, y, is_start


def text_stream(ids, lengths, file_starts=(0,)):
    """(x, y: int32[n+S], reset: bool[n+S]) for lines of running text: targets ``w .. </s>`` line after
    line, each input the token before its target, the newline ``</s>`` (and a reset) at each file's start.

    file_starts: index of the first line of each file (``EncodedCorpus.file_starts``).
    """
    x, y, is_start = sentence_stream(ids, lengths)
    x[1:] = y[:-1]
    first = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    is_start[:] = False
    at = first[np.union1d(np.asarray(file_starts, np.int64), [0])] if len(lengths) else np.zeros(0, np.int64)
    is_start[at] = True
    x[at] = EOS
    return x, y, is_start


def columns(x, y, reset, batch):
    """Cut the stream into ``batch`` columns of equal length (the tail is padded: target -1).

    Returns (x, y: int32[Tc, B], reset: bool[Tc, B]), time-major.
    """
    total = len(x)
    length = -(-total // batch)
    pad = length * batch - total

    def shape(a, fill):
        return np.concatenate([a, np.full(pad, fill, a.dtype)]).reshape(batch, length).T.copy()

    return shape(x, EOS), shape(y, -1), shape(reset, True)


def packed_sentences(lengths, batch):
    """Assign sentences to ``batch`` columns so columns have similar total length.

    Returns (column: int64[S], offset: int64[S], column_lengths: int64[B]): sentence s occupies
    stream positions offset[s] .. offset[s] + lengths[s] (inclusive of its </s>) of column[s].
    Longest sentences are placed first, each into the currently shortest column.
    """
    import heapq

    S = len(lengths)
    order = np.argsort(-lengths, kind="stable")
    heap = [(0, b) for b in range(batch)]
    column = np.empty(S, np.int64)
    offset = np.empty(S, np.int64)
    for s in order:
        used, b = heapq.heappop(heap)
        column[s] = b
        offset[s] = used
        heapq.heappush(heap, (used + int(lengths[s]) + 1, b))
    column_lengths = np.zeros(batch, np.int64)
    for used, b in heap:
        column_lengths[b] = used
    return column, offset, column_lengths
