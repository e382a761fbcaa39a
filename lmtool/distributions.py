"""Every model's whole next-token distribution at every token position of a batch of sentences.

A log-linear mixture normalises over the vocabulary at each position, so scoring one needs each
member's full distribution there, not only the probability of the word that came. ``log10_rows``
gives them for any model kind: an n-gram model through a kernel over its trie, a recurrent network
stepping a batch of packed sentences (state reset at each sentence start, as it scores), a mixture
from its members; any other ``LanguageModel`` through ``begin``/``distribution``/``advance``.
Rows follow ``Scores.token``: each sentence's words, then its ``</s>``.
"""

import numpy as np

from .language_model import check_batch

ROW_BUDGET = 1 << 22
"""Values (positions x vocabulary) held at once by ``log10_groups``: 32 MB of float64."""
COLUMNS = 64
"""Sentences a recurrent network steps side by side."""


def sentence_groups(lengths, width, budget=ROW_BUDGET):
    """Consecutive groups of sentences whose token positions times ``width`` come to about ``budget``
    (one sentence at least): a list of (first sentence, end, first word, end word, first token, end
    token)."""
    per_sentence = (np.asarray(lengths, np.int64) + 1) * width
    ends = []
    s, used = 0, 0
    for e, size in enumerate(per_sentence.tolist()):
        if e > s and used + size > budget:
            ends.append(e)
            s, used = e, 0
        used += size
    ends.append(len(per_sentence))
    word_at = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    token_at = word_at + np.arange(len(lengths) + 1)
    starts = [0] + ends[:-1]
    return [(s, e, int(word_at[s]), int(word_at[e]), int(token_at[s]), int(token_at[e]))
            for s, e in zip(starts, ends) if e > s]


def log10_groups(model, ids, lengths, budget=ROW_BUDGET):
    """Yield ``(lo, hi, rows)`` for consecutive groups of sentences: ``rows`` float[hi - lo, V] are
    the log10 distributions at token positions lo..hi (``log10_rows``); a group holds about
    ``budget`` values (one sentence at least)."""
    ids, lengths = check_batch(ids, lengths, len(model.vocab))
    for s, e, wlo, whi, lo, hi in sentence_groups(lengths, len(model.vocab), budget):
        yield lo, hi, log10_rows(model, ids[wlo:whi], lengths[s:e])


def log10_rows(model, ids, lengths):
    """float[n + S, V]: log10 p(w | history) for every token w of ``model``'s vocabulary at each
    token position of the sentences (ids: int32[n], lengths: int32[S]); -inf for ``<s>``."""
    ids, lengths = check_batch(ids, lengths, len(model.vocab))
    if hasattr(model, "log10_rows"):
        return model.log10_rows(ids, lengths)
    if model.kind == "ngram":
        return _ngram_rows(model, ids, lengths)
    if model.kind == "recurrent":
        return _recurrent_rows(model, ids, lengths)
    return _stepped_rows(model, ids, lengths)


def _ngram_rows(model, ids, lengths):
    from .kernels.ngram_context import position_logprobs
    from .vocab import BOS

    out = np.empty((len(ids) + len(lengths), len(model.vocab)), np.float64)
    position_logprobs(ids, lengths, model.order, model.child_start, model.word, model.prob, model.backoff, BOS,
                      out)
    return out


def _packed(lengths, columns):
    """Sentences packed into ``columns`` streams: (time: int64[N], column: int64[N]) of each token
    position (``Scores.token`` order) and the number of steps."""
    from .neural.batches import packed_sentences

    column, offset, column_lengths = packed_sentences(lengths, columns)
    n = int(lengths.sum()) + len(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    col = np.repeat(column, lengths + 1)
    time = np.repeat(offset - starts, lengths + 1) + np.arange(n)
    return time, col, int(column_lengths.max())


def _recurrent_rows(model, ids, lengths):
    """A recurrent network's distributions: each step feeds one token per stream and reads the
    softmax over the whole vocabulary (the class softmax's too)."""
    from .neural.batches import sentence_stream

    network = model.network
    n = len(ids) + len(lengths)
    out = np.empty((n, len(model.vocab)), np.float32)
    if not len(lengths):
        return out
    columns = max(1, min(COLUMNS, len(lengths)))
    x, _, reset = sentence_stream(ids, lengths, model.start)
    time, col, steps = _packed(lengths, columns)
    X = np.zeros((steps, columns), np.int32)
    R = np.ones((steps, columns), bool)
    where = np.full((steps, columns), -1, np.int64)
    X[time, col], R[time, col], where[time, col] = x, reset, np.arange(n)
    state = network.init_state(columns)
    for t in range(steps):
        state.reset_rows(R[t])
        state = network.step(X[t], state)
        probs = network.next_distribution(state)
        used = where[t] >= 0
        out[where[t][used]] = probs[used]
    with np.errstate(divide="ignore"):
        np.log10(out, out=out)
    return out


def _stepped_rows(model, ids, lengths):
    """Any ``LanguageModel``: all sentences stepped side by side through ``begin``, ``distribution``
    and ``advance``."""
    from .vocab import EOS

    S = len(lengths)
    n = len(ids) + S
    out = np.empty((n, len(model.vocab)), np.float64)
    if not S:
        return out
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    word_starts = starts - np.arange(S)
    state = model.begin([np.zeros(0, np.int32)] * S)
    for t in range(int(lengths.max()) + 1):
        live = lengths >= t
        probs = model.distribution(state)
        rows = starts[live] + t
        out[rows] = probs[live]
        tokens = np.where(lengths > t, ids[np.minimum(word_starts + t, max(len(ids) - 1, 0))] if len(ids) else EOS,
                          EOS).astype(np.int32)
        state = model.advance(state, tokens)
    with np.errstate(divide="ignore"):
        np.log10(out, out=out)
    return out
