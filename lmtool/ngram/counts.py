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
MAX_CHUNK_SPLIT = 8
RANGES_PER_THREAD = 4
"""Key ranges per thread in a merge by key ranges: the threads take the ranges as they come free,
so a core that runs slower for a while (a shared host's cores do) holds up less than its share."""


def count_ngrams(ids, lengths, order, vocab_size, progress=None, chunk_tokens=None, threads=1):
    """Count all n-grams of orders 1..order in sentences given as ids.

    ids: int32[n] word ids of all sentences back to back; lengths: int32[S] words per sentence.
    The sentences are counted in chunks of about ``chunk_tokens`` tokens, whose counts are then
    merged; ``progress(k)`` is called as chunks finish. With ``threads`` > 1 the chunks are
    counted (and merged by key ranges) on that many threads. The default chunk size,
    ``CHUNK_TOKENS`` divided by the number of threads (at most by ``MAX_CHUNK_SPLIT``), keeps the
    chunks counted at once within the CPU's shared cache: smaller chunks count faster but cost
    more merging, which pays only when the merge is shared among threads too. Merging is exact,
    so the result depends neither on the chunks nor on ``threads``.
    Returns ``NgramCounts``.
    """
    chunk_tokens = chunk_tokens or chunk_tokens_for(threads)
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


