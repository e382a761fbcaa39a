"""Numba kernels of model mixtures: linear (a weighted sum of the members' probabilities) and
log-linear (a weighted sum of their log-probabilities, normalised over the vocabulary).

Every probability is a log10, as the models give them. A member's probability of a word is taken
over the mixture's vocabulary: ``share[w]`` is the log10 of how many mixture words the member's
``<unk>`` stands for when it lacks ``w`` (0 for a word it has), subtracted from its log10
p(``<unk>``), so each member stays a distribution over the mixture's vocabulary.
"""

import math

import numpy as np
from numba import njit

LN10 = math.log(10.0)
LOG10_FLOOR = -99.0
"""log10 of a probability too small to matter (a float32 distribution's underflowed zero): keeps a
log-linear weight times it finite."""


TINY = 1e-30
"""A float32 sum of weighted probabilities below this is recomputed in float64 log space (float32
underflows near 1e-38, and a sum this small has lost digits)."""


@njit(cache=True, nogil=True)
def linear_tokens(logp, shares, targets, weights, rows, lengths, token, sentence):
    """P(w | h) = sum_i w_i(h) P_i(w | h) for every token of a batch of sentences.

    logp: float32[M, N] log10 P_i of each token as member i scores it; shares: float32[M, V];
    targets: int32[N] mixture id of each token (words, then each sentence's ``</s>``);
    weights: float64[R, M] rows of weights w_i; rows: int32[N] the row of each token's history
    (all 0 for one set of weights); lengths: int32[S] words per sentence (N = sum(lengths) + S). Writes
    token: float32[N] log10 P(w | h) and sentence: float64[S], the sum of each sentence's
    lengths[s] + 1 tokens.

    The sum runs member by member over all tokens in float32 (one exp a member and a token, in
    loops the compiler vectorises), then one log10 a token; a token whose sum is below ``TINY``
    (every member all but rules it out) is summed again in float64 log space.
    """
    M, N = logp.shape
    ln10 = np.float32(LN10)
    acc = np.zeros(N, np.float32)
    for i in range(M):
        w = weights[:, i].astype(np.float32)
        if not (w > 0.0).any():
            continue
        if w.shape[0] == 1:  # one set of weights: no gather per token (it costs ~25% of this loop)
            w0 = w[0]
            for t in range(N):
                acc[t] += w0 * np.exp((logp[i, t] - shares[i, targets[t]]) * ln10)
        else:
            for t in range(N):
                acc[t] += w[rows[t]] * np.exp((logp[i, t] - shares[i, targets[t]]) * ln10)
    t = 0
    for s in range(lengths.shape[0]):
        total = 0.0
        for _ in range(lengths[s] + 1):
            a = acc[t]
            lp = math.log10(np.float64(a)) if a >= TINY else _log10_sum(logp, shares, targets, weights[rows[t]], t)
            token[t] = lp
            total += lp
            t += 1
        sentence[s] = total
    return sentence


@njit(cache=True, nogil=True, inline="always")
def _log10_sum(logp, shares, targets, weights, t):
    """log10 sum_i w_i 10^(logp[i, t] - share), in float64 with the largest term factored out."""
    top = -np.inf
    for i in range(logp.shape[0]):
        if weights[i] > 0.0:
            top = max(top, math.log10(weights[i]) + logp[i, t] - shares[i, targets[t]])
    if top == -np.inf:
        return -np.inf
    acc = 0.0
    for i in range(logp.shape[0]):
        if weights[i] > 0.0:
            acc += math.exp((math.log10(weights[i]) + logp[i, t] - shares[i, targets[t]] - top) * LN10)
    return top + math.log10(acc)


