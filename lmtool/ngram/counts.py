"""N-gram counts of every order 1..N, as the levels of a trie sorted by (parent, word)."""

from dataclasses import dataclass

import numpy as np

from ..vocab import BOS, EOS


@dataclass
class NgramCounts:
    """Raw counts of every n-gram seen, order by order (index 0 holds unigrams).

    For order n (list index n-1), arrays of length M_n: ``parent[n-1]`` the node of the first n-1
    words in order n-1 (-1 for unigrams), ``word[n-1]`` the last word, ``count[n-1]`` occurrences,
    ``suffix[n-1]`` the node in order n-1 of the last n-1 words (-1 for unigrams). Unigram node i
    is word id i, for every word of the vocabulary, seen or not. N-grams never cross a sentence
    boundary; ``<s>`` appears only first, ``</s>`` only last.
    """

    parent: list
    word: list
    count: list
    suffix: list
    vocab_size: int

    @property
    def order(self):
        return len(self.word)

    def append_level(self, parent, word, count, suffix):
        """Add the next order's arrays."""
        self.parent.append(parent)
        self.word.append(word)
        self.count.append(count)
        self.suffix.append(suffix)

    def sizes(self):
        """Number of distinct n-grams of each order."""
        return [len(w) for w in self.word]

    def rows(self, field, n, lo=0, hi=None):
        """``field`` (``parent``, ``word``, ``count`` or ``suffix``) of the n-grams ``lo:hi`` of order n,
        as ``runs.Run.rows`` gives it from disk."""
        return getattr(self, field)[n - 1][lo:hi]

    def first_child(self, n, node):
        """The first row of order n whose parent is ``node`` or later (rows are sorted by parent)."""
        parents = self.parent[n - 1]
        return int(np.searchsorted(parents, parents.dtype.type(node), "left"))  # a Python int would copy them


CHUNK_TOKENS = 1 << 20


def count_ngrams(ids, lengths, order, vocab_size, progress=None, chunk_tokens=CHUNK_TOKENS, threads=1):
    """Count all n-grams of orders 1..order in sentences given as ids.

    ids: int32[n] word ids of all sentences back to back; lengths: int32[S] words per sentence.
    The sentences are counted in chunks of about ``chunk_tokens`` tokens (small enough for the
    CPU caches), whose counts are then merged. ``progress(k)`` is called as chunks finish. With
    ``threads`` > 1 chunks are counted (and pairs merged) on that many threads; the chunks do not
    depend on ``threads`` and merging is exact, so the result is the same.
    Returns ``NgramCounts``.
    """
    ids = np.ascontiguousarray(ids, np.int32)
    lengths = np.ascontiguousarray(lengths, np.int32)
    ends = np.cumsum(lengths + 2)
    cuts = np.searchsorted(ends, np.arange(chunk_tokens, ends[-1] if len(ends) else 0, chunk_tokens), "right")
    bounds = np.unique(np.concatenate([[0], cuts, [len(lengths)]]))
    word_start = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])

    def count(span):
        lo, hi = span
        return count_chunk(ids[word_start[lo]:word_start[hi]], lengths[lo:hi], order, vocab_size)

    from ..threads import ordered_map

    chunks = []
    for chunk in ordered_map(count, zip(bounds[:-1], bounds[1:]), threads):  # a plain loop for one thread
        chunks.append(chunk)
        if progress:
            progress(1)
    return merge_counts(chunks, threads) if len(chunks) != 1 else chunks[0]


def count_chunk(ids, lengths, order, vocab_size):
    """``NgramCounts`` of one batch of sentences, by the kernels in ``kernels.ngram_count``."""
    from ..kernels.ngram_count import extend_order, pad_sentences, positions_by_word, unigram_counts

    stream = pad_sentences(ids, lengths, BOS, EOS)
    by_word = positions_by_word(stream, vocab_size, BOS)
    counts = NgramCounts(parent=[np.full(vocab_size, -1, np.int32)], word=[np.arange(vocab_size, dtype=np.int32)],
                         count=[unigram_counts(stream, vocab_size, BOS)],
                         suffix=[np.full(vocab_size, -1, np.int32)], vocab_size=vocab_size)
    nodes = stream
    for _ in range(2, order + 1):
        nodes, *level = extend_order(stream, nodes, len(counts.word[-1]), by_word)
        counts.append_level(*level)
    return counts


def merge_counts(parts, threads=1):
    """Add up ``NgramCounts`` of disjoint parts of a corpus into one, level by level (see ``merge_levels``)."""
    merged = NgramCounts(parent=[], word=[], count=[], suffix=[], vocab_size=parts[0].vocab_size)
    for level in merge_levels(parts, threads):
        merged.append_level(*level)
    return merged


def merge_levels(parts, threads=1):
    """Yield the merged levels ``(parent, word, count, suffix)`` of ``parts``, unigrams first.

    Each level of a part is sorted lexicographically by its words, so with the parents renumbered
    into the merged level below, its (parent, word) keys stay sorted and the parts merge in
    linear time (pairwise, as a balanced tree; the pairs of a round on ``threads`` threads). The
    levels can be written out as they come (``ngram.external`` spills them as runs, which
    ``runs.merge_runs`` merges on disk the same way, slice by slice).
    """
    from ..kernels.ngram_count import merge_sorted
    from ..threads import ordered_map

    def merge_pair(pair):
        a, b = pair
        keys, counts, map_a, map_b = merge_sorted(a[0], a[1], b[0], b[1])
        return keys, counts, a[2] + b[2], [map_a[m] for m in a[3]] + [map_b[m] for m in b[3]]

    V = parts[0].vocab_size
    order = parts[0].order
    yield (np.array(parts[0].parent[0]), np.array(parts[0].word[0]),
           np.sum([p.count[0] for p in parts], axis=0), np.array(parts[0].suffix[0]))
    below = [None] * len(parts)  # each part's node -> merged node, in the level below
    for n in range(2, order + 1):
        runs = []
        for i, part in enumerate(parts):
            parent = part.parent[n - 1] if below[i] is None else below[i][part.parent[n - 1]]
            runs.append((parent.astype(np.int64) * V + part.word[n - 1], np.asarray(part.count[n - 1]), [i],
                         [np.arange(len(parent), dtype=np.int64)]))
        while len(runs) > 1:
            paired = list(ordered_map(merge_pair, zip(runs[0::2], runs[1::2]), threads))
            if len(runs) % 2:
                paired.append(runs[-1])
            runs = paired
        keys, counts, owners, maps = runs[0]
        suffix = np.empty(len(keys), np.int32)
        level = [None] * len(parts)
        for i, m in zip(owners, maps):
            level[i] = m
        for i, part in enumerate(parts):
            lower = part.suffix[n - 1] if below[i] is None else below[i][part.suffix[n - 1]]
            suffix[level[i]] = lower
        below = level
        del runs, maps, level
        yield (keys // V).astype(np.int32), (keys % V).astype(np.int32), counts, suffix
