"""NgramModel: a backoff n-gram model as a compact trie, scored in batches by Numba kernels.

The trie's levels are the n-gram orders, sorted by (parent, word); nodes are numbered globally
(unigram node i is word i). On disk each node costs its word (uint16 when the vocabulary allows),
its log10 probability (float32), and below the highest order its log10 backoff (float32) and its
number of children (one byte, with larger counts kept aside) — smaller than KenLM's unquantised
trie. Loading memory-maps the arrays and rebuilds the children's offsets with one cumulative sum.
"""

import numpy as np

from .. import modelfile
from ..errors import LmtoolError
from ..language_model import LanguageModel, Scores, check_batch, check_ids
from ..vocab import BOS, EOS, Vocabulary

LOG10_ZERO = -99.0


class NgramModel(LanguageModel):
    """A backoff n-gram model of order ``order`` over ``vocab``.

    Arrays (global node numbering, T nodes in all, C = T minus the highest order's nodes):
    ``word``: uint16|uint32[T], ``prob``: float32[T] log10 p(w | h), ``backoff``: float32[C] log10
    b(h), ``children``: int64[C] number of children of each node. ``sizes``: nodes per order.
    """

    kind = "ngram"

    def __init__(self, vocab, sizes, word, prob, backoff, children, meta):
        self.vocab = vocab
        self.sizes = [int(s) for s in sizes]
        self.order = len(self.sizes)
        self.word = word
        self.prob = prob
        self.backoff = backoff
        self.children = children
        self.meta = meta
        self.normalized = bool(meta.get("normalized", True))
        start = np.empty(len(children) + 1, np.int64)
        start[0] = self.sizes[0]
        np.cumsum(children, out=start[1:])
        start[1:] += self.sizes[0]
        self.child_start = start
        self._hashed = None
        if len(word) != sum(self.sizes) or len(children) != sum(self.sizes[:-1]) or start[-1] != len(word):
            raise ValueError("inconsistent n-gram arrays")

    # Building

    @classmethod
    def from_estimate(cls, vocab, counts, estimate, meta):
        """Assemble the trie from ``NgramCounts`` and the smoothing ``Estimate``."""
        N = counts.order
        word_dtype = np.uint16 if len(vocab) <= 1 << 16 else np.uint32
        word = np.concatenate(counts.word).astype(word_dtype)
        with np.errstate(divide="ignore"):
            prob = np.concatenate([np.minimum(0.0, np.log10(p)) for p in estimate.prob])
            backoff = (np.concatenate([np.log10(b) for b in estimate.backoff]) if N > 1
                       else np.zeros(0))
        prob = np.maximum(prob, LOG10_ZERO).astype(np.float32)
        backoff = np.maximum(backoff, LOG10_ZERO).astype(np.float32)
        children = [np.bincount(counts.parent[n], minlength=counts.sizes()[n - 1]) for n in range(1, N)]
        children = np.concatenate(children).astype(np.int64) if N > 1 else np.zeros(0, np.int64)
        meta = dict(meta, order=N, sizes=counts.sizes(), normalized=estimate.normalized)
        return cls(vocab, counts.sizes(), word, prob, backoff, children, meta)

    # The model file

    def save(self, path):
        """Write the model file (see ``lmtool.modelfile``)."""
        small = np.minimum(self.children, 255).astype(np.uint8)
        big = np.flatnonzero(self.children >= 255)
        modelfile.write(path, self.kind, dict(self.meta, level=self.vocab.level), {
            "vocab": np.frombuffer(self.vocab.to_bytes(), np.uint8),
            "sizes": np.asarray(self.sizes, np.int64),
            "word": self.word,
            "prob": self.prob,
            "backoff": self.backoff,
            "children": small,
            "children_big_at": big.astype(np.int64),
            "children_big": self.children[big].astype(np.int64),
        })

    @classmethod
    def from_file(cls, model):
        """Rebuild from an opened ``ModelFile`` of kind ``ngram``."""
        try:
            vocab = Vocabulary.from_bytes(model["vocab"], model.meta.get("level", "word"))
            children = model["children"].astype(np.int64)
            children[model["children_big_at"]] = model["children_big"]
            return cls(vocab, model["sizes"], model["word"], model["prob"], model["backoff"], children,
                       model.meta)
        except (KeyError, ValueError, IndexError) as err:
            raise LmtoolError(f"damaged n-gram model ({err}); rebuild it", model.path) from None

    # Scoring

    def score_ids(self, ids, lengths):
        from ..kernels.ngram_hash import score_sentences_hashed

        ids, lengths = check_batch(ids, lengths, len(self.vocab))
        n = len(ids) + len(lengths)
        token = np.empty(n, np.float32)
        ngram_length = np.empty(n, np.int8)
        start, bits, table, values = self._hash_table()
        sentence = score_sentences_hashed(ids, lengths, self.order, start, bits, table, values, BOS, EOS,
                                          token, ngram_length)
        return Scores(sentence, token, ngram_length)

    def worker(self):
        self._hash_table()  # built once, here, rather than raced for by the threads
        return self

    def _hash_table(self):
        """The scoring hash table (see ``kernels.ngram_hash``), built on first use (~20 ns per n-gram)."""
        if self._hashed is None:
            from ..kernels.ngram_hash import EMPTY, build_table, region_sizes

            regions = region_sizes(self.sizes)
            start = np.concatenate([[0], np.cumsum(regions)[:-1]]).astype(np.int64)
            bits = np.array([int(r).bit_length() - 1 for r in regions], np.int64)
            table = np.full(2 * int(regions.sum()), EMPTY, np.uint64)
            values = table.view(np.float32)
            build_table(np.asarray(self.sizes, np.int64), regions, self.word, self.prob, self.backoff,
                        self.child_start, table, values)
            self._hashed = (start, bits, table, values)
        return self._hashed

    # Generation

    def begin(self, prefixes):
        keep = self.order - 1
        return [np.concatenate([[BOS], check_ids(p, len(self.vocab))]).astype(np.int32)[-keep:] if keep
                else np.zeros(0, np.int32) for p in prefixes]

    def distribution(self, state):
        from ..kernels.ngram_query import context_nodes, next_logprobs

        out = np.empty((len(state), len(self.vocab)), np.float64)
        for row, history in enumerate(state):
            history = check_ids(history, len(self.vocab))
            nodes = context_nodes(history, self.order, self.child_start, self.word)
            next_logprobs(nodes, len(self.vocab), self.child_start, self.word, self.prob, self.backoff, BOS, out[row])
        return 10.0 ** out

    def advance(self, state, tokens):
        keep = self.order - 1
        tokens = check_ids(tokens, len(self.vocab))
        return [np.append(history, np.int32(t))[-keep:] if keep else history[:0]
                for history, t in zip(state, tokens)]

    # Inspection

    def ngrams(self, n):
        """int32[M_n, n]: the words of every n-gram of order n, in trie order."""
        rows = np.arange(self.sizes[0], dtype=np.int32)[:, None]
        for k in range(2, n + 1):
            parent = np.repeat(np.arange(len(rows)), self.children[self.level(k - 1)])
            rows = np.column_stack([rows[parent], self.word[self.level(k)].astype(np.int32)])
        return rows

    def level(self, n):
        """Slice of the global node numbering holding order n."""
        lo = sum(self.sizes[:n - 1])
        return slice(lo, lo + self.sizes[n - 1])
