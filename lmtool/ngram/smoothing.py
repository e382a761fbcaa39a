"""Counts -> probabilities and backoff weights, order by order and slice by slice; one class per method.

Every method gives, for each order n, the probability of each n-gram p(w | h) and, for each
n-gram used as a context h, the weight b(h) that scales the next lower order for words not seen
after h, so that p(w | h) = b(h) p(w | h') for those (ARPA's backoff semantics). Interpolated
methods write p(w | h) = u(w | h) + gamma(h) p(w | h'), whose backoff weight is gamma(h).
``<s>`` is never predicted (probability 1 by KenLM's convention, log10 0), and the uniform base
distribution covers the vocabulary without ``<s>``.

An order is worked through in slices of rows that hold every child of a range of contexts, so
that the counts can stay on disk (``spilled_runs.Run``) and only the previous order's probabilities,
plus Kneser-Ney's adjusted counts of the current one, are held whole. Within a slice the
arithmetic is vectorised with NumPy and sums run in row order, so the result does not depend
on where the slices are cut.
"""

import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import LmtoolWarning
from ..vocab import BOS
from .choices import DEFAULT_METHOD, SMOOTHING

STUPID_BACKOFF_ALPHA = 0.4
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
SLICE_ROWS = 1 << 20


class SmoothingWarning(LmtoolWarning):
    """A smoothing choice made on the user's behalf (e.g. fallback discounts); printed as one line."""


@dataclass
class Slice:
    """Rows ``lo:hi`` of order n, which hold every child of the context nodes ``c_lo:c_hi`` of order
    n-1 (the single empty context for unigrams); ``parent`` numbers each row's context from c_lo."""

    counts: object
    n: int
    lo: int
    hi: int
    c_lo: int
    c_hi: int
    parent: np.ndarray

    def field(self, name):
        return self.counts.rows(name, self.n, self.lo, self.hi)

    def sums(self, values):
        """Sum ``values`` (float64, one per row) over the children of each context, in row order."""
        from ..kernels.ngram_count import weighted_sums

        if self.n == 1:
            return np.array([values.sum()])
        return weighted_sums(self.parent, values, self.c_hi - self.c_lo)

    def children(self):
        """int64: the number of rows (children) of each context."""
        from ..kernels.ngram_count import occurrences

        return occurrences(self.parent, self.c_hi - self.c_lo)


def context_slices(counts, n, sizes, rows=None):
    """The ``Slice``s of order n, each of about ``rows`` rows (default ``SLICE_ROWS``; never fewer
    than a context can have children)."""
    size = sizes[n - 1]
    if n == 1:
        yield Slice(counts, 1, 0, size, 0, 1, np.zeros(size, np.int64))
        return
    rows = _slice_rows(counts, rows)
    lo = c_lo = 0
    while True:
        parent = counts.rows("parent", n, lo, min(lo + rows, size))
        hi, c_hi = lo + len(parent), sizes[n - 2]
        if hi < size:  # the last context may go on in the next rows: leave it to the next slice
            c_hi = int(parent[-1])
            parent = parent[:np.searchsorted(parent, parent.dtype.type(c_hi), "left")]
            hi = lo + len(parent)
        yield Slice(counts, n, lo, hi, c_lo, c_hi, parent.astype(np.int64) - c_lo)
        if hi >= size:
            return
        lo, c_lo = hi, c_hi


def _slice_rows(counts, rows=None):
    """``rows`` (default ``SLICE_ROWS``), or more than a vocabulary's worth: a context has fewer
    children than that."""
    return max(rows or SLICE_ROWS, counts.vocab_size + 1)


class Smoothing:
    """One method: ``begin(n)`` gathers what order n needs as a whole, then ``slice(s, lower)`` gives
    the probabilities of the slice's rows and the backoff weights of its contexts (None for
    unigrams), ``lower`` holding the probabilities of order n-1."""

    normalized = True

    def __init__(self, counts, sizes):
        self.counts = counts
        self.sizes = sizes
        self.order = len(sizes)
        self.info = {}
        self.threads = 1  # for the work on a whole order in ``begin`` (``Estimation.run`` sets it)
        self.prune = None  # ``count --prune`` thresholds per order (``Estimation`` sets them)

    def pruned(self, s):
        """bool per row of the slice ``s``: dropped by ``count --prune``; None when no row is. A dropped
        n-gram's mass goes to its context's backoff weight (see ``ngram.count_pruning``)."""
        from .count_pruning import pruned_rows

        return pruned_rows(self.counts, self.prune, s.n, s.lo, s.hi)

    def begin(self, n):
        pass

    def end(self):
        """Order done: drop what ``begin`` gathered for it."""

    def slice(self, s, lower):
        raise NotImplementedError

    def uniform(self):
        """The base distribution: uniform over the vocabulary without ``<s>``."""
        return 1.0 / (self.counts.vocab_size - 1)

    def interpolate(self, s, u, gamma, lower):
        """p(w|h) = u + gamma(h) p(w|h') over a slice (gamma per context), and the backoff weights."""
        if s.n == 1:
            p = u + gamma[0] * self.uniform()
            p[BOS] = 1.0
            return p, None
        p = u + gamma[s.parent] * lower[s.field("suffix")]
        return p, np.where(np.isnan(gamma), 1.0, gamma)


