"""NgramModel: a backoff n-gram model as a compact trie, scored in batches by Numba kernels.

The trie's levels are the n-gram orders, sorted by (parent, word); nodes are numbered globally
(unigram node i is word i). On disk each node costs its word (uint16 when the vocabulary allows),
its log10 probability (float32), and below the highest order its log10 backoff (float32) and its
number of children (one byte, with larger counts kept aside) — smaller than KenLM's unquantised
trie. Loading memory-maps the arrays; the children's offsets are rebuilt with one cumulative sum
when first needed (scoring, generation), so a model just written is not expanded in memory.
"""

import numpy as np

from .. import modelfile
from ..errors import LmtoolError
from ..language_model import LanguageModel, Scores, check_batch, check_ids
from ..vocab import BOS, EOS, Vocabulary
from .assemble import SMALL_CHILDREN


def write_model_file(path, vocab, sizes, meta, arrays):
    """Write an n-gram model file from its arrays (as ``ngram.assemble.model_arrays`` gives them)."""
    modelfile.write(path, NgramModel.kind, dict(meta, level=vocab.level),
                    {"vocab": np.frombuffer(vocab.to_bytes(), np.uint8), "sizes": np.asarray(sizes, np.int64),
                     **arrays})


class NgramModel(LanguageModel):
    """A backoff n-gram model of order ``order`` over ``vocab``.

    Arrays (global node numbering, T nodes in all, C = T minus the highest order's nodes):
    ``word``: uint16|uint32[T], ``prob``: float32[T] log10 p(w | h), ``backoff``: float32[C] log10
    b(h), ``children``: int64[C] number of children of each node (given as such, or as the file
    keeps it: ``(uint8[C], big_at, big)``, counts of 255 and more kept aside; expanded on first
    use). ``sizes``: nodes per order.
    """

    kind = "ngram"

    def __init__(self, vocab, sizes, word, prob, backoff, children, meta):
        self.vocab = vocab
        self.sizes = [int(s) for s in sizes]
        self.order = len(self.sizes)
        self.word = word
        self.prob = prob
        self.backoff = backoff
        if isinstance(children, tuple):
            self._stored_children = children
        else:
            big = np.flatnonzero(children >= SMALL_CHILDREN)
            self._stored_children = (np.minimum(children, SMALL_CHILDREN).astype(np.uint8), big.astype(np.int64),
                                     children[big].astype(np.int64))
        self.meta = meta
        self.normalized = bool(meta.get("normalized", True))
        self.quantized = None  # the arrays of its quantised file form (``ngram.quantize``), if it has one
        self._children = self._child_start = self._hashed = None
        small, big_at, big = self._stored_children
        total = int(small.sum(dtype=np.int64)) + int((big - small[big_at]).sum())
        if len(word) != sum(self.sizes) or len(small) != sum(self.sizes[:-1]) or total + self.sizes[0] != len(word):
            raise ValueError("inconsistent n-gram arrays")

    @property
    def children(self):
        if self._children is None:
            small, big_at, big = self._stored_children
            children = small.astype(np.int64)
            children[big_at] = big
            self._children = children
        return self._children

    @property
    def child_start(self):
        """int64[C+1]: the first child of each node (one order higher); the last entry is T."""
        if self._child_start is None:
            start = np.empty(len(self.children) + 1, np.int64)
            start[0] = self.sizes[0]
            np.cumsum(self.children, out=start[1:])
            start[1:] += self.sizes[0]
            self._child_start = start
        return self._child_start

    # The model file

    def save(self, path):
        """Write the model file (see ``lmtool.modelfile``), quantised if the model is (``ngram.quantize``)."""
        if self.quantized is not None:
            from .quantize import save

            return save(self, path)
        small, big_at, big = self._stored_children
        arrays = {"word": self.word, "prob": self.prob, "backoff": self.backoff, "children": small,
                  "children_big_at": big_at, "children_big": big}
        write_model_file(path, self.vocab, self.sizes, self.meta, arrays)

    @classmethod
    def from_file(cls, model):
        """Rebuild from an opened ``ModelFile`` of kind ``ngram``."""
        try:
            if "quantized" in model.meta:
                from .quantize import from_file

                return from_file(model)
            vocab = Vocabulary.from_bytes(model["vocab"], model.meta.get("level", "word"))
            children = (model["children"], model["children_big_at"], model["children_big"])
            if children[1].size and (children[1].min() < 0 or children[1].max() >= len(children[0])):
                raise IndexError("children_big_at out of range")
            return cls(vocab, model["sizes"], model["word"], model["prob"], model["backoff"], children, model.meta)
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
