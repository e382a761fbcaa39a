"""Numba kernels for n-best lists: word errors against a reference, and the exact line search of
minimum-error-rate training (Och 2003) over the weights that combine a hypothesis' scores."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def word_errors(hyp_ids, hyp_lengths, ref_ids, ref_lengths, hyp_list, out):
    """Levenshtein distance (substitutions, insertions, deletions) of each hypothesis to its list's
    reference, in words.

    hyp_ids: int32[n] the words of H hypotheses back to back, hyp_lengths: int32[H]; ref_ids: int32[r],
    ref_lengths: int32[L] one reference per list; hyp_list: int64[H] the list of each hypothesis;
    out: int32[H]. The usual dynamic programme, one row of the table at a time.
    """
    ref_start = np.zeros(ref_lengths.shape[0] + 1, np.int64)
    for l in range(ref_lengths.shape[0]):
        ref_start[l + 1] = ref_start[l] + ref_lengths[l]
    longest = 0
    for l in range(ref_lengths.shape[0]):
        longest = max(longest, ref_lengths[l])
    prev = np.empty(longest + 1, np.int32)
    cur = np.empty(longest + 1, np.int32)
    h0 = 0
    for h in range(hyp_lengths.shape[0]):
        r0 = ref_start[hyp_list[h]]
        m = ref_lengths[hyp_list[h]]
        for j in range(m + 1):
            prev[j] = j
        for i in range(hyp_lengths[h]):
            w = hyp_ids[h0 + i]
            cur[0] = i + 1
            for j in range(1, m + 1):
                best = prev[j - 1] + (0 if ref_ids[r0 + j - 1] == w else 1)
                if prev[j] + 1 < best:
                    best = prev[j] + 1
                if cur[j - 1] + 1 < best:
                    best = cur[j - 1] + 1
                cur[j] = best
            for j in range(m + 1):
                prev[j] = cur[j]
        out[h] = prev[m]
        h0 += hyp_lengths[h]


@njit(cache=True, nogil=True)
def envelope_breaks(intercept, slope, errors, list_start, break_x, break_delta):
    """Where each list's best hypothesis changes along a line of weights, and what that does to errors.

    Along the line, hypothesis h scores intercept[h] + x * slope[h] (float64[H]); each list's best
    is the upper envelope of its lines. list_start: int64[L + 1] (hypotheses of list l are
    list_start[l]..list_start[l+1]); errors: int64[H]. Writes, for each change of a list's best at
    x, break_x[k] = x and break_delta[k] = the change in that list's errors (arrays of at least H).
    Returns (number of breaks, total errors of the lists' best hypotheses as x -> -inf). Equal
    lines keep the earlier hypothesis, as a first-wins argmax does.
    """
    n_breaks = 0
    base = 0
    hull = np.empty(intercept.shape[0], np.int64)
    starts = np.empty(intercept.shape[0], np.float64)
    for l in range(list_start.shape[0] - 1):
        a, b = list_start[l], list_start[l + 1]
        if b <= a:
            continue
        order = np.argsort(slope[a:b], kind="mergesort") + a
        top = 0
        for j in order:
            if top > 0 and slope[j] == slope[hull[top - 1]]:
                if intercept[j] <= intercept[hull[top - 1]]:
                    continue
                top -= 1
            x = -np.inf
            while top > 0:
                t = hull[top - 1]
                x = (intercept[t] - intercept[j]) / (slope[j] - slope[t])
                if x <= starts[top - 1]:
                    top -= 1
                    x = -np.inf
                else:
                    break
            hull[top] = j
            starts[top] = x
            top += 1
        base += errors[hull[0]]
        for k in range(1, top):
            break_x[n_breaks] = starts[k]
            break_delta[n_breaks] = errors[hull[k]] - errors[hull[k - 1]]
            n_breaks += 1
    return n_breaks, base
