"""Numba kernels that ask a backoff n-gram trie (see ``ngram_query``) for whole distributions and
for single n-grams in any context: what log-linear mixtures normalise over, and what a static
merge of models needs of each member.
"""

import numpy as np
from numba import njit

from .ngram_query import context_nodes, find_child, next_logprobs


@njit(cache=True, nogil=True)
def position_logprobs(ids, lengths, order, child_start, word, prob, backoff, bos, out):
    """log10 p(w | history) of every word w at every token position of a batch of sentences.

    ids: int32[n] words of S sentences back to back; lengths: int32[S]. out: float64[n + S, V]
    gets one row per token (each sentence's words, then its ``</s>``), in the order of
    ``Scores.token``; every sentence starts after ``<s>``, and ``<s>`` gets -inf.
    """
    keep = max(order - 1, 1)
    history = np.empty(keep, np.int32)
    V = out.shape[1]
    row = 0
    src = 0
    for s in range(lengths.shape[0]):
        history[0] = bos
        h = 1 if order > 1 else 0
        for j in range(lengths[s] + 1):
            nodes = context_nodes(history[:h], order, child_start, word)
            next_logprobs(nodes, V, child_start, word, prob, backoff, bos, out[row])
            row += 1
            if j < lengths[s]:
                w = ids[src]
                src += 1
                if order > 1:
                    if h < keep:
                        history[h] = w
                        h += 1
                    else:
                        for k in range(keep - 1):
                            history[k] = history[k + 1]
                        history[keep - 1] = w


@njit(cache=True, nogil=True)
def conditional_logprobs(grams, order, child_start, word, prob, backoff, out):
    """log10 p(grams[g, -1] | grams[g, :-1]) for each row g, by ARPA backoff semantics.

    grams: int32[G, n] word ids, the context first (only its last order - 1 words count; it need
    not start with ``<s>``); out: float64[G]. The longest n-gram the trie holds for the word gives
    its probability, plus the backoff weight of every longer context the trie holds.
    """
    G, n = grams.shape
    for g in range(G):
        w = grams[g, n - 1]
        lo = max(0, n - order)
        history = grams[g, lo:n - 1]
        nodes = context_nodes(history, order, child_start, word)
        k = nodes.shape[0]
        found = -1
        depth = 0
        for d in range(k - 1, -1, -1):  # longest context first
            child = find_child(nodes[d], w, child_start, word)
            if child >= 0:
                found = child
                depth = d + 1
                break
        lp = np.float64(prob[w]) if found < 0 else np.float64(prob[found])
        for d in range(depth, k):
            lp += backoff[nodes[d]]
        out[g] = lp
