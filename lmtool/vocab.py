"""Token <-> id maps: ``<unk>``, ``<s>``, ``</s>`` first, then words by falling frequency.

Frequency order (ties broken by the token's code points) makes ids independent of the order the
text was read in, keeps frequent words' ids small, and gives class-factored softmax layers their
frequency bins for free. Every model file carries its vocabulary.
"""

import threading
from itertools import repeat

import numpy as np

from .errors import LmtoolError

UNK, BOS, EOS = 0, 1, 2
SPECIALS = ("<unk>", "<s>", "</s>")
_TABLE_BUILT = threading.Lock()  # a Vocabulary's lookup table is built once, whichever thread asks first
_NEWLINE, _GAP = -1, -2  # codes of encode_python's line feeds and of the empty strings between two separators
_SEPARATORS = str.maketrans("\t\r", "  ")


class Vocabulary:
    """An immutable list of tokens with its inverse map; ids 0, 1, 2 are ``<unk>``, ``<s>``, ``</s>``."""

    def __init__(self, tokens, level="word"):
        tokens = list(tokens)
        if tuple(tokens[:3]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tuple(tokens[:3])}")
        self.tokens = tokens
        self.level = level
        self.index = dict(zip(tokens, range(len(tokens))))
        self._table = None
        if len(self.index) != len(tokens):
            raise ValueError("duplicate tokens in vocabulary")

    def __len__(self):
        return len(self.tokens)

    def __contains__(self, token):
        return token in self.index

    def encode(self, tokens):
        """Ids of ``tokens`` (a list of str) as int32, ``<unk>`` for tokens not in the vocabulary."""
        return np.fromiter(map(self.index.get, tokens, repeat(UNK)), np.int32, len(tokens))

    def encode_bytes(self, data):
        """Ids and tokens per line of UTF-8 text ``data`` (whole lines), through a Numba kernel, or
        for small text while the kernels are not loaded, in Python (``encode_python``: the same ids).

        Returns ``(ids: int32[k], lengths: int32[lines])``. Safe on several threads at once: the
        table is built once, and encoding only reads it.
        """
        if self._table is None:
            from . import compiled

            if len(data) <= compiled.TOKENISER_PYTHON_BYTES or not compiled.numba_loaded():
                return self.encode_python(data)
            with _TABLE_BUILT:
                if self._table is None:
                    self._table = token_table(self.tokens, self.level)
        return self._table.encode(data, grow=False)

    def encode_python(self, data):
        """``encode_bytes`` without kernels: ``str.split`` and a dict, about 0.1-0.2 us per token.

        Tokens are split as the kernels split them (space, tab and CR between words; every
        character at char level), ``<s>`` and ``</s>`` are dropped, unknown tokens are ``<unk>``.
        """
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
        n_lines = text.count("\n") + (0 if not text or text.endswith("\n") else 1)
        lookup = self._lookup_with_separators()
        if self.level == "char":
            words = text
        else:
            if "\t" in text or "\r" in text:
                text = text.translate(_SEPARATORS)
            words = text.replace("\n", " \n ").split(" ")
        codes = np.fromiter(map(lookup.get, words, repeat(UNK)), np.int32, len(words))
        line = np.cumsum(codes == _NEWLINE)
        keep = (codes >= 0) & (codes != BOS) & (codes != EOS) if self.level != "char" else codes >= 0
        return codes[keep], np.bincount(line[keep], minlength=n_lines).astype(np.int32)[:n_lines]

    def _lookup_with_separators(self):
        """``index`` plus the line feed (``_NEWLINE``) and, between words, the empty string (``_GAP``)."""
        lookup = self.__dict__.get("_lookup")
        if lookup is None:
            lookup = dict(self.index)
            lookup["\n"] = _NEWLINE
            if self.level != "char":
                lookup[""] = _GAP
            self._lookup = lookup
        return lookup

    def decode(self, ids):
        """Tokens of ``ids``."""
        tokens = self.tokens
        return [tokens[i] for i in ids]

    def join(self, ids):
        """Text of ``ids``: space-separated words, or concatenated characters at char level."""
        return ("" if self.level == "char" else " ").join(self.decode(ids))

    def to_bytes(self):
        """Tokens joined by newlines, as UTF-8 (tokens never contain a newline)."""
        return "\n".join(self.tokens).encode("utf-8")

    @classmethod
    def from_bytes(cls, data, level="word"):
        return cls(bytes(data).decode("utf-8").split("\n"), level)