@njit(cache=True, nogil=True)
def add_member(total, member, to_member, share, weight, linear):
    """Add one member's distributions, taken over the mixture's vocabulary, into ``total``.

    total: float64[P, V] (log10 terms); member: float[P, Vm] log10 p_i(w | h) over the member's
    vocabulary at P positions; to_member: int32[V] the member's id of each mixture word; share:
    float32[V]; weight: float64[P] the member's weight at each position. ``linear``: total[p, w]
    becomes log10(10^total + weight * p_i) (start from -inf); else total[p, w] += weight * log10 p_i,
    with log10 p_i floored at ``LOG10_FLOOR`` (start from 0).
    """
    P, V = total.shape
    if linear:
        for p in range(P):
            if weight[p] <= 0.0:
                continue
            lw = math.log10(weight[p])
            for w in range(V):
                v = lw + member[p, to_member[w]] - share[w]
                a = total[p, w]
                if v == -np.inf:
                    continue
                if a == -np.inf:
                    total[p, w] = v
                elif a > v:
                    total[p, w] = a + math.log10(1.0 + math.exp((v - a) * LN10))
                else:
                    total[p, w] = v + math.log10(1.0 + math.exp((a - v) * LN10))
    else:
        for p in range(P):
            if weight[p] == 0.0:
                continue
            for w in range(V):
                v = member[p, to_member[w]] - share[w]
                if not v >= LOG10_FLOOR:  # also catches NaN
                    v = LOG10_FLOOR
                total[p, w] += weight[p] * v


@njit(cache=True, nogil=True)
def log10_normalise(scores, bos, normaliser):
    """Turn each row of scores: float64[P, V] (log10 of unnormalised probabilities) into log10 of a
    distribution over every token but ``bos`` (which gets -inf), in place; normaliser: float64[P]
    receives each row's log10 sum. Z(h) = sum_w 10^scores[h, w]."""
    P, V = scores.shape
    for p in range(P):
        scores[p, bos] = -np.inf
        top = -np.inf
        for w in range(V):
            if scores[p, w] > top:
                top = scores[p, w]
        acc = 0.0
        for w in range(V):
            acc += math.exp((scores[p, w] - top) * LN10)
        z = top + math.log10(acc)
        normaliser[p] = z
        for w in range(V):
            scores[p, w] -= z


@njit(cache=True, nogil=True)
def loglinear_statistics(features, weights, targets, bos, grad, hess):
    """Log-likelihood, gradient and Hessian of a log-linear mixture at weights ``weights``.

    features: float32[M, P, V] each member's log10 p over the mixture's vocabulary (floored);
    weights: float64[M]; targets: int32[P] the token at each position. With
    log10 P(w | h) = sum_i l_i f_i(w) - log10 Z(h), the derivatives are d/dl_i = f_i(target) - E[f_i]
    and d2/dl_i dl_j = -ln(10) Cov(f_i, f_j), expectations under P(. | h) (an exponential family).
    Adds them, summed over positions, to grad: float64[M] and hess: float64[M, M]; returns the
    sum of log10 P(target | h).
    """
    M, P, V = features.shape
    expect = np.empty(M, np.float64)
    second = np.empty((M, M), np.float64)
    row = np.empty(V, np.float64)
    loglik = 0.0
    for p in range(P):
        top = -np.inf
        for w in range(V):
            v = 0.0
            for i in range(M):
                v += weights[i] * features[i, p, w]
            row[w] = v
            if w != bos and v > top:
                top = v
        acc = 0.0
        for w in range(V):
            if w == bos:
                row[w] = 0.0
            else:
                row[w] = math.exp((row[w] - top) * LN10)
                acc += row[w]
        expect[:] = 0.0
        second[:, :] = 0.0
        for w in range(V):
            q = row[w] / acc
            if q == 0.0:
                continue
            for i in range(M):
                fi = features[i, p, w]
                expect[i] += q * fi
                for j in range(i + 1):
                    second[i, j] += q * fi * features[j, p, w]
        y = targets[p]
        obs = 0.0
        for i in range(M):
            obs += weights[i] * features[i, p, y]
            grad[i] += features[i, p, y] - expect[i]
            for j in range(i + 1):
                c = -LN10 * (second[i, j] - expect[i] * expect[j])
                hess[i, j] += c
                if j != i:
                    hess[j, i] += c
        loglik += obs - (top + math.log10(acc))
    return loglik
