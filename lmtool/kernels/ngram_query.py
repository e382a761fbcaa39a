"""Numba kernels that query a backoff n-gram model stored as a trie of sorted levels.

Nodes of all orders are numbered globally: unigram node i is word i, then the bigrams, and so on.
``child_start[g]:child_start[g+1]`` is the range of node g's children (one order higher), sorted
by ``word``; ``prob`` (log10 p(w | h), per node) and ``backoff`` (log10 b(h), per node below the
highest order) complete the model. Scoring follows ARPA's semantics exactly as KenLM's query does:
the longest n-gram ending at the word gives its probability, plus the backoffs of every longer
context that exists.
"""

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def find_child(node, w, child_start, word):
    """Global index of the child of ``node`` whose last word is ``w``, or -1 (binary search)."""
    lo = child_start[node]
    hi = child_start[node + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if word[mid] < w:
            lo = mid + 1
        else:
            hi = mid
    if lo < child_start[node + 1] and word[lo] == w:
        return lo
    return -1


@njit(cache=True)
def context_nodes(history, order, child_start, word):
    """Nodes of the suffixes of ``history`` (int32[h], most recent last) that the model knows.

    Returns int64[k]: node of the last word, of the last two words, ... up to order-1 words,
    stopping at the first suffix the model does not have.
    """
    nodes = np.empty(max(order - 1, 0), np.int64)
    k = 0
    h = history.shape[0]
    while k < order - 1 and k < h:
        node = np.int64(history[h - 1 - k])
        ok = True
        for j in range(h - k, h):
            node = find_child(node, history[j], child_start, word)
            if node < 0:
                ok = False
                break
        if not ok:
            break
        nodes[k] = node
        k += 1
    return nodes[:k]


@njit(cache=True)
def next_logprobs(contexts, vocab_size, child_start, word, prob, backoff, bos, out):
    """log10 p(w | context) for every word w, for one context.

    contexts: int64[k] context nodes from ``context_nodes`` (shortest first). out: float64[V] is
    filled; ``<s>`` gets -inf since it is never predicted.
    """
    for w in range(vocab_size):
        out[w] = prob[w]
    for c in contexts:
        b = backoff[c]
        for w in range(vocab_size):
            out[w] += b
        for g in range(child_start[c], child_start[c + 1]):
            out[word[g]] = prob[g]
    out[bos] = -np.inf
