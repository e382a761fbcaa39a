"""NgramModel: a backoff n-gram model as a compact trie, scored in batches by Numba kernels, or
for small inputs by a NumPy search of the trie (``ngram.trie``, the same numbers).

The trie's levels are the n-gram orders, sorted by (parent, word); nodes are numbered globally
(unigram node i is word i). On disk each node costs its word (uint16 when the vocabulary allows),
its log10 probability (float32), and below the highest order its log10 backoff (float32) and its
number of children (one byte, with larger counts kept aside) — smaller than KenLM's unquantised
trie. Loading memory-maps the arrays; the children's offsets are rebuilt with one cumulative sum
when first needed (scoring, generation), so a model just written is not expanded in memory.

Large inputs are scored through hash tables built from the trie when the kernels first need them
(``kernels.ngram_hash``: 16 bytes a slot, 54 MB for the KJV 5-gram, about 0.1 s to build). They
are not stored in the model file, which would grow from 15.8 MB to about 70 MB: the NumPy search
answers small inputs without them, and an input large enough to load Numba pays for the build.
"""

import threading

import numpy as np

from .. import compiled, modelfile
from ..errors import LmtoolError
from ..language_model import LanguageModel, Scores, check_ids
from ..vocab import BOS, EOS, Vocabulary
from .assemble import SMALL_CHILDREN
from .trie import ChildStarts, context_nodes, next_logprobs, score_sentences

FEW_ROWS = 32
"""Generation steps of at most this many rows find their contexts in NumPy while Numba is not loaded."""
FEW_LOOKUPS = 320
"""Up to this many trie searches (a batch of about 64 tokens of a 5-gram) find children's ranges node
by node (``trie.ChildStarts``, a few us each) while the whole ``child_start`` array is not built."""


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
        self._children = self._child_start = self._hashed = self._few_starts = None
        self._building = threading.Lock()
        self._numpy_tokens = 0
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
            small, big_at, big = self._stored_children
            start = np.empty(len(small) + 1, np.int64)
            start[0] = 0
            np.cumsum(small, dtype=np.int64, out=start[1:])
            # then, in one pass, the unigrams before the first child and, past each count of 255 or more,
            # what its byte left out
            order = np.argsort(big_at, kind="stable")
            cuts = [0, *(big_at[order] + 1).tolist(), len(start)]
            added = np.cumsum([self.sizes[0], *(big[order] - small[big_at[order]]).tolist()]).tolist()
            for a, b, extra in zip(cuts[:-1], cuts[1:], added):
                start[a:b] += extra
            self._child_start = start
        return self._child_start

    def child_starts(self, lookups):
        """``child_start``, or for about ``lookups`` searches while it is not built, ``trie.ChildStarts``."""
        if self._child_start is not None or lookups > FEW_LOOKUPS:
            return self.child_start
        if self._few_starts is None:
            self._few_starts = ChildStarts(self.sizes[0], *self._stored_children)
        return self._few_starts

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

    def numpy_pays(self, ids, lengths):
        """While the hash table is not built, until the NumPy path has scored ``NGRAM_NUMPY_TOKENS`` tokens
        in all (many small calls add up to a large input), for sentences of at most ``NGRAM_NUMPY_LONGEST``
        words (it walks all sentences position by position)."""
        n_tokens = len(ids) + len(lengths)
        if (self._hashed is not None or self._numpy_tokens + n_tokens > compiled.NGRAM_NUMPY_TOKENS
                or (len(lengths) and lengths.max() > compiled.NGRAM_NUMPY_LONGEST)):
            return False
        self._numpy_tokens += n_tokens  # the same numbers either way: a race between threads is harmless
        return True

    def prepare(self, input_bytes):
        if (compiled.expected_tokens(input_bytes, self.vocab.level) or 0) > compiled.NGRAM_NUMPY_TOKENS:
            self._hash_table()

    def score_ids_numpy(self, ids, lengths):
        starts = self.child_starts((len(ids) + len(lengths)) * self.order)
        sentence, token, ngram_length = score_sentences(ids, lengths, self.order, starts, self.word, self.prob,
                                                        self.backoff, BOS, EOS)
        return Scores(sentence, token, ngram_length)

    def score_ids_compiled(self, ids, lengths):
        from ..kernels.ngram_hash import score_sentences_hashed

        n = len(ids) + len(lengths)
        token = np.empty(n, np.float32)
        ngram_length = np.empty(n, np.int8)
        start, bits, table, values = self._hash_table()
        sentence = score_sentences_hashed(ids, lengths, self.order, start, bits, table, values, BOS, EOS,
                                          token, ngram_length)
        return Scores(sentence, token, ngram_length)

    def _hash_table(self):
        """The scoring hash table (see ``kernels.ngram_hash``), built on first use (~20 ns per n-gram),
        once whichever thread asks first."""
        if self._hashed is None:
            with self._building:
                if self._hashed is None:
                    self._hashed = self._build_hash_table()
        return self._hashed

    def _build_hash_table(self):
        from ..kernels.ngram_hash import EMPTY, build_table, region_sizes

        regions = region_sizes(self.sizes)
        start = np.concatenate([[0], np.cumsum(regions)[:-1]]).astype(np.int64)
        bits = np.array([int(r).bit_length() - 1 for r in regions], np.int64)
        n = 2 * int(regions.sum())
        table = np.full(n + 8, EMPTY, np.uint64)
        table = table[(-table.ctypes.data) % 64 // 8:][:n]  # on a cache line: an entry never straddles two
        values = table.view(np.float32)
        build_table(np.asarray(self.sizes, np.int64), regions, self.word, self.prob, self.backoff,
                    self.child_start, table, values)
        return start, bits, table, values

    # Generation

    def begin(self, prefixes):
        keep = self.order - 1
        return [np.concatenate([[BOS], check_ids(p, len(self.vocab))]).astype(np.int32)[-keep:] if keep
                else np.zeros(0, np.int32) for p in prefixes]

    def _queries(self, rows):
        """(context_nodes, next_logprobs, child starts) for ``rows`` generation steps: NumPy while
        Numba is not loaded and the rows are few, else the kernels."""
        if rows <= FEW_ROWS and not compiled.numba_loaded():
            return context_nodes, next_logprobs, self.child_starts(rows * self.order ** 2)
        from ..kernels import ngram_query

        return ngram_query.context_nodes, ngram_query.next_logprobs, self.child_start

    def history_lengths(self, state):
        """int32[B]: of each history of ``state``, how many of its last words the model knows as one
        n-gram (at most order - 1), 0 for a history of ``<s>`` alone: what ``ngram_length`` of the
        history's last token says, capped at order - 1 (see ``mixture.history_rows``)."""
        find, _, starts = self._queries(len(state))
        out = np.zeros(len(state), np.int32)
        for row, history in enumerate(state):
            history = check_ids(history, len(self.vocab))
            if not (len(history) == 1 and history[0] == BOS):
                out[row] = len(find(history, self.order, starts, self.word))
        return out

    def distribution(self, state):
        find, fill, starts = self._queries(len(state))
        out = np.empty((len(state), len(self.vocab)), np.float64)
        for row, history in enumerate(state):
            history = check_ids(history, len(self.vocab))
            nodes = find(history, self.order, starts, self.word)
            fill(nodes, len(self.vocab), starts, self.word, self.prob, self.backoff, BOS, out[row])
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
