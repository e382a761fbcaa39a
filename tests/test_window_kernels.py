"""The fixed-window kernels (lmtool/kernels/window.py) against NumPy written from their equations."""

import numpy as np
import pytest

from lmtool.kernels import window as kernels
from lmtool.neural.window import windowed

V, N, E, H, B = 11, 3, 4, 5, 7


def arrays(dtype, seed=0):
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(V, E)).astype(dtype)
    ctx = rng.integers(0, V, (B, N)).astype(np.int32)
    ctx[0] = 4  # one word three times in a window: its gradient rows add up
    U = rng.normal(size=(N * E, H)).astype(dtype)
    d = rng.normal(size=H).astype(dtype)
    return rng, table, ctx, U, d


def test_contexts_cut_windows_from_the_sentence_and_pad_with_bos():
    ids = np.array([5, 6, 7, 8, 9], np.int32)
    x, y, offset = windowed(ids, np.array([3, 0, 2], np.int32))
    np.testing.assert_array_equal(x, [1, 5, 6, 7, 1, 1, 8, 9])
    np.testing.assert_array_equal(y, [5, 6, 7, 2, 2, 8, 9, 2])
    np.testing.assert_array_equal(offset, [0, 1, 2, 3, 0, 0, 1, 2])
    ctx = kernels.contexts(x, offset, np.arange(len(x)), 3, 1)
    np.testing.assert_array_equal(ctx, [[1, 1, 1], [1, 1, 5], [1, 5, 6], [5, 6, 7], [1, 1, 1], [1, 1, 1],
                                        [1, 1, 8], [1, 8, 9]])
    np.testing.assert_array_equal(kernels.contexts(x, offset, [7, 3], 1, 1), [[9], [7]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_and_scatter_into_column_slices_of_a_wider_buffer(dtype):
    _, table, ctx, _, _ = arrays(dtype)
    wide = np.full((B, H + N * E), -1, dtype)
    kernels.gather(table, ctx, wide[:, H:])
    np.testing.assert_array_equal(wide[:, H:], table[ctx].reshape(B, N * E))
    assert (wide[:, :H] == -1).all()
    grad = np.ones((V, E), dtype)
    kernels.scatter(wide[:, H:], ctx, grad)
    expected = np.ones((V, E), dtype)
    np.add.at(expected, ctx.reshape(-1), table[ctx].reshape(-1, E))
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("accumulate", [False, True])
def test_hidden_layer_forward_and_backward_match_their_equations(dtype, accumulate):
    rng, _, _, U, d = arrays(dtype)
    x = rng.normal(size=(B, N * E)).astype(dtype)
    h = np.empty((B, H), dtype)
    kernels.forward(x, U, d, h)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    np.testing.assert_allclose(h, np.tanh(x.astype(np.float64) @ U + d), **tol)
    dh = rng.normal(size=(B, H)).astype(dtype)
    da = dh.astype(np.float64) * (1 - h.astype(np.float64) ** 2)
    dU, dd = np.ones_like(U), np.ones_like(d)
    before = rng.normal(size=(B, N * E)).astype(dtype)
    dx = before.copy()
    kernels.backward(x, U, h, dh.copy(), dU, dd, dx, accumulate=accumulate)
    np.testing.assert_allclose(dU, 1 + x.T.astype(np.float64) @ da, **tol)
    np.testing.assert_allclose(dd, 1 + da.sum(axis=0), **tol)
    np.testing.assert_allclose(dx, da @ U.T + (before if accumulate else 0), **tol)


def test_wrappers_refuse_what_the_kernels_cannot_take():
    _, table, ctx, U, d = arrays(np.float32)
    x = np.empty((B, N * E), np.float32)
    with pytest.raises(ValueError, match="ctx: expected ids in"):
        kernels.gather(table, ctx + V, x)
    with pytest.raises(ValueError, match=r"x: expected float32\[7, 12\]"):
        kernels.gather(table, ctx, x[:, 1:])
    with pytest.raises(ValueError, match="unit stride"):
        kernels.forward(x, U, d, np.empty((H, B), np.float32).T)
    with pytest.raises(ValueError, match="float64"):
        kernels.forward(x.astype(np.float64), U, d, np.empty((B, H)))
    with pytest.raises(ValueError, match="window"):
        kernels.contexts(np.zeros(3, np.int32), np.zeros(3, np.int32), [0], 0, 1)
