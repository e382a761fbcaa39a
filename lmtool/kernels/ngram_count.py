"""Numba kernels that count n-grams over integer token streams, one order at a time.

An n-gram of order n is stored as a node: (parent, word), where ``parent`` is the node of its
first n-1 words in order n-1 (order-1 nodes are word ids). Nodes of an order are sorted by
(parent, word), which makes each order a level of a trie whose children are contiguous. For
every position t of the stream, ``nodes[t]`` is the node of the n-gram ending at t (-1 where the
n-gram would reach back past its sentence's ``<s>``), so order n+1 is counted from order n.
"""

import numpy as np
from numba import njit

_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def extend_order(stream, prev_nodes, n_prev, bos):
    """Count the n-grams one word longer than those of ``prev_nodes``.

    stream: int32[P] padded token stream; prev_nodes: int32[P], node (in order n-1, which has
    ``n_prev`` nodes) of the (n-1)-gram ending at each position, -1 if none.
    An n-gram ends at t when t is not ``<s>`` and an (n-1)-gram ends at t-1.
    Returns (nodes: int32[P], parent: int32[M], word: int32[M], count: int64[M],
    suffix: int32[M]) with the M distinct n-grams sorted by (parent, word); ``suffix`` is the
    node in order n-1 of each n-gram's last n-1 words.
    """
    P = stream.shape[0]
    n_valid = 0
    max_word = 0
    for t in range(1, P):
        if stream[t] != bos and prev_nodes[t - 1] >= 0:
            n_valid += 1
        if stream[t] > max_word:
            max_word = stream[t]
    bits = 1
    while (1 << bits) < 2 * n_valid + 2:
        bits += 1
    size = 1 << bits
    mask = size - 1
    shift = np.uint64(64 - bits)
    keys = np.full(size, _EMPTY, np.uint64)
    slots = np.empty(size, np.int32)
    par = np.empty(n_valid, np.int32)
    wrd = np.empty(n_valid, np.int32)
    cnt = np.zeros(n_valid, np.int64)
    suf = np.empty(n_valid, np.int32)
    provisional = np.full(P, -1, np.int32)
    m = 0
    for t in range(1, P):
        w = stream[t]
        p = prev_nodes[t - 1]
        if w == bos or p < 0:
            continue
        key = (np.uint64(p) << np.uint64(32)) | np.uint64(w)
        h = np.int64((key * _GOLDEN) >> shift)
        while True:
            k = keys[h]
            if k == key:
                i = slots[h]
                break
            if k == _EMPTY:
                keys[h] = key
                slots[h] = m
                i = m
                par[m] = p
                wrd[m] = w
                suf[m] = prev_nodes[t]
                m += 1
                break
            h = (h + 1) & mask
        cnt[i] += 1
        provisional[t] = i

    # Two stable counting sorts (by word, then by parent) put the nodes in (parent, word) order.
    by_word = _counting_order(wrd[:m], np.arange(m, dtype=np.int32), max_word + 1)
    order = _counting_order(par[:m], by_word, n_prev)
    rank = np.empty(m, np.int32)
    parent = np.empty(m, np.int32)
    word = np.empty(m, np.int32)
    count = np.empty(m, np.int64)
    suffix = np.empty(m, np.int32)
    for r in range(m):
        i = order[r]
        rank[i] = r
        parent[r] = par[i]
        word[r] = wrd[i]
        count[r] = cnt[i]
        suffix[r] = suf[i]
    nodes = np.full(P, -1, np.int32)
    for t in range(P):
        if provisional[t] >= 0:
            nodes[t] = rank[provisional[t]]
    return nodes, parent, word, count, suffix


@njit(cache=True)
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
