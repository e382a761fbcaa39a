"""Fast sentence sampling from an n-gram model: blocks of sentences drawn by a Numba kernel.

``NgramSampler(model).block(seed, index)`` returns block ``index`` of the sentence stream that
``seed`` fixes, as ids or as UTF-8 text. Blocks are independent (each sentence has its own random
stream), so they can be drawn on any number of threads and joined in order: the same seed gives
the same text whatever the thread count. Sampling is exact for the backoff model (temperature 1,
no top-k), except that ``<unk>`` is never emitted. For temperature and top-k use ``lmtool.sampling``.

``FewSentences`` draws the same sentences in Python, for a few of them without Numba's start-up
(``lmtool.compiled``): the same random streams, float64 sums in the same order, and ``10.0 ** x``
from the same C library as the kernel's.
"""

from bisect import bisect_right
from itertools import accumulate

import numpy as np

from ..vocab import BOS, EOS, UNK, token_pool
from .trie import find_children

BLOCK = 4096
"""Sentences per block."""


class NgramSampler:
    """Samples sentences from ``model`` (an ``NgramModel``); at most ``max_len`` words each."""

    def __init__(self, model, max_len=200, block=BLOCK):
        if model.kind != "ngram":
            raise ValueError(f"NgramSampler needs an n-gram model, found a {model.kind} model")
        from ..kernels.ngram_sample import sibling_cumsum

        self.model = model
        self.max_len = int(max_len)
        self.size = int(block)
        self.cum = np.empty(len(model.word), np.float64)
        sibling_cumsum(model.prob, model.child_start, len(model.vocab), BOS, self.cum)
        self.pool, self.offsets = token_pool(model.vocab.tokens)
        self.widest = int(np.diff(self.offsets).max())

    def ids(self, seed, index):
        """(ids: int32[n], lengths: int32[block]) of block ``index`` of the stream fixed by ``seed``."""
        from ..kernels.ngram_sample import sample_sentences

        m = self.model
        ids = np.empty(self.size * self.max_len, np.int32)
        lengths = np.empty(self.size, np.int32)
        n = sample_sentences(index * self.size, self.size, np.uint64(seed), self.max_len, m.order, m.child_start,
                             m.word, self.cum, len(m.vocab), BOS, EOS, UNK, ids, lengths)
        return ids[:n], lengths

    def text(self, ids, lengths):
        """UTF-8 bytes of the sentences: tokens joined by spaces, one sentence per line."""
        from ..kernels.ngram_sample import ids_to_text

        out = np.empty(len(ids) * (self.widest + 1) + len(lengths), np.uint8)
        n = ids_to_text(ids, lengths, self.pool, self.offsets, out)
        return out[:n].tobytes()


_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class FewSentences:
    """``NgramSampler.ids`` in Python, for a few sentences (about ``sentences`` at a time): the kernel's
    draws step by step (``kernels.ngram_sample``), a sibling group's cumulative masses summed when first
    visited."""

    def __init__(self, model, max_len=200, sentences=1):
        self.model = model
        self.max_len = int(max_len)
        self.vocab_size = len(model.vocab)
        self.groups = {}
        self.starts = model.child_starts(sentences * 8 * model.order)  # about the searches ``sentences`` take

    def ids(self, seed, first, n):
        """(ids: int32[k], lengths: int32[n]) of sentences ``first .. first + n - 1`` of the stream of ``seed``."""
        m = self.model
        out, lengths = [], []
        for s in range(first, first + n):
            self.state = ((seed * _GOLDEN) & _MASK) ^ (((s + 1) * 0xD1B54A32D192ED03) & _MASK)
            self._uniform()
            nodes = [BOS] if m.order > 1 else []
            length = 0
            while length < self.max_len:
                w = self._draw(nodes)
                while w == UNK or w == BOS:
                    w = self._draw(nodes)
                if w == EOS:
                    break
                out.append(w)
                length += 1
                if m.order > 1:
                    fresh = [w]
                    while len(fresh) < m.order - 1 and len(fresh) <= len(nodes):
                        g = self._child(nodes[len(fresh) - 1], w)
                        if g < 0:
                            break
                        fresh.append(g)
                    nodes = fresh
            lengths.append(length)
        return np.array(out, np.int32), np.array(lengths, np.int32)

    def _uniform(self):
        """splitmix64, as ``kernels.ngram_sample._next_uniform``."""
        self.state = (self.state + _GOLDEN) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        return float(z >> 11) * (1.0 / 9007199254740992.0)

    def _child(self, node, w):
        return int(find_children([node], [w], self.starts, self.model.word)[0])

    def _group(self, node):
        """(first node, cumulative masses) of ``node``'s children, or of the unigrams for None."""
        group = self.groups.get(node)
        if group is None:
            m = self.model
            if node is None:
                masses = [0.0 if w == BOS else 10.0 ** float(p) for w, p in enumerate(m.prob[:self.vocab_size])]
                group = (0, list(accumulate(masses)))
            else:
                lo, hi = int(self.starts[node]), int(self.starts[node + 1])
                group = (lo, list(accumulate(10.0 ** float(p) for p in m.prob[lo:hi])))
            self.groups[node] = group
        return group

    @staticmethod
    def _pick(cum, u):
        """``kernels.ngram_sample._pick`` within one group: the first index whose mass passes u."""
        return min(bisect_right(cum, u), len(cum) - 1)

    def _draw(self, nodes):
        """One token from p(. | context whose suffix nodes are ``nodes``), as ``_draw`` in the kernel."""
        top = len(nodes) - 1
        level = top
        word = self.model.word
        while True:
            w = -1
            while level >= 0:
                lo, cum = self._group(nodes[level])
                u = self._uniform()
                if cum and u < cum[-1]:
                    w = int(word[lo + self._pick(cum, u)])
                    break
                level -= 1
            if w < 0:
                _, cum = self._group(None)
                w = self._pick(cum, self._uniform() * cum[-1])
            m = level + 1
            while m <= top:
                if self._child(nodes[m], w) >= 0:
                    break
                m += 1
            if m > top:
                return w
            level = m - 1