class _WordTable:
    """Word tokens in a byte pool with a hash table, for the encoding kernels."""

    def __init__(self, tokens):
        data = [t.encode("utf-8") for t in tokens]
        lengths = np.fromiter(map(len, data), np.int64, len(data))
        self.n = len(data)
        self.pool = np.frombuffer(b"".join(data), np.uint8).copy()
        self.offsets = np.zeros(max(16, self.n + 1), np.int64)
        np.cumsum(lengths, out=self.offsets[1:self.n + 1])
        self.hashes = np.zeros(max(16, self.n), np.uint64)
        from .kernels.tokenize import hash_tokens

        hash_tokens(self.pool, self.offsets, self.n, self.hashes)
        self._rehash(max(64, 4 * self.n))

    def _rehash(self, n_slots):
        from .kernels.tokenize import insert_all

        size = 1 << max(6, (int(n_slots) - 1).bit_length())
        self.slots = np.full(size, -1, np.int32)
        insert_all(self.slots, self.pool, self.offsets, self.hashes, self.n)

    def _grow(self):
        """Double whatever the encoding kernel ran out of: slots, token arrays or byte pool."""
        used = int(self.offsets[self.n])
        if self.pool.shape[0] < used + 4096 or self.pool.shape[0] < 2 * used:
            self.pool = np.concatenate([self.pool[:used], np.zeros(max(used, 1 << 16), np.uint8)])
        if self.hashes.shape[0] < 2 * (self.n + 1):
            extra = max(self.n, 1024)
            self.hashes = np.concatenate([self.hashes[:self.n],
                                          np.zeros(self.hashes.shape[0] - self.n + extra, np.uint64)])
            self.offsets = np.concatenate([self.offsets[:self.n + 1],
                                           np.zeros(self.offsets.shape[0] - self.n - 1 + extra, np.int64)])
        if self.slots.shape[0] < 4 * (self.n + 1):
            self._rehash(4 * (self.n + 1))

    def encode(self, data, grow, unk=UNK):
        """(ids: int32[k], lengths: int32[lines]) of UTF-8 ``data``; ``grow`` adds unseen tokens."""
        from .kernels.tokenize import encode_words

        buf = np.frombuffer(data, np.uint8)
        ids = np.empty(len(buf) // 2 + 1, np.int32)
        lengths = np.empty(data.count(b"\n") + 1, np.int32)
        pos, n_ids, n_lines = 0, 0, 0
        while True:
            status, pos, n_ids, n_lines, self.n, _ = encode_words(
                buf, pos, self.slots, self.pool, self.offsets, self.hashes, self.n, grow, BOS, EOS, unk,
                ids, lengths, n_ids, n_lines)
            if status == 0:
                return ids[:n_ids].copy(), lengths[:n_lines].copy()
            self._grow()

    def tokens(self):
        pool, offsets = self.pool.tobytes(), self.offsets
        return [pool[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(self.n)]


class _CharTable:
    """Characters by code point, for the encoding kernels (specials have no code point)."""

    def __init__(self, tokens):
        self.table = np.full(0x110000, -1, np.int32)
        self.n = len(tokens)
        self.chars = list(tokens)
        for i, token in enumerate(tokens):
            if i >= len(SPECIALS):
                self.table[ord(token)] = i

    def encode(self, data, grow, unk=UNK):
        from .kernels.tokenize import encode_chars

        codes = np.frombuffer(data.decode("utf-8").encode("utf-32-le"), np.uint32)
        ids = np.empty(len(codes), np.int32)
        lengths = np.empty(data.count(b"\n") + 1, np.int32)
        before = self.n
        n_ids, n_lines, self.n = encode_chars(codes, self.table, grow, self.n, unk, ids, lengths)
        if self.n > before:
            new = np.flatnonzero(self.table >= before)
            order = np.argsort(self.table[new])
            self.chars.extend(chr(c) for c in new[order])
        return ids[:n_ids], lengths[:n_lines]

    def tokens(self):
        return list(self.chars)


def token_pool(tokens):
    """Tokens as kernels read them: (pool: uint8[] of their UTF-8 bytes back to back,
    offsets: int64[n + 1]), token i being pool[offsets[i]:offsets[i + 1]]."""
    encoded = [t.encode("utf-8") for t in tokens]
    pool = np.frombuffer(b"".join(encoded), np.uint8)
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(t) for t in encoded], out=offsets[1:])
    return pool, offsets