class _AdjustedCounts(Smoothing):
    """Kneser-Ney's adjusted counts a(.): the highest order, and n-grams starting with ``<s>`` (which
    nothing can precede), keep their raw counts; other n-grams count the distinct words seen
    before them (continuation counts, tallied from the suffix links of the order above)."""

    def begin(self, n):
        from ..kernels.ngram_count import add_occurrences
        from ..threads import for_each

        self.adjusted = None
        if n == self.order:
            return
        above, step = self.sizes[n], _slice_rows(self.counts)
        small = self.counts.rows("count", 1).sum() < 2**31  # no adjusted count exceeds the tokens
        a = np.zeros(self.sizes[n - 1], np.int32 if small else np.int64)
        parts = self.threads

        def tally(j):  # each thread reads every suffix link and counts those into its part of ``a``
            lo, hi = len(a) * j // parts, len(a) * (j + 1) // parts
            for start in range(0, above, step):
                add_occurrences(a, self.counts.rows("suffix", n + 1, start, min(start + step, above)), lo, hi)

        for_each(tally, range(parts), parts)
        lo, hi = self.bos_rows(n)
        a[lo:hi] = self.counts.rows("count", n, lo, hi)
        self.adjusted = a

    def end(self):
        self.adjusted = None

    def bos_rows(self, n):
        """The n-grams starting with ``<s>``: one run of rows, the children of those of order n-1."""
        lo, hi = BOS, BOS + 1
        for k in range(2, n + 1):
            lo, hi = self.counts.first_child(k, lo), self.counts.first_child(k, hi)
        return lo, hi

    def adjusted_rows(self, s):
        return s.field("count").astype(np.int64) if self.adjusted is None else self.adjusted[s.lo:s.hi]

    def counts_of_counts(self, n, upto):
        """t_k, the number of n-grams of order n with adjusted count k, for k = 1..upto (t_0 unused);
        slice by slice (on ``self.threads`` threads), so that counts on disk are read a slice at a time."""
        from ..kernels.ngram_count import capped_occurrences
        from ..threads import ordered_map

        size, step = self.sizes[n - 1], _slice_rows(self.counts)

        def tally(lo):
            hi = min(lo + step, size)
            rows = self.counts.rows("count", n, lo, hi) if self.adjusted is None else self.adjusted[lo:hi]
            return capped_occurrences(rows, upto + 1)[:upto + 1]

        return sum(ordered_map(tally, range(0, size, step), self.threads),
                   np.zeros(upto + 1, np.int64))  # an order may have no n-grams at all


def _left_by_pruned(pruned, a, d_of):
    """What each row leaves to the lower order: its discount, or with ``count --prune`` all of a dropped
    n-gram's adjusted count (lmplz's rule, which keeps every context summing to one)."""
    return d_of if pruned is None else np.where(pruned, a, d_of)


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
                  f"D3+={fallback[2]:g}", SmoothingWarning, stacklevel=2)
    return list(fallback), True


