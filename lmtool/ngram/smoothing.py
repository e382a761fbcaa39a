"""Counts -> probabilities and backoff weights: one function per smoothing method, and a registry.

Every method returns, for each order n, the probability of each n-gram p(w | h) and, for each
n-gram used as a context h, the weight b(h) that scales the next lower order for words not seen
after h, so that p(w | h) = b(h) p(w | h') for those (ARPA's backoff semantics). Interpolated
methods write p(w | h) = u(w | h) + gamma(h) p(w | h'), whose backoff weight is gamma(h).
Arithmetic is vectorised over whole orders with NumPy; ``<s>`` is never predicted (probability 1
by KenLM's convention, log10 0), and the uniform base distribution covers the vocabulary
without ``<s>``.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import LmtoolWarning
from ..vocab import BOS

STUPID_BACKOFF_ALPHA = 0.4
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


class SmoothingWarning(LmtoolWarning):
    """A smoothing choice made on the user's behalf (e.g. fallback discounts); printed as one line."""


@dataclass
class Estimate:
    """Probabilities (``prob[n-1]``: float64[M_n]) and backoff weights (``backoff[n-1]``: float64[M_n]
    for n < N; 1.0 where the n-gram is not a context), plus what the method decided (discounts)."""

    prob: list
    backoff: list
    normalized: bool = True
    info: dict = field(default_factory=dict)


def _context_sums(counts, n, values):
    """Sum ``values`` (float64[M_n]) over the children of each context node of order n-1."""
    if n == 1:
        return np.array([values.sum()])
    return np.bincount(counts.parent[n - 1], weights=values, minlength=len(counts.word[n - 2]))


def _parents(counts, n):
    """Context node of each n-gram (0 for unigrams, whose single context is the empty one)."""
    return np.zeros(len(counts.word[0]), np.int64) if n == 1 else counts.parent[n - 1]


def _uniform(counts):
    """The base distribution: uniform over the vocabulary without ``<s>``."""
    return 1.0 / (counts.vocab_size - 1)


def _interpolate(counts, u, gamma):
    """Combine per-order u(w|h) and gamma(h) (gamma[n-1] indexed by the context node of order n-1,
    gamma[0] the empty context) into p(w|h) = u + gamma(h) p(w|h'), and the backoff arrays."""
    N = counts.order
    prob = []
    for n in range(1, N + 1):
        if n == 1:
            p = u[0] + gamma[0][0] * _uniform(counts)
            p[BOS] = 1.0
        else:
            p = u[n - 1] + gamma[n - 1][counts.parent[n - 1]] * prob[n - 2][counts.suffix[n - 1]]
        prob.append(p)
    backoff = [np.where(np.isnan(g), 1.0, g) for g in gamma[1:]]
    return prob, backoff


def adjusted_counts(counts):
    """Kneser-Ney's adjusted counts a(.) for every order (list of int64[M_n]).

    The highest order, and n-grams starting with ``<s>`` (which nothing can precede), keep their
    raw counts; other n-grams count the distinct words seen before them (continuation counts).
    """
    N = counts.order
    adjusted = []
    for n in range(1, N + 1):
        if n == N:
            a = counts.count[n - 1].copy()
        else:
            a = counts.continuation_counts(n)
            bos = counts.starts_with_bos(n)
            a[bos] = counts.count[n - 1][bos]
        adjusted.append(a)
    return adjusted


def counts_of_counts(a, upto=4):
    """t_k, the number of n-grams with adjusted count k, for k = 1..upto (int64[upto+1], t_0 unused)."""
    return np.bincount(np.minimum(a, upto + 1), minlength=upto + 2)[:upto + 1]


def _mkn_discounts(t, n, fallback):
    """Chen & Goodman's eq. 26: D_k = k - (k+1) Y t_{k+1} / t_k, Y = t_1 / (t_1 + 2 t_2), k = 1..3.

    Falls back (with a one-line warning) where a t_k is zero or a discount leaves [0, k], as
    KenLM's ``--discount_fallback`` does.
    """
    problem = None
    for k in (1, 2, 3):
        if t[k] == 0:
            problem = f"no {n}-grams with adjusted count {k}"
            break
    if problem is None:
        y = t[1] / (t[1] + 2.0 * t[2])
        d = [k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3)]
        bad = [k for k in (1, 2, 3) if not 0.0 <= d[k - 1] <= k]
        if not bad:
            return d, False
        problem = f"discount D{bad[0]}={d[bad[0] - 1]:.4g} out of range"
    warnings.warn(f"order {n}: cannot estimate modified Kneser-Ney discounts ({problem}; small or "
                  f"artificial data?); using fallback D1={fallback[0]:g} D2={fallback[1]:g} "
                  f"D3+={fallback[2]:g}", SmoothingWarning, stacklevel=3)
    return list(fallback), True