def token_table(tokens, level):
    """The kernel-side table for ``tokens`` at ``level`` ('word' or 'char')."""
    return _CharTable(tokens) if level == "char" else _WordTable(tokens)


class TokenCounter:
    """Assigns provisional ids in order of first appearance while text streams by.

    ``encode`` grows the table inside a Numba kernel; the final, frequency-ordered
    ``Vocabulary`` and a table remapping provisional ids come from ``finish``.
    """

    def __init__(self, level="word"):
        self.level = level
        self._table = token_table(SPECIALS, level)

    def encode(self, data):
        """Provisional ids and words per line of UTF-8 ``data``, adding new tokens."""
        return self._table.encode(data, grow=True)

    def __len__(self):
        return self._table.n

    def finish(self, counts, min_count=1, max_vocab=None, keep=None):
        """Order the vocabulary and limit it.

        ``counts``: int64[len(self)], occurrences of each provisional id. Words seen fewer than
        ``min_count`` times, beyond the ``max_vocab`` most frequent, or (if ``keep`` is a set)
        not in ``keep`` map to ``<unk>``. Returns ``(vocabulary, remap)`` with
        ``remap: int32[len(self)]`` taking provisional ids to final ones.
        """
        return rank_vocabulary(self._table.tokens(), counts, self.level, min_count, max_vocab, keep)

    def token_counts(self, counts):
        """``(tokens, counts)`` of the words seen (specials left out), for merging counts of shards."""
        tokens = self._table.tokens()[len(SPECIALS):]
        return tokens, np.asarray(counts[len(SPECIALS):len(SPECIALS) + len(tokens)], np.int64)

    def absorb(self, other):
        """Add the tokens of the ``TokenCounter`` ``other`` that this one lacks; returns
        ``int32[len(other)]`` taking ``other``'s provisional ids to this one's.

        Tokens hold no separator, so ``other``'s tokens joined as text are encoded by the same kernel.
        """
        tokens = other._table.tokens()[len(SPECIALS):]
        ids, _ = self.encode(("" if self.level == "char" else " ").join(tokens).encode("utf-8"))
        if len(ids) != len(tokens):
            raise AssertionError("a token of another counter did not encode to one id")
        return np.concatenate([np.arange(len(SPECIALS), dtype=np.int32), ids])


class TokenTally:
    """Tokens seen so far (in a ``TokenCounter``) with their counts, and the words and sentences read."""

    def __init__(self, level):
        self.counter = TokenCounter(level)
        self.counts = np.zeros(1024, np.int64)
        self.words = 0
        self.sentences = 0

    def add(self, data):
        """Count the tokens of ``data`` (whole lines of UTF-8); returns its provisional ids and words
        per line, as ``TokenCounter.encode``."""
        from .kernels.ngram_count import occurrences  # np.bincount would hold the GIL on reading threads

        ids, lengths = self.counter.encode(data)
        self._grow(len(self.counter))
        self.counts[:len(self.counter)] += occurrences(ids, len(self.counter))
        self.words += len(ids)
        self.sentences += len(lengths)
        return ids, lengths

    def absorb(self, other):
        """Add ``other`` (a ``TokenTally`` of other text) to this one; returns the map of ``other``'s
        provisional ids to this one's (``TokenCounter.absorb``)."""
        ids = self.counter.absorb(other.counter)
        self._grow(len(self.counter))
        np.add.at(self.counts, ids, other.counts[:len(ids)])
        self.words += other.words
        self.sentences += other.sentences
        return ids

    def _grow(self, n):
        if n > len(self.counts):
            self.counts = np.concatenate([self.counts, np.zeros(max(n, 2 * len(self.counts)) - len(self.counts),
                                                                np.int64)])

    def vocabulary(self, min_count=1, max_vocab=None, keep=None):
        """The final ``Vocabulary`` and the ``int32`` map of provisional ids to its ids (``TokenCounter.finish``)."""
        return self.counter.finish(self.counts[:len(self.counter)], min_count=min_count, max_vocab=max_vocab,
                                   keep=keep)

    def token_counts(self):
        """``(tokens, counts: int64[k])`` of the words seen, specials left out."""
        return self.counter.token_counts(self.counts)