class ModifiedKneserNey(_AdjustedCounts):
    """Interpolated modified Kneser-Ney with three discounts per order, as KenLM's lmplz computes it.

    u(w|h) = (a(hw) - D(a(hw))) / sum_v a(hv);  gamma(h) = sum_k D_k N_k(h) / sum_v a(hv), with N_k(h)
    the number of words after h with adjusted count k (3 meaning 3 or more); unigrams interpolate
    with the uniform distribution. ``discounts`` (list of (D1, D2, D3+) per order) overrides the
    estimates.
    """

    def __init__(self, counts, sizes, discounts=None, fallback=FALLBACK_DISCOUNTS):
        super().__init__(counts, sizes)
        self.given, self.fallback = discounts, fallback
        self.info = {"discounts": [], "fallback": []}

    def begin(self, n):
        super().begin(n)
        if self.given is not None:
            d, fell = list(self.given[n - 1]), False
        else:
            d, fell = _mkn_discounts(self.counts_of_counts(n, 4), n, self.fallback)
        self.info["discounts"].append(d)
        self.info["fallback"].append(fell)
        self.discount = np.array([0.0] + list(d))

    def slice(self, s, lower):
        a = self.adjusted_rows(s)
        d_of = self.discount[np.minimum(a, 3)]
        denominator = s.sums(a.astype(np.float64))
        left = _left_by_pruned(self.pruned(s), a, d_of)
        with np.errstate(invalid="ignore", divide="ignore"):
            gamma = s.sums(left) / denominator
            u = (a - d_of) / denominator[s.parent]
        return self.interpolate(s, u, gamma, lower)


class KneserNey(_AdjustedCounts):
    """Interpolated Kneser-Ney with one discount per order, D = t_1 / (t_1 + 2 t_2) (Ney et al.)."""

    def __init__(self, counts, sizes, fallback=FALLBACK_DISCOUNTS[0]):
        super().__init__(counts, sizes)
        self.fallback = fallback
        self.info = {"discounts": []}

    def begin(self, n):
        super().begin(n)
        t = self.counts_of_counts(n, 2)
        if t[1] == 0:
            warnings.warn(f"order {n}: cannot estimate the Kneser-Ney discount (no {n}-grams with adjusted "
                          f"count 1); using fallback D={self.fallback:g}", SmoothingWarning, stacklevel=2)
            self.discount = self.fallback
        else:
            self.discount = t[1] / (t[1] + 2.0 * t[2])
        self.info["discounts"].append(self.discount)

    def slice(self, s, lower):
        a = self.adjusted_rows(s)
        d_of = np.where(a > 0, self.discount, 0.0)
        denominator = s.sums(a.astype(np.float64))
        left = _left_by_pruned(self.pruned(s), a, d_of)
        with np.errstate(invalid="ignore", divide="ignore"):
            gamma = s.sums(left) / denominator
            u = np.maximum(a - d_of, 0.0) / denominator[s.parent]
        return self.interpolate(s, u, gamma, lower)


class WittenBell(Smoothing):
    """Interpolated Witten-Bell on raw counts: p(w|h) = (c(hw) + N1+(h.) p(w|h')) / (c(h.) + N1+(h.))."""

    def slice(self, s, lower):
        c = s.field("count").astype(np.float64)
        total = s.sums(c)
        types = s.sums((c > 0).astype(np.float64))
        pruned = self.pruned(s)
        left = types if pruned is None else types + s.sums(np.where(pruned, c, 0.0))  # dropped: all to gamma
        with np.errstate(invalid="ignore", divide="ignore"):
            gamma = left / (total + types)
            u = c / (total + types)[s.parent]
        return self.interpolate(s, u, gamma, lower)


class AddK(Smoothing):
    """Add-k (Laplace for k = 1) as a backoff model, like SRILM's ``-addsmooth``.

    A word seen after context h gets (c(hw) + k) / (c(h.) + k V), V the vocabulary without ``<s>``;
    the mass left for words not seen after h goes to the lower order, renormalised over those
    words. Unigrams are plain add-k over the whole vocabulary.
    """

    def __init__(self, counts, sizes, k=1.0):
        super().__init__(counts, sizes)
        self.k = k
        self.info = {"k": k}

    def slice(self, s, lower):
        k, V = self.k, self.counts.vocab_size - 1
        c = s.field("count").astype(np.float64)
        total = s.sums(c)
        if s.n == 1:
            p = (c + k) / (total[0] + k * V)
            p[BOS] = 1.0
            return p, None
        p = (c + k) / (total + k * V)[s.parent]
        explicit = p
        lower_explicit = lower[s.field("suffix")]
        pruned = self.pruned(s)
        if pruned is not None:  # dropped n-grams back off: the weight is taken over the kept ones only
            explicit, lower_explicit = np.where(pruned, 0.0, explicit), np.where(pruned, 0.0, lower_explicit)
        seen = s.sums(explicit)
        lower_seen = s.sums(lower_explicit)
        with np.errstate(invalid="ignore", divide="ignore"):
            b = (1.0 - seen) / (1.0 - lower_seen)
        has_children = s.children() > 0
        return p, np.where(has_children & (lower_seen < 1.0 - 1e-12), b, 1.0)


