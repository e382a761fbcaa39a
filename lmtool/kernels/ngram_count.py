"""Numba kernels that count n-grams over integer token streams, one order at a time.

An n-gram of order n is stored as a node: (parent, word), where ``parent`` is the node of its
first n-1 words in order n-1 (order-1 nodes are word ids). Nodes of an order are sorted by
(parent, word), which makes each order a level of a trie whose children are contiguous. For
every position t of the stream, ``nodes[t]`` is the node of the n-gram ending at t (-1 where the
n-gram would reach back past its sentence's ``<s>``), so order n+1 is counted from order n.
"""

import numpy as np
from numba import njit



@njit(cache=True, nogil=True)
def pad_sentences(ids, lengths, bos, eos):
    """Insert ``<s>`` before and ``</s>`` after every sentence.

    ids: int32[n] tokens of all sentences back to back; lengths: int32[S] tokens per sentence.
    Returns stream: int32[n + 2S].
    """
    out = np.empty(ids.shape[0] + 2 * lengths.shape[0], np.int32)
    src = 0
    dst = 0
    for s in range(lengths.shape[0]):
        out[dst] = bos
        dst += 1
        for _ in range(lengths[s]):
            out[dst] = ids[src]
            dst += 1
            src += 1
        out[dst] = eos
        dst += 1
    return out


@njit(cache=True, nogil=True)
def unigram_counts(stream, vocab_size, bos):
    """Occurrences of each word id in the stream, ``<s>`` excluded (it is never predicted).

    stream: int32[P]. Returns int64[vocab_size].
    """
    counts = np.zeros(vocab_size, np.int64)
    for t in range(stream.shape[0]):
        w = stream[t]
        if w != bos:
            counts[w] += 1
    return counts


@njit(cache=True, nogil=True)
def positions_by_word(stream, vocab_size, bos):
    """Positions of the stream that can end an n-gram (every token but ``<s>``), sorted by their
    word, stably (int32[P - S]). The same for every order, so computed once."""
    return _counting_order(stream, _non_bos(stream, bos), vocab_size)


@njit(cache=True, nogil=True)
def _non_bos(stream, bos):
    n = 0
    for t in range(stream.shape[0]):
        if stream[t] != bos:
            n += 1
    out = np.empty(n, np.int32)
    n = 0
    for t in range(stream.shape[0]):
        if stream[t] != bos:
            out[n] = t
            n += 1
    return out


@njit(cache=True, nogil=True)
def extend_order(stream, prev_nodes, n_prev, by_word):
    """Count the n-grams one word longer than those of ``prev_nodes``, by sorting positions.

    stream: int32[P] padded token stream; prev_nodes: int32[P], node (in order n-1, which has
    ``n_prev`` nodes) of the (n-1)-gram ending at each position, -1 if none; by_word: from
    ``positions_by_word``. An n-gram ends at t when t is not ``<s>`` and an (n-1)-gram ends at
    t-1. A stable counting sort of the word-sorted positions by their parent node yields
    (parent, word) order in one pass.
    Returns (nodes: int32[P], parent: int32[M], word: int32[M], count: int64[M],
    suffix: int32[M]) with the M distinct n-grams sorted by (parent, word); ``suffix`` is the
    node in order n-1 of each n-gram's last n-1 words.
    """
    P = stream.shape[0]
    n_valid = 0
    for j in range(by_word.shape[0]):
        t = by_word[j]
        if t > 0 and prev_nodes[t - 1] >= 0:
            n_valid += 1
    starts = np.zeros(n_prev + 1, np.int64)
    for j in range(by_word.shape[0]):
        t = by_word[j]
        if t > 0 and prev_nodes[t - 1] >= 0:
            starts[prev_nodes[t - 1] + 1] += 1
    for k in range(n_prev):
        starts[k + 1] += starts[k]
    ordered = np.empty(n_valid, np.int32)
    for j in range(by_word.shape[0]):
        t = by_word[j]
        if t > 0 and prev_nodes[t - 1] >= 0:
            p = prev_nodes[t - 1]
            ordered[starts[p]] = t
            starts[p] += 1
    # one node per run of equal (parent, word)
    m = 0
    last_p = -1
    last_w = -1
    for j in range(n_valid):
        t = ordered[j]
        p = prev_nodes[t - 1]
        w = stream[t]
        if p != last_p or w != last_w:
            m += 1
            last_p = p
            last_w = w
    parent = np.empty(m, np.int32)
    word = np.empty(m, np.int32)
    count = np.zeros(m, np.int64)
    suffix = np.empty(m, np.int32)
    nodes = np.full(P, -1, np.int32)
    i = -1
    last_p = -1
    last_w = -1
    for j in range(n_valid):
        t = ordered[j]
        p = prev_nodes[t - 1]
        w = stream[t]
        if p != last_p or w != last_w:
            i += 1
            parent[i] = p
            word[i] = w
            suffix[i] = prev_nodes[t]
            last_p = p
            last_w = w
        count[i] += 1
        nodes[t] = i
    return nodes, parent, word, count, suffix


