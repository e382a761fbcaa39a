"""Fast sentence sampling from an n-gram model: blocks of sentences drawn by a Numba kernel.

``NgramSampler(model).block(seed, index)`` returns block ``index`` of the sentence stream that
``seed`` fixes, as ids or as UTF-8 text. Blocks are independent (each sentence has its own random
stream), so they can be drawn on any number of threads and joined in order: the same seed gives
the same text whatever the thread count. Sampling is exact for the backoff model (temperature 1,
no top-k), except that ``<unk>`` is never emitted. For temperature and top-k use ``lmtool.sampling``.
"""

import numpy as np

from ..kernels.ngram_sample import ids_to_text, sample_sentences, sibling_cumsum
from ..vocab import BOS, EOS, UNK, token_pool

BLOCK = 4096
"""Sentences per block."""


class NgramSampler:
    """Samples sentences from ``model`` (an ``NgramModel``); at most ``max_len`` words each."""

    def __init__(self, model, max_len=200, block=BLOCK):
        if model.kind != "ngram":
            raise ValueError(f"NgramSampler needs an n-gram model, found a {model.kind} model")
        self.model = model
        self.max_len = int(max_len)
        self.size = int(block)
        self.cum = np.empty(len(model.word), np.float64)
        sibling_cumsum(model.prob, model.child_start, len(model.vocab), BOS, self.cum)
        self.pool, self.offsets = token_pool(model.vocab.tokens)
        self.widest = int(np.diff(self.offsets).max())

    def ids(self, seed, index):
        """(ids: int32[n], lengths: int32[block]) of block ``index`` of the stream fixed by ``seed``."""
        m = self.model
        ids = np.empty(self.size * self.max_len, np.int32)
        lengths = np.empty(self.size, np.int32)
        n = sample_sentences(index * self.size, self.size, seed, self.max_len, m.order, m.child_start, m.word,
                             self.cum, len(m.vocab), BOS, EOS, UNK, ids, lengths)
        return ids[:n], lengths

    def text(self, ids, lengths):
        """UTF-8 bytes of the sentences: tokens joined by spaces, one sentence per line."""
        out = np.empty(len(ids) * (self.widest + 1) + len(lengths), np.uint8)
        n = ids_to_text(ids, lengths, self.pool, self.offsets, out)
        return out[:n].tobytes()
