"""Numba kernels that sample whole sentences from a backoff n-gram trie, many per call, exactly.

A backoff model's p(w | h) is p(w | longest context c that has w as a child), or b(c) times the
next shorter context's distribution restricted to the words that are not children of c. So a
token is drawn top-down: with probability M_c (the children's total mass, from the cumulative
masses ``cum``) a child of c, found by binary search; otherwise a draw from the shorter context,
rejected (and redrawn) while it is a child of c. That is exact whenever the model is normalised,
and costs a few binary searches per token, with no V-sized work. Each sentence has its own
random stream (splitmix64 of the seed and its index), so a sentence's text does not depend on
which call or thread produced it. Trie arrays are as in ``ngram_query``.
"""

import numpy as np
from numba import njit

from .ngram_query import find_child

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True)
def sibling_cumsum(prob, child_start, vocab_size, bos, out):
    """Cumulative probability masses: out[g] = sum of 10^prob over g's earlier siblings and g.

    prob: float32[T] log10 p per node; child_start: int64[C+1]; out: float64[T] written. Unigrams
    (nodes 0..V-1) form one group, where ``<s>`` (never predicted, whatever its stored value)
    weighs nothing; every other node is grouped with its parent's children.
    """
    total = 0.0
    for w in range(vocab_size):
        if w != bos:
            total += 10.0 ** np.float64(prob[w])
        out[w] = total
    for p in range(child_start.shape[0] - 1):
        total = 0.0
        for g in range(child_start[p], child_start[p + 1]):
            total += 10.0 ** np.float64(prob[g])
            out[g] = total


@njit(cache=True, inline="always")
def _next_uniform(state):
    """splitmix64 step on state: uint64[1]; returns a float64 uniform in [0, 1) (53 bits)."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _pick(cum, lo, hi, u):
    """First index g in [lo, hi) with cum[g] > u (hi - 1 if none: rounding at the top)."""
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if cum[mid] <= u:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, end - 1)


@njit(cache=True, inline="always")
def _draw(nodes, top, child_start, word, cum, vocab_size, state):
    """One token from p(. | context whose suffix nodes are nodes[0..top]) (top = -1: unigrams)."""
    level = top
    while True:
        w = -1
        while level >= 0:  # a child of nodes[level] with probability M_c, picked by the same u
            c = nodes[level]
            lo, hi = child_start[c], child_start[c + 1]
            u = _next_uniform(state)
            if hi > lo and u < cum[hi - 1]:
                w = np.int64(word[_pick(cum, lo, hi, u)])
                break
            level -= 1
        if w < 0:
            w = np.int64(_pick(cum, 0, vocab_size, _next_uniform(state) * cum[vocab_size - 1]))
        m = level + 1
        while m <= top:
            if find_child(nodes[m], w, child_start, word) >= 0:
                break
            m += 1
        if m > top:
            return w
        level = m - 1


@njit(cache=True, nogil=True)
def sample_sentences(first, n_sentences, seed, max_len, order, child_start, word, cum, vocab_size,
                     bos, eos, unk, out_ids, out_lengths):
    """Sample sentences ``first .. first + n_sentences - 1`` of the stream fixed by ``seed``.

    Each starts in the context ``<s>`` and ends at ``</s>`` (not written) or after ``max_len``
    words; ``<unk>`` is never emitted (redrawn). cum: float64[T] from ``sibling_cumsum``.
    out_ids: int32[n_sentences * max_len], out_lengths: int32[n_sentences] written.
    Returns the number of ids written.
    """
    nodes = np.empty(max(order - 1, 1), np.int64)
    fresh = np.empty(max(order - 1, 1), np.int64)
    state = np.empty(1, np.uint64)
    n = 0
    for s in range(n_sentences):
        state[0] = np.uint64(seed) * _GOLDEN ^ (np.uint64(first + s) + np.uint64(1)) * np.uint64(0xD1B54A32D192ED03)
        _next_uniform(state)
        n_ctx = 1 if order > 1 else 0
        nodes[0] = bos
        length = 0
        while length < max_len:
            w = _draw(nodes, n_ctx - 1, child_start, word, cum, vocab_size, state)
            while w == unk or w == bos:
                w = _draw(nodes, n_ctx - 1, child_start, word, cum, vocab_size, state)
            if w == eos:
                break
            out_ids[n] = w
            n += 1
            length += 1
            if order > 1:
                fresh[0] = w
                k = 1
                while k < order - 1 and k <= n_ctx:
                    g = find_child(nodes[k - 1], w, child_start, word)
                    if g < 0:
                        break
                    fresh[k] = g
                    k += 1
                n_ctx = k
                nodes[:k] = fresh[:k]
        out_lengths[s] = length
    return n


@njit(cache=True, nogil=True)
def ids_to_text(ids, lengths, pool, offsets, out):
    """UTF-8 lines of space-separated tokens: pool[offsets[i]:offsets[i+1]] is token i's bytes.

    ids: int32[n]; lengths: int32[S]; out: uint8[>= text size]. Returns the bytes written.
    """
    at = 0
    src = 0
    for s in range(lengths.shape[0]):
        for j in range(lengths[s]):
            if j:
                out[at] = 32
                at += 1
            t = ids[src]
            src += 1
            for b in range(offsets[t], offsets[t + 1]):
                out[at] = pool[b]
                at += 1
        out[at] = 10
        at += 1
    return at