@njit(cache=True, nogil=True)
def _counting_order(keys, items, n_keys):
    """Stable sort of ``items`` (int32[m], indices into ``keys``) by ``keys[item]`` in [0, n_keys)."""
    starts = np.zeros(n_keys + 1, np.int64)
    for j in range(items.shape[0]):
        starts[keys[items[j]] + 1] += 1
    for k in range(n_keys):
        starts[k + 1] += starts[k]
    out = np.empty(items.shape[0], np.int32)
    for j in range(items.shape[0]):
        k = keys[items[j]]
        out[starts[k]] = items[j]
        starts[k] += 1
    return out


@njit(cache=True, nogil=True)
def merge_sorted(keys_a, counts_a, keys_b, counts_b):
    """Merge two sorted arrays of distinct keys (int64), adding the counts of equal keys.

    Returns (keys: int64[M], counts: int64[M], map_a: int64[len(keys_a)], map_b:
    int64[len(keys_b)]), the maps giving each input key's position in the output.
    """
    na = keys_a.shape[0]
    nb = keys_b.shape[0]
    keys = np.empty(na + nb, np.int64)
    counts = np.empty(na + nb, np.int64)
    map_a = np.empty(na, np.int64)
    map_b = np.empty(nb, np.int64)
    i = 0
    j = 0
    m = 0
    while i < na or j < nb:
        if j >= nb or (i < na and keys_a[i] < keys_b[j]):
            keys[m] = keys_a[i]
            counts[m] = counts_a[i]
            map_a[i] = m
            i += 1
        elif i >= na or keys_b[j] < keys_a[i]:
            keys[m] = keys_b[j]
            counts[m] = counts_b[j]
            map_b[j] = m
            j += 1
        else:
            keys[m] = keys_a[i]
            counts[m] = counts_a[i] + counts_b[j]
            map_a[i] = m
            map_b[j] = m
            i += 1
            j += 1
        m += 1
    return keys[:m].copy(), counts[:m].copy(), map_a, map_b


@njit(cache=True, nogil=True)
def add_occurrences(into, index, lo=0, hi=-1):
    """``into[i] += 1`` for every i in ``index`` with lo <= i < hi (hi = -1: no upper bound): a
    bincount added in place, without an array of ``into``'s size per call; threads given disjoint
    [lo, hi) can share ``into``."""
    top = into.shape[0] if hi < 0 else hi
    for j in range(index.shape[0]):
        i = index[j]
        if lo <= i < top:
            into[i] += 1


# np.bincount holds the GIL; these do its work for code that runs on several threads.

@njit(cache=True, nogil=True)
def occurrences(index, n):
    """int64[n]: how often each of 0..n-1 occurs in ``index`` (np.bincount with minlength n)."""
    out = np.zeros(n, np.int64)
    for j in range(index.shape[0]):
        out[index[j]] += 1
    return out


@njit(cache=True, nogil=True)
def weighted_sums(index, weights, n):
    """float64[n]: the sum of ``weights`` at each of 0..n-1 in ``index``, added in row order (so the
    same floats as np.bincount with weights)."""
    out = np.zeros(n, np.float64)
    for j in range(index.shape[0]):
        out[index[j]] += weights[j]
    return out


@njit(cache=True, nogil=True)
def capped_occurrences(values, cap):
    """int64[cap + 1]: how many ``values`` are 0, 1, ..., cap - 1, and cap or more."""
    out = np.zeros(cap + 1, np.int64)
    for j in range(values.shape[0]):
        out[min(values[j], cap)] += 1
    return out