class ThreadTallies:
    """A ``TokenTally`` for each thread that reads, so that text can be encoded on several threads
    without sharing a growing table; ``joined`` adds them up at the end.

    Provisional ids then depend on which thread read what, but the ``Vocabulary`` does not: it
    orders tokens by their total counts, ties broken by the tokens themselves.
    """

    def __init__(self, level):
        self.level = level
        self.tallies = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def add(self, data):
        """``TokenTally.add`` on the calling thread's tally: returns ``(tally number, ids, lengths)``."""
        number = getattr(self._local, "number", None)
        if number is None:
            with self._lock:
                number = self._local.number = len(self.tallies)
                self.tallies.append(TokenTally(self.level))
        return (number, *self.tallies[number].add(data))

    def joined(self):
        """``(tally, maps)``: the tallies added into the first, and for each tally number the map of
        its provisional ids to the joined tally's."""
        if not self.tallies:
            self.tallies.append(TokenTally(self.level))
        first = self.tallies[0]
        maps = [np.arange(len(first.counter), dtype=np.int32)]
        maps += [first.absorb(other) for other in self.tallies[1:]]
        return first, maps


def rank_vocabulary(provisional, counts, level="word", min_count=1, max_vocab=None, keep=None):
    """The frequency-ordered, limited ``Vocabulary`` of tokens ``provisional`` seen ``counts`` times.

    ``provisional`` starts with the specials; see ``TokenCounter.finish``, which this implements
    (shared with counting on several machines, where shards' counts are summed by token first).
    Returns ``(vocabulary, remap)``, ``remap: int32[len(provisional)]``.
    """
    words = [(-int(counts[i]), token, i) for i, token in enumerate(provisional) if i >= len(SPECIALS)]
    words.sort()
    kept = [(token, i) for c, token, i in words
            if -c >= min_count and (keep is None or token in keep)]
    if max_vocab is not None:
        kept = kept[:max(0, max_vocab - len(SPECIALS))]
    if words and not kept:  # every token would be <unk>: a model of nothing, refused before any work
        why = (f"--min-count {min_count}: no token occurs that often" if keep is None or min_count > -words[0][0]
               else "--vocab: the file lists none of the corpus's tokens")
        raise LmtoolError(f"{why}, so the vocabulary would be empty")
    remap = np.full(len(provisional), UNK, np.int32)
    remap[[BOS, EOS]] = [BOS, EOS]
    tokens = list(SPECIALS)
    for new_id, (token, old_id) in enumerate(kept, len(SPECIALS)):
        remap[old_id] = new_id
        tokens.append(token)
    return Vocabulary(tokens, level), remap


def read_vocab_file(path):
    """The set of tokens listed in a vocabulary file (whitespace-separated, like KenLM's --limit_vocab_file)."""
    from .corpus import read_chunks

    tokens = set()
    for chunk in read_chunks([path]):
        tokens.update(chunk.data.decode("utf-8").split())
    if not tokens:
        raise LmtoolError("vocabulary file lists no tokens", path)
    return tokens


def check_limits(min_count, max_vocab):
    """Reject absurd vocabulary limits with a message that says what is allowed."""
    if min_count is not None and min_count < 1:
        raise LmtoolError(f"--min-count must be at least 1, got {min_count}")
    if max_vocab is not None and max_vocab < len(SPECIALS) + 1:
        raise LmtoolError(f"--max-vocab must be at least {len(SPECIALS) + 1} (it counts {', '.join(SPECIALS)}), "
                          f"got {max_vocab}")