def chunk_tokens_for(threads):
    """The default chunk size of ``count_ngrams`` on ``threads`` threads."""
    return CHUNK_TOKENS // min(max(threads, 1), MAX_CHUNK_SPLIT)


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
    linear time: pairwise as a balanced tree on one thread (the leanest in memory), or on
    ``threads`` threads by key ranges, each merged at once (``_merge_by_key_ranges``). The
    levels can be written out as they come (``ngram.external`` spills them as runs, which
    ``runs.merge_runs`` merges on disk the same way, slice by slice).
    """
    from ..kernels.ngram_count import merge_sorted

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
        if threads > 1:
            parent, word, counts, suffix, below = _merge_level_by_key_ranges(parts, n, below, threads)
            yield parent, word, counts, suffix
            continue
        keys = [merge_keys(part, n, below[i]) for i, part in enumerate(parts)]
        counts = [np.asarray(part.count[n - 1]) for part in parts]
        runs = [(k, c, [i], [np.arange(len(k), dtype=np.int64)]) for i, (k, c) in enumerate(zip(keys, counts))]
        del keys, counts
        while len(runs) > 1:
            runs = [merge_pair(pair) for pair in zip(runs[0::2], runs[1::2])] + runs[len(runs) // 2 * 2:]
        keys, counts, owners, maps = runs[0]
        level = [None] * len(parts)
        for i, m in zip(owners, maps):
            level[i] = m
        suffix = np.empty(len(keys), np.int32)
        for i, part in enumerate(parts):
            suffix[level[i]] = merged_suffix(part, n, below[i])
        below = level
        del level
        yield (keys // V).astype(np.int32), (keys % V).astype(np.int32), counts, suffix


def merge_keys(levels, n, below=None, lo=0, hi=None):
    """The keys (parent * V + word) of rows ``lo:hi`` of order n of ``levels`` (``NgramCounts``, or
    a ``runs.Run`` on disk), the parents renumbered through ``below`` (the nodes of order n-1 ->
    merged nodes; None where the numbering stays)."""
    parent = levels.rows("parent", n, lo, hi)
    if below is not None:
        parent = below[parent]
    return parent.astype(np.int64) * levels.vocab_size + levels.rows("word", n, lo, hi)


def merged_suffix(levels, n, below=None, lo=0, hi=None):
    """The suffix links of rows ``lo:hi`` of order n of ``levels``, renumbered as ``merge_keys`` does."""
    links = levels.rows("suffix", n, lo, hi)
    return links if below is None else below[links]


def _merge_level_by_key_ranges(parts, n, below, threads):
    """Order n of ``parts`` merged on ``threads`` threads (see ``_merge_by_key_ranges``), everything
    done range by range on the threads: the parents and words taken apart, and the suffix links
    renumbered through ``below``. Returns (parent, word, count, suffix, each part's node map)."""
    from ..threads import ordered_map

    keys = list(ordered_map(lambda i: merge_keys(parts[i], n, below[i]), range(len(parts)), threads))
    counts = [np.asarray(part.count[n - 1]) for part in parts]
    ranges = _merge_by_key_ranges(keys, counts, threads, V=parts[0].vocab_size,
                                  extra=lambda i, lo, hi: merged_suffix(parts[i], n, below[i], lo, hi))
    del keys, counts
    columns = [[r[3][0] for r in ranges], [r[3][1] for r in ranges], [r[1] for r in ranges], [r[3][2] for r in ranges]]
    parent, word, counts, suffix = ordered_map(np.concatenate, columns, threads)
    return parent, word, counts, suffix, _joined_maps(ranges, len(parts), threads)


def _merge_by_key_ranges(keys, counts, threads, extra=None, V=None):
    """Merge sorted arrays of distinct keys (adding the counts of equal keys) on ``threads`` threads:
    the key space is cut at quantiles of the largest part (``RANGES_PER_THREAD`` ranges a thread),
    and each range is merged on its own by a stable sort of its parts side by side. Returns (keys,
    counts, each part's map to the merged positions), the same as the pairwise merge gives.

    With ``extra(i, lo, hi)`` (int32 values of part i's rows lo:hi, equal for equal keys) and the
    vocabulary size ``V``, returns instead the list of ranges, each ``(keys, counts, maps, (parent,
    word, extra))`` with maps local to the range, for ``_merge_level_by_key_ranges``.
    """
    from ..threads import ordered_map

    largest = max(keys, key=len)
    ranges = threads * RANGES_PER_THREAD
    splitters = np.unique(largest[[len(largest) * j // ranges for j in range(1, ranges)]]) if len(largest) else []
    cuts = [np.concatenate([[0], np.searchsorted(k, splitters, "left"), [len(k)]]) for k in keys]

    def merge_range(j):
        pieces = [k[c[j]:c[j + 1]] for k, c in zip(keys, cuts)]
        merged, summed, position, _ = merge_pieces(
            pieces, np.concatenate([c[cut[j]:cut[j + 1]] for c, cut in zip(counts, cuts)]))
        maps = np.split(position, np.cumsum([len(p) for p in pieces])[:-1])
        if extra is None:
            return merged, summed, maps
        values = np.empty(len(merged), np.int32)
        for i, (m, cut) in enumerate(zip(maps, cuts)):
            values[m] = extra(i, cut[j], cut[j + 1])
        return merged, summed, maps, ((merged // V).astype(np.int32), (merged % V).astype(np.int32), values)

    ranges = list(ordered_map(merge_range, range(len(splitters) + 1), threads))
    if extra is not None:
        return ranges
    merged, summed = (np.concatenate([r[k] for r in ranges]) for k in range(2))
    return merged, summed, _joined_maps(ranges, len(keys), threads)


def merge_pieces(pieces, counts):
    """Merge sorted arrays of distinct int64 keys (``pieces``), adding up equal keys' ``counts`` (the
    pieces' counts end to end). Returns ``(keys, counts, position, first)``: the merged keys and
    their counts, each input row's position among them, and the input row each merged key came
    from first."""
    joined = np.concatenate(pieces)
    order = np.argsort(joined, kind="stable")  # the pieces are sorted runs: a timsort merges them
    joined = joined[order]
    new = np.empty(len(joined), bool)
    new[:1] = True
    np.not_equal(joined[1:], joined[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    position = np.empty(len(joined), np.int64)
    position[order] = np.cumsum(new) - 1
    summed = np.add.reduceat(counts[order], starts) if len(starts) else np.zeros(0, np.int64)
    return joined[starts], summed, position, order[starts]


def _joined_maps(ranges, parts, threads=1):
    """Each part's map to merged positions, from the ranges' local maps (``_merge_by_key_ranges``),
    the parts joined on ``threads`` threads."""
    from ..threads import ordered_map

    offsets = np.cumsum([0] + [len(r[0]) for r in ranges])

    def joined(i):
        pieces = [r[2][i] for r in ranges]
        out = np.empty(sum(map(len, pieces)), np.int64)
        at = 0
        for piece, offset in zip(pieces, offsets):
            np.add(piece, offset, out=out[at:at + len(piece)])
            at += len(piece)
        return out

    return list(ordered_map(joined, range(parts), threads))
