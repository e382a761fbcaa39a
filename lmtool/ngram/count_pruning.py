"""``count --prune``: lmplz's count thresholds, one per order, applied while smoothing.

An n-gram of order n >= 2 is dropped when its raw count (its occurrences in the corpus, as lmplz
counts them for pruning) is at most the threshold of order n; unigrams are never dropped. The
thresholds must not decrease with the order, so every prefix and suffix of a kept n-gram (whose
counts are at least its own) is kept too and the model stays a trie.

The counts of the dropped n-grams still shape the model, as in lmplz: discounts and Kneser-Ney's
adjusted counts are those of the unpruned counts, and the probability mass a dropped n-gram held
moves to its context's backoff weight (``ngram.smoothing``), so every context still sums to one.
"""

import numpy as np

from ..errors import LmtoolError


def check_thresholds(values, order):
    """lmplz's ``--prune`` thresholds as a list of ``order`` ints: at most one per order, from unigrams
    up, non-decreasing, the last repeated for the orders above; the unigrams' must be 0."""
    if not values:
        raise LmtoolError("--prune needs one threshold per order, from unigrams up (e.g. --prune 0 1 1)")
    thresholds = []
    for text in values:
        try:
            value = int(str(text), 10)
        except ValueError:
            raise LmtoolError(f"--prune thresholds are counts (whole numbers >= 0), got {text!r}") from None
        if value < 0:
            raise LmtoolError(f"--prune thresholds are counts (whole numbers >= 0), got {text!r}")
        thresholds.append(value)
    if len(thresholds) > order:
        raise LmtoolError(f"--prune gives thresholds for orders 1 to {len(thresholds)}, but the model has order "
                          f"{order}")
    if thresholds[0] != 0:
        raise LmtoolError(f"--prune: unigrams are never pruned, so the first threshold must be 0, got "
                          f"{thresholds[0]}")
    for lower, higher in zip(thresholds, thresholds[1:]):
        if higher < lower:
            given = " ".join(map(str, thresholds))
            raise LmtoolError(f"--prune thresholds must not decrease with the order ({given}): a dropped n-gram "
                              "would leave longer n-grams without their prefix")
    return thresholds + [thresholds[-1]] * (order - len(thresholds))


def kept_rows(counts, thresholds, n, lo=0, hi=None):
    """bool per n-gram ``lo:hi`` of order n of ``counts`` (``NgramCounts`` or a ``runs.Run``): kept by
    ``thresholds``; None when every one is (unigrams, a threshold of 0, or no thresholds)."""
    if thresholds is None or n == 1 or thresholds[n - 1] == 0:
        return None
    return counts.rows("count", n, lo, hi) > thresholds[n - 1]


def pruned_rows(counts, thresholds, n, lo=0, hi=None):
    """The complement of ``kept_rows`` (None when nothing is dropped)."""
    kept = kept_rows(counts, thresholds, n, lo, hi)
    return None if kept is None else ~kept


def kept_count(mask, size):
    """How many rows a ``kept_rows`` mask (or None, all of ``size``) keeps."""
    return size if mask is None else int(np.count_nonzero(mask))
