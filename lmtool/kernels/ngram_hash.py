"""Numba kernels for fast scoring: the trie's levels rebuilt as open-addressing hash tables.

Binary searches in the trie cost several dependent memory accesses per n-gram; a hash table costs
one, and the lookups for one word (one per context length) are independent of each other, so the
CPU overlaps them. Each order k has its own power-of-two region of a shared table; an entry is
16 bytes: the key ``(slot of the parent) << 32 | word`` (uint64) then log10 p and log10 backoff
(two float32), so one cache line answers a lookup. Unigram slots are word ids (no key needed).
Node ids in the scorer's state are global slot numbers.
"""

import numpy as np
from numba import njit

EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
LOAD = 0.7


def region_sizes(sizes):
    """Slots per order: the vocabulary for unigrams, then powers of two at most LOAD full."""
    out = [int(sizes[0])]
    for m in sizes[1:]:
        bits = max(4, int(np.ceil(np.log2(max(m, 1) / LOAD))))
        out.append(1 << bits)
    return np.array(out, np.int64)


@njit(cache=True)
def build_table(sizes, regions, word, prob, backoff, child_start, table, values):
    """Fill ``table`` (uint64[2 * S], keys at even positions, EMPTY-initialised) and its float32
    view ``values`` (float32[4 * S]: prob at 4i+2, backoff at 4i+3) from the trie.

    sizes: int64[N] nodes per order; regions: int64[N] slots per order; word/prob/backoff and
    child_start as in ``ngram_query``. Returns int64[T], the global slot of every trie node.
    """
    N = sizes.shape[0]
    total = 0
    for k in range(N):
        total += sizes[k]
    slot_of = np.empty(total, np.int64)
    for w in range(sizes[0]):
        slot_of[w] = w
        values[4 * w + 2] = prob[w]
        values[4 * w + 3] = backoff[w] if sizes.shape[0] > 1 else 0.0
    node_base = 0
    slot_base = 0
    for k in range(1, N):
        parent_base = node_base
        node_base += sizes[k - 1]
        slot_base += regions[k - 1]
        bits = 0
        while (1 << bits) < regions[k]:
            bits += 1
        shift = np.uint64(64 - bits)
        mask = regions[k] - 1
        for p in range(parent_base, node_base):
            pslot = np.uint64(slot_of[p])
            for node in range(child_start[p], child_start[p + 1]):
                key = (pslot << np.uint64(32)) | np.uint64(word[node])
                s = np.int64((key * _GOLDEN) >> shift)
                while table[2 * (slot_base + s)] != EMPTY:
                    s = (s + 1) & mask
                g = slot_base + s
                table[2 * g] = key
                values[4 * g + 2] = prob[node]
                values[4 * g + 3] = backoff[node] if k < N - 1 else 0.0
                slot_of[node] = g
    return slot_of


@njit(cache=True, inline="always")
def _lookup(table, start, bits, parent, w):
    """Global slot of the child ``w`` of slot ``parent`` in the region at ``start`` of 2^bits slots, or -1."""
    key = (np.uint64(parent) << np.uint64(32)) | np.uint64(w)
    mask = (1 << bits) - 1
    s = np.int64((key * _GOLDEN) >> np.uint64(64 - bits))
    while True:
        k = table[2 * (start + s)]
        if k == key:
            return start + s
        if k == EMPTY:
            return -1
        s = (s + 1) & mask


@njit(cache=True, nogil=True)
def score_sentences_hashed(ids, lengths, order, region_start, region_bits, table, values, bos, eos,
                           out_logp, out_length):
    """log10 p of every word of every sentence, and of each sentence's ``</s>``, looked up in the
    hash table of ``build_table``.

    ids: int32[n] word ids of all sentences back to back; lengths: int32[S] words per sentence; every
    sentence starts in the context ``<s>``, and each n-gram's probability is the longest match's
    plus the backoffs of the longer contexts that exist (ARPA's semantics, as KenLM's query).
    region_start: int64[N] first slot of each order's region; region_bits: int64[N] log2 of its
    size (unused for unigrams). Returns float64[S] sentence totals; fills out_logp (float32[n+S])
    and out_length (int8[n+S]).
    """
    max_context = order - 1
    context = np.empty(max(max_context, 1), np.int64)
    found = np.empty(order, np.int64)
    totals = np.zeros(lengths.shape[0], np.float64)
    src = 0
    dst = 0
    for s in range(lengths.shape[0]):
        n_context = 1 if max_context > 0 else 0
        context[0] = bos
        total = 0.0
        for j in range(lengths[s] + 1):
            if j < lengths[s]:
                w = ids[src]
                src += 1
            else:
                w = eos
            found[0] = w
            m = 1
            for k in range(n_context):
                g = _lookup(table, region_start[k + 1], region_bits[k + 1], context[k], w)
                if g < 0:
                    break
                found[k + 1] = g
                m = k + 2
            lp = np.float64(values[4 * found[m - 1] + 2])
            for k in range(m - 1, n_context):
                lp += values[4 * context[k] + 3]
            n_context = min(m, max_context)
            for k in range(n_context):
                context[k] = found[k]
            out_logp[dst] = lp
            out_length[dst] = m
            dst += 1
            total += lp
        totals[s] = total
    return totals
