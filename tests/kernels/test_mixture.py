"""The linear mixture kernel (lmtool/kernels/mixture.py) against float64 NumPy from its definition."""

import numpy as np

from lmtool.kernels.mixture import linear_tokens


def reference(logp, shares, targets, weights, rows=None):
    """log10 sum_i w_i P_i in float64; weights: float64[M], or float64[R, M] picked by ``rows``."""
    w = weights[:, None] if weights.ndim == 1 else weights[rows].T
    terms = w * 10.0 ** (logp.astype(np.float64) - shares[:, targets].astype(np.float64))
    with np.errstate(divide="ignore"):
        return np.log10(terms.sum(axis=0))


def run(logp, shares, targets, weights, lengths, rows=None):
    token = np.empty(logp.shape[1], np.float32)
    sentence = np.empty(len(lengths), np.float64)
    table = np.atleast_2d(weights)
    rows = np.zeros(logp.shape[1], np.int32) if rows is None else rows
    linear_tokens(logp, shares, targets, table, rows, lengths, token, sentence)
    return token, sentence


def test_weighted_sums_and_sentence_totals_match_float64():
    rng = np.random.default_rng(3)
    M, V, lengths = 3, 17, np.array([4, 0, 7, 2], np.int32)
    N = int(lengths.sum()) + len(lengths)
    logp = rng.uniform(-6, 0, (M, N)).astype(np.float32)
    shares = np.where(rng.random((M, V)) < 0.3, rng.uniform(0, 2, (M, V)), 0).astype(np.float32)
    targets = rng.integers(0, V, N).astype(np.int32)
    weights = np.array([0.2, 0.0, 0.8])  # a member with weight 0 adds nothing
    token, sentence = run(logp, shares, targets, weights, lengths)
    expected = reference(logp, shares, targets, weights)
    np.testing.assert_allclose(token, expected, rtol=1e-6)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    np.testing.assert_allclose(sentence, np.add.reduceat(expected, starts), rtol=1e-6)


def test_tokens_below_float32_range_are_summed_in_log_space():
    """A sum under 1e-30 (here 1e-45 and 1e-38.5: float32 underflows or keeps few digits) is taken
    again in float64 log space; a token no member allows is -inf, and so is its sentence."""
    inf = np.inf
    logp = np.array([[-45.0, -38.5, -inf, -1.0], [-47.0, -inf, -inf, -inf]], np.float32)
    shares = np.zeros((2, 5), np.float32)
    targets = np.array([1, 2, 3, 4], np.int32)
    weights = np.array([0.5, 0.5])
    token, sentence = run(logp, shares, targets, weights, np.array([3], np.int32))
    expected = reference(logp, shares, targets, weights)
    np.testing.assert_allclose(token[[0, 1, 3]], expected[[0, 1, 3]], rtol=1e-6)
    assert token[0] < -45 and token[2] == -np.inf
    assert sentence[0] == -np.inf


def test_each_token_takes_the_weights_of_its_row():
    """Weights by context: token t is mixed with row rows[t]; a member at 0 in one row and not in
    another counts only where it is weighted; the log-space fallback takes the token's row too."""
    rng = np.random.default_rng(5)
    M, V, lengths = 3, 11, np.array([5, 3, 6], np.int32)
    N = int(lengths.sum()) + len(lengths)
    logp = rng.uniform(-6, 0, (M, N)).astype(np.float32)
    logp[:, 2] = [-40.0, -44.0, -43.0]  # below TINY: summed again in float64
    shares = np.zeros((M, V), np.float32)
    targets = rng.integers(0, V, N).astype(np.int32)
    table = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.0, 0.0, 1.0]])
    rows = rng.integers(0, 3, N).astype(np.int32)
    token, _ = run(logp, shares, targets, table, lengths, rows)
    np.testing.assert_allclose(token, reference(logp, shares, targets, table, rows), rtol=1e-6)
    one_row = rows == 2
    np.testing.assert_allclose(token[one_row], logp[2, one_row], rtol=1e-6)