class StupidBackoff(Smoothing):
    """Stupid backoff (Brants et al. 2007): S(w|h) = c(hw)/c(h.) if seen, else alpha S(w|h').

    Scores, not probabilities: they do not sum to one, so perplexity is refused. Unigrams never
    seen (``<unk>`` included) score as if seen once.
    """

    normalized = False

    def __init__(self, counts, sizes, alpha=STUPID_BACKOFF_ALPHA):
        super().__init__(counts, sizes)
        self.alpha = alpha
        self.info = {"alpha": alpha}

    def slice(self, s, lower):
        c = s.field("count").astype(np.float64)
        total = s.sums(c)
        if s.n == 1:
            p = np.maximum(c, 1.0) / total[0]
            p[BOS] = 1.0
            return p, None
        with np.errstate(invalid="ignore", divide="ignore"):
            p = c / total[s.parent]
        return p, np.where(total > 0, self.alpha, 1.0)


class Estimation:
    """Smooth counts (``NgramCounts`` in memory or a ``spilled_runs.Run`` on disk) with ``method``: ``run()``
    yields ``(slice, prob, backoff)`` order by order, unigrams first; ``normalized`` and ``info``
    (what the method decided, such as discounts) are complete once the iteration is.

    Each order's probabilities are kept for the next order, in memory or, with ``folder``, in a
    file there, read back only once the order is done (so at most one order's is held at a time).
    With ``prune`` (``count --prune`` thresholds per order) every n-gram is still smoothed, and
    the methods move the mass of those dropped to the backoff weights; ``assemble.model_arrays``
    leaves them out of the model.
    """

    def __init__(self, counts, method=DEFAULT_METHOD, folder=None, prune=None, **options):
        self.counts = counts
        self.sizes = counts.sizes()
        self.method = SMOOTHING[method](counts, self.sizes, **options)
        self.method.prune = prune
        self.prune = prune  # ``count --prune`` thresholds per order, or None
        self.normalized = self.method.normalized
        self.info = self.method.info
        self.folder = folder

    def held_bytes(self):
        """The most held whole at once (slices aside): order n-1's probabilities while order n is
        worked through, plus Kneser-Ney's adjusted counts of order n below the top."""
        adjusted = 4 if isinstance(self.method, _AdjustedCounts) else 0
        top = len(self.sizes)
        return max((8 * self.sizes[n - 2] + (adjusted * self.sizes[n - 1] if n < top else 0)
                    for n in range(2, top + 1)), default=0)

    def run(self, then=None, threads=1):
        """Yield ``(slice, prob, backoff)`` in order, or ``(slice, prob, then(slice, prob, backoff))``.

        With ``threads`` > 1 the slices of an order are smoothed (and ``then`` applied) on that
        many threads, one slice each at a time (``--memory`` counts on this); a slice's arithmetic
        does not depend on its neighbours, so the values are the same as on one thread. Orders
        still go one after the other: each needs the whole of the one below.
        """
        from ..threads import ordered_map

        lower = None
        order = len(self.sizes)
        self.method.threads = threads
        for n in range(1, order + 1):
            self.method.begin(n)
            kept = _Kept(self.sizes[n - 1], self.folder, n) if n < order else None  # the next order's ``lower``

            def smooth(s, lower=lower):
                prob, backoff = self.method.slice(s, lower)
                return s, prob, backoff if then is None else then(s, prob, backoff)

            slices = context_slices(self.counts, n, self.sizes)
            for s, prob, result in ordered_map(smooth, slices, threads, in_flight=threads):  # one slice each
                if kept is not None:
                    kept.put(s.lo, prob)
                yield s, prob, result
            self.method.end()
            del smooth  # it holds order n-1's probabilities too
            lower = None  # order n-1's, freed before order n's is read back
            lower = kept.get() if kept is not None else None


class _Kept:
    """float64[size] filled in order, in memory or in a file inside ``folder``."""

    def __init__(self, size, folder, n):
        self.path = None if folder is None else os.path.join(folder, f"prob{n}")
        self.values = np.empty(size) if folder is None else None
        self.file = None if folder is None else open(self.path, "wb")

    def put(self, lo, values):
        if self.file is None:
            self.values[lo:lo + len(values)] = values
        else:
            self.file.write(np.ascontiguousarray(values, np.float64).data)

    def get(self):
        if self.file is not None:
            self.file.close()
            self.values = np.fromfile(self.path, np.float64)
            os.remove(self.path)
        return self.values
