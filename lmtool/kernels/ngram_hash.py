"""Numba kernels for fast scoring: the trie's levels rebuilt as open-addressing hash tables.

Binary searches in the trie cost several dependent memory accesses per n-gram; a hash table costs
one. Each order k has its own power-of-two region of a shared table; an entry is 16 bytes: the key
``(slot of the parent) << 32 | word`` (uint64) then log10 p and log10 backoff (two float32), so one
cache line answers a lookup. Unigram slots are word ids (no key needed). Node ids in the scorer's
state are global slot numbers.

The table of a large model is far bigger than the caches (54 MB for the KJV 5-gram), so each
lookup is a cache miss, and a sentence's lookups form a chain: a word's contexts are the previous
word's results. The scorer therefore walks ``LANES`` sentences side by side: as soon as a lane has
its next word's contexts it computes their slots and prefetches them (``prefetch_lookup``), then
serves the other lanes while those cache lines arrive, so that about ``LANES`` times the order
misses are in flight instead of one chain's. A lookup's probe runs past its home slot's cache line
for 6-15% of the KJV 5-gram's n-grams (by order), so the next line is prefetched too: fetching a line
that turns out unneeded costs memory bandwidth, which this loop is far from using up.
"""

import llvmlite.ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
LOAD = 0.7
LANES = 8
"""Sentences the scorer walks side by side, each with its next lookups prefetched."""
BUILD_AHEAD = 16
"""Inserts ``build_table`` prefetches ahead of the one it makes (each lands in a random cache line)."""


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to fetch the cache line of ``array[index]`` (LLVM's ``llvm.prefetch``: a read,
    kept in all cache levels); no effect on results, and no fault for any index."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        arytype, indextype = signature.args
        ary = context.make_array(arytype)(context, builder, args[0])
        at = context.cast(builder, args[1], indextype, types.intp)
        pointer = cgutils.get_item_pointer(context, builder, arytype, ary, [at])
        i32 = llvmlite.ir.IntType(32)
        fn = builder.module.declare_intrinsic("llvm.prefetch", [pointer.type],
                                              llvmlite.ir.FunctionType(llvmlite.ir.VoidType(),
                                                                       [pointer.type, i32, i32, i32]))
        builder.call(fn, [pointer, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return types.none(array, index), codegen


@njit(cache=True, inline="always")
def prefetch_lookup(table, slot):
    """Prefetch the cache line of global ``slot`` and the next one, where its probe may run on."""
    prefetch(table, 2 * slot)
    prefetch(table, 2 * slot + 8)


def region_sizes(sizes):
    """Slots per order: the vocabulary for unigrams (rounded up to a multiple of 4, so that the other
    regions start on a cache line), then powers of two at most LOAD full."""
    out = [(int(sizes[0]) + 3) // 4 * 4]
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
        first = child_start[parent_base]
        n = sizes[k]
        keys = np.empty(n, np.uint64)  # the level's keys and home slots first, so that inserts can prefetch
        homes = np.empty(n, np.int64)
        for p in range(parent_base, node_base):
            for node in range(child_start[p], child_start[p + 1]):
                keys[node - first], homes[node - first] = _slot(slot_of[p], word[node], shift)
        for j in range(n):
            if j + BUILD_AHEAD < n:
                prefetch(table, 2 * (slot_base + homes[j + BUILD_AHEAD]))
            s = homes[j]
            while table[2 * (slot_base + s)] != EMPTY:
                s = (s + 1) & mask
            g = slot_base + s
            node = first + j
            table[2 * g] = keys[j]
            values[4 * g + 2] = prob[node]
            values[4 * g + 3] = backoff[node] if k < N - 1 else 0.0
            slot_of[node] = g
    return slot_of


@njit(cache=True, inline="always")
def _slot(parent, w, shift):
    """(key, home slot within its region) of the child ``w`` of global slot ``parent``."""
    key = (np.uint64(parent) << np.uint64(32)) | np.uint64(w)
    return key, np.int64((key * _GOLDEN) >> shift)


@njit(cache=True, inline="always")
def _probe(table, start, mask, s, key):
    """Global slot holding ``key`` in the region at ``start``, probing linearly from slot s, or -1."""
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
    hash table of ``build_table``, ``LANES`` sentences at a time (see the module's docstring).

    ids: int32[n] word ids of all sentences back to back; lengths: int32[S] words per sentence; every
    sentence starts in the context ``<s>``, and each n-gram's probability is the longest match's
    plus the backoffs of the longer contexts that exist (ARPA's semantics, as KenLM's query).
    region_start: int64[N] first slot of each order's region; region_bits: int64[N] log2 of its
    size (unused for unigrams). Returns float64[S] sentence totals; fills out_logp (float32[n+S])
    and out_length (int8[n+S]). Each sentence's numbers are computed as if it were alone: the
    lanes change the order of memory accesses, not of any sum.
    """
    S = lengths.shape[0]
    max_context = order - 1
    C = max(max_context, 1)
    shift = np.empty(order, np.uint64)
    mask = np.empty(order, np.int64)
    for k in range(1, order):
        shift[k] = np.uint64(64 - region_bits[k])
        mask[k] = (np.int64(1) << region_bits[k]) - 1
    totals = np.zeros(S, np.float64)
    sentence = np.full(LANES, -1, np.int64)  # the sentence in each lane, -1 when it is idle
    step = np.zeros(LANES, np.int64)  # position in it (lengths[s] is the </s>)
    src = np.zeros(LANES, np.int64)
    dst = np.zeros(LANES, np.int64)
    n_context = np.zeros(LANES, np.int64)
    context = np.empty((LANES, C), np.int64)
    word = np.zeros(LANES, np.int64)  # the next token
    home = np.empty((LANES, C), np.int64)  # its lookups' home slots, prefetched
    key = np.empty((LANES, C), np.uint64)
    total = np.zeros(LANES, np.float64)
    found = np.empty(order, np.int64)
    next_sentence = 0
    next_src = 0
    busy = 0
    for lane in range(LANES):
        if next_sentence < S:
            sentence[lane] = next_sentence
            src[lane] = next_src
            dst[lane] = next_src + next_sentence
            next_src += lengths[next_sentence]
            next_sentence += 1
            busy += 1
    for lane in range(LANES):  # the first token of each lane: context <s>
        if sentence[lane] >= 0:
            n_context[lane] = 1 if max_context > 0 else 0
            context[lane, 0] = bos
            word[lane] = ids[src[lane]] if lengths[sentence[lane]] > 0 else eos
            for k in range(n_context[lane]):
                key[lane, k], home[lane, k] = _slot(context[lane, k], word[lane], shift[k + 1])
                prefetch_lookup(table, region_start[k + 1] + home[lane, k])
    while busy > 0:
        for lane in range(LANES):
            s = sentence[lane]
            if s < 0:
                continue
            w = word[lane]
            nc = n_context[lane]
            found[0] = w
            m = 1
            for k in range(nc):
                g = _probe(table, region_start[k + 1], mask[k + 1], home[lane, k], key[lane, k])
                if g < 0:
                    break
                found[k + 1] = g
                m = k + 2
            lp = np.float64(values[4 * found[m - 1] + 2])
            for k in range(m - 1, nc):
                lp += values[4 * context[lane, k] + 3]
            out_logp[dst[lane]] = lp
            out_length[dst[lane]] = m
            dst[lane] += 1
            total[lane] += lp
            if step[lane] == lengths[s]:  # that was the </s>: the lane takes the next sentence
                totals[s] = total[lane]
                total[lane] = 0.0
                step[lane] = 0
                if next_sentence < S:
                    s = next_sentence
                    sentence[lane] = s
                    src[lane] = next_src
                    dst[lane] = next_src + s
                    next_src += lengths[s]
                    next_sentence += 1
                    nc = 1 if max_context > 0 else 0
                    context[lane, 0] = bos
                else:
                    sentence[lane] = -1
                    busy -= 1
                    continue
            else:
                step[lane] += 1
                src[lane] += 1
                nc = min(m, max_context)
                for k in range(nc):
                    context[lane, k] = found[k]
            n_context[lane] = nc
            w = ids[src[lane]] if step[lane] < lengths[s] else eos
            word[lane] = w
            for k in range(nc):
                key[lane, k], home[lane, k] = _slot(context[lane, k], w, shift[k + 1])
                prefetch_lookup(table, region_start[k + 1] + home[lane, k])
    return totals