def modified_kneser_ney(counts, discounts=None, fallback=FALLBACK_DISCOUNTS):
    """Interpolated modified Kneser-Ney with three discounts per order, as KenLM's lmplz computes it.

    u(w|h) = (a(hw) - D(a(hw))) / sum_v a(hv);  gamma(h) = sum_k D_k N_k(h) / sum_v a(hv), with N_k(h)
    the number of words after h with adjusted count k (3 meaning 3 or more); unigrams interpolate
    with the uniform distribution. ``discounts`` (list of (D1, D2, D3+) per order) overrides the
    estimates.
    """
    adjusted = adjusted_counts(counts)
    table = []
    u, gamma = [], []
    fell_back = []
    for n in range(1, counts.order + 1):
        a = adjusted[n - 1]
        if discounts is not None:
            d, fell = list(discounts[n - 1]), False
        else:
            d, fell = _mkn_discounts(counts_of_counts(a), n, fallback)
        table.append(d)
        fell_back.append(fell)
        d_of = np.array([0.0] + list(d))[np.minimum(a, 3)]
        denominator = _context_sums(counts, n, a.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            gamma.append(_context_sums(counts, n, d_of) / denominator)
            u.append((a - d_of) / denominator[_parents(counts, n)])
    prob, backoff = _interpolate(counts, u, gamma)
    return Estimate(prob, backoff, info={"discounts": table, "fallback": fell_back})


def kneser_ney(counts, fallback=FALLBACK_DISCOUNTS[0]):
    """Interpolated Kneser-Ney with one discount per order, D = t_1 / (t_1 + 2 t_2) (Ney et al.)."""
    adjusted = adjusted_counts(counts)
    u, gamma, table = [], [], []
    for n in range(1, counts.order + 1):
        a = adjusted[n - 1]
        t = counts_of_counts(a)
        if t[1] == 0:
            warnings.warn(f"order {n}: cannot estimate the Kneser-Ney discount (no {n}-grams with adjusted "
                          f"count 1); using fallback D={fallback:g}", SmoothingWarning, stacklevel=2)
            d = fallback
        else:
            d = t[1] / (t[1] + 2.0 * t[2])
        table.append(d)
        d_of = np.where(a > 0, d, 0.0)
        denominator = _context_sums(counts, n, a.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            gamma.append(_context_sums(counts, n, d_of) / denominator)
            u.append(np.maximum(a - d_of, 0.0) / denominator[_parents(counts, n)])
    prob, backoff = _interpolate(counts, u, gamma)
    return Estimate(prob, backoff, info={"discounts": table})


def witten_bell(counts):
    """Interpolated Witten-Bell on raw counts: p(w|h) = (c(hw) + N1+(h.) p(w|h')) / (c(h.) + N1+(h.))."""
    u, gamma = [], []
    for n in range(1, counts.order + 1):
        c = counts.count[n - 1].astype(np.float64)
        total = _context_sums(counts, n, c)
        types = _context_sums(counts, n, (c > 0).astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            gamma.append(types / (total + types))
            u.append(c / (total + types)[_parents(counts, n)])
    prob, backoff = _interpolate(counts, u, gamma)
    return Estimate(prob, backoff)


def add_k(counts, k=1.0):
    """Add-k (Laplace for k = 1) as a backoff model, like SRILM's ``-addsmooth``.

    A word seen after context h gets (c(hw) + k) / (c(h.) + k V), V the vocabulary without ``<s>``;
    the mass left for words not seen after h goes to the lower order, renormalised over those
    words. Unigrams are plain add-k over the whole vocabulary.
    """
    V = counts.vocab_size - 1
    prob, backoff = [], []
    for n in range(1, counts.order + 1):
        c = counts.count[n - 1].astype(np.float64)
        total = _context_sums(counts, n, c)
        if n == 1:
            p = (c + k) / (total[0] + k * V)
            p[BOS] = 1.0
            prob.append(p)
            continue
        parent = counts.parent[n - 1]
        p = (c + k) / (total + k * V)[parent]
        seen = _context_sums(counts, n, p)
        lower_seen = _context_sums(counts, n, prob[n - 2][counts.suffix[n - 1]])
        with np.errstate(invalid="ignore", divide="ignore"):
            b = (1.0 - seen) / (1.0 - lower_seen)
        has_children = np.bincount(parent, minlength=len(counts.word[n - 2])) > 0
        backoff.append(np.where(has_children & (lower_seen < 1.0 - 1e-12), b, 1.0))
        prob.append(p)
    return Estimate(prob, backoff, info={"k": k})


def stupid_backoff(counts, alpha=STUPID_BACKOFF_ALPHA):
    """Stupid backoff (Brants et al. 2007): S(w|h) = c(hw)/c(h.) if seen, else alpha S(w|h').

    Scores, not probabilities: they do not sum to one, so perplexity is refused. Unigrams never
    seen (``<unk>`` included) score as if seen once.
    """
    prob, backoff = [], []
    for n in range(1, counts.order + 1):
        c = counts.count[n - 1].astype(np.float64)
        total = _context_sums(counts, n, c)
        if n == 1:
            p = np.maximum(c, 1.0) / total[0]
            p[BOS] = 1.0
        else:
            p = c / total[counts.parent[n - 1]]
            backoff.append(np.where(total > 0, alpha, 1.0))
        prob.append(p)
    return Estimate(prob, backoff, normalized=False, info={"alpha": alpha})


METHODS = {
    "modified-kneser-ney": modified_kneser_ney,
    "kneser-ney": kneser_ney,
    "witten-bell": witten_bell,
    "add-k": add_k,
    "stupid-backoff": stupid_backoff,
}
DEFAULT_METHOD = "modified-kneser-ney"


def estimate(counts, method=DEFAULT_METHOD, **options):
    """Run smoothing ``method`` (a name in ``METHODS``) on ``NgramCounts``; returns an ``Estimate``."""
    return METHODS[method](counts, **options)
