"""Recurrent-cell and softmax kernels against finite differences, the NumPy reference and PyTorch."""

import os
import subprocess
import sys

import numpy as np
import pytest

from lmtool.kernels import dense, gru, lstm, lstm_coupled, lstm_peephole, rnn
from lmtool.neural.classes import WordClasses, make_classes
from lmtool.neural.output import ClassSoftmax, FullSoftmax
from tests import naive_recurrent as naive
from tests.helpers import import_unless_ci

CELLS = [(lstm, None), (gru, None), (rnn, "tanh"), (rnn, "relu"), (rnn, "sigmoid"), (lstm_peephole, None),
         (lstm_coupled, None)]
IDS = ["lstm", "gru", "rnn-tanh", "rnn-relu", "rnn-sigmoid", "lstm-peephole", "lstm-coupled"]
NAMES = {lstm: "lstm", gru: "gru", rnn: "rnn", lstm_peephole: "lstm-peephole", lstm_coupled: "lstm-coupled"}
T, B, I, H = 5, 3, 4, 6


def segment(cell, dtype, seed=0):
    """Random weights, inputs, initial state and resets for one small segment."""
    rng = np.random.default_rng(seed)
    p = {k: rng.uniform(-0.6, 0.6, s).astype(dtype) for k, s in cell.param_shapes(I, H).items()}
    x = rng.normal(size=(T, B, I)).astype(dtype)
    state = {name: rng.normal(size=(B, H)).astype(dtype) for name in cell.STATE}
    reset = np.zeros((T, B), bool)
    reset[0, 0] = reset[2, 1] = True
    return p, x, state, reset


def run(cell, activation, p, x, state, reset):
    ws = cell.workspace(*x.shape, H, x.dtype)
    for name, v in state.items():
        ws[name][0] = v
    cell.forward(x, p, ws, reset, activation or "tanh")
    return ws


def reference(cell, activation, p, x, state, reset):
    return naive.LAYERS[NAMES[cell]](x, p, tuple(state[n] for n in cell.STATE), reset, activation)


@pytest.mark.parametrize("cell,activation", CELLS, ids=IDS)
def test_cell_forward_matches_numpy_reference_in_float32(cell, activation):
    p, x, state, reset = segment(cell, np.float32)
    ws = run(cell, activation, p, x, state, reset)
    hs, final = reference(cell, activation, p, x, state, reset)
    np.testing.assert_allclose(ws["h"][1:], hs, atol=2e-6)
    for name, v in zip(cell.STATE, final):
        np.testing.assert_allclose(ws[name][-1], v, atol=2e-6)


@pytest.mark.parametrize("cell,activation", CELLS, ids=IDS)
def test_cell_carries_state_across_segments(cell, activation):
    p, x, state, reset = segment(cell, np.float64)
    whole = run(cell, activation, p, x, state, reset)
    first = run(cell, activation, p, x[:2].copy(), state, reset[:2].copy())
    second = run(cell, activation, p, x[2:].copy(), {n: first[n][-1] for n in cell.STATE}, reset[2:].copy())
    np.testing.assert_allclose(second["h"][1:], whole["h"][3:], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell,activation", CELLS, ids=IDS)
def test_cell_gradients_match_central_differences_in_float64(cell, activation):
    p, x, state, reset = segment(cell, np.float64, seed=1)
    R = np.random.default_rng(2).normal(size=(T, B, H))  # loss = sum(h * R)

    def loss(p, x):
        return float(np.sum(run(cell, activation, p, x, state, reset)["h"][1:] * R))

    ws = run(cell, activation, p, x, state, reset)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dx = np.empty_like(x)
    cell.backward(x, p, ws, reset, R.copy(), dx, g, activation or "tanh")
    eps = 1e-6
    for name in list(p) + ["x"]:
        target = x if name == "x" else p[name]
        analytic = dx if name == "x" else g[name]
        numeric = np.zeros_like(target)
        for idx in np.ndindex(target.shape):
            orig = target[idx]
            target[idx] = orig + eps
            up = loss(p, x)
            target[idx] = orig - eps
            down = loss(p, x)
            target[idx] = orig
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("cell,activation", CELLS, ids=IDS)
def test_cell_gradients_match_central_differences_of_the_numpy_reference_in_float64(cell, activation):
    """The backward kernels against the equations themselves: finite differences of the slow
    reference (``tests/naive_recurrent.py``), not of the forward kernel."""
    p, x, state, reset = segment(cell, np.float64, seed=6)
    R = np.random.default_rng(7).normal(size=(T, B, H))  # loss = sum(h * R)

    def loss():
        return float(np.sum(reference(cell, activation, p, x, state, reset)[0] * R))

    ws = run(cell, activation, p, x, state, reset)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dx = np.empty_like(x)
    cell.backward(x, p, ws, reset, R.copy(), dx, g, activation or "tanh")
    targets = {**{k: (p[k], g[k]) for k in p}, "x": (x, dx)}
    eps = 1e-6
    for name, (target, analytic) in targets.items():
        numeric = np.zeros_like(target)
        for idx in np.ndindex(target.shape):
            orig = target[idx]
            target[idx] = orig + eps
            up = loss()
            target[idx] = orig - eps
            down = loss()
            target[idx] = orig
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=name)


def test_peephole_lstm_with_zero_peepholes_is_the_lstm():
    p, x, state, reset = segment(lstm_peephole, np.float64, seed=3)
    p["peep"][:] = 0
    plain = {k: p[k] for k in lstm.param_shapes(I, H)}
    a = run(lstm_peephole, None, p, x, state, reset)
    b = run(lstm, None, plain, x, state, reset)
    np.testing.assert_allclose(a["h"], b["h"], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(a["c"][-1], b["c"][-1], rtol=1e-14, atol=1e-15)
    p["peep"][:] = 0.5  # and the peepholes do change it
    assert not np.allclose(run(lstm_peephole, None, p, x, state, reset)["h"], b["h"])


def test_wrappers_reject_wrong_shapes_and_dtypes():
    p, x, state, reset = segment(lstm, np.float32)
    ws = lstm.workspace(T, B, I, H, np.float32)
    with pytest.raises(ValueError, match="float32"):
        lstm.forward(x.astype(np.float64), p, ws, reset)
    with pytest.raises(ValueError, match="reset"):
        lstm.forward(x, p, ws, reset[:2])
    with pytest.raises(ValueError, match="activation"):
        rnn.forward(x, {k: np.ascontiguousarray(v[..., :H]) for k, v in p.items()},
                    rnn.workspace(T, B, I, H, np.float32), reset, "softplus")


# ---------------------------------------------------------------------------------------------------
# Dense helpers.

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_transposes_accumulates_and_takes_row_slices(dtype):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(9, 5)).astype(dtype)
    b = rng.normal(size=(5, 7)).astype(dtype)
    c = rng.normal(size=(4, 7)).astype(dtype)
    expect = 0.5 * c + 2.0 * a[3:7] @ b
    dense.gemm(False, False, 2.0, a[3:7], b, 0.5, c)
    np.testing.assert_allclose(c, expect, rtol=1e-5)
    b2 = rng.normal(size=(6, 9)).astype(dtype)
    c2 = np.empty((5, 6), dtype)
    dense.gemm(True, True, 1.0, a, b2, 0.0, c2)
    np.testing.assert_allclose(c2, a.T @ b2.T, rtol=1e-5)


def test_gemm_falls_back_to_scipy_blas():
    code = ("import numpy as np; from lmtool.kernels import dense; assert dense.BLAS_BACKEND == "
            "'scipy-cython-blas'; a = np.arange(6.0).reshape(2, 3); c = np.ones((2, 2)); "
            "dense.gemm(False, True, 1.0, a, a, 1.0, c); assert np.allclose(c, 1 + a @ a.T)")
    env = dict(os.environ, LMTOOL_BLAS="scipy")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_float32_activations_are_accurate():
    x = np.linspace(-30, 30, 20001, dtype=np.float32)
    out = {name: np.empty_like(x) for name in ("tanh", "sigmoid", "exp")}
    _activations(x, out["tanh"], out["sigmoid"], out["exp"])
    xd = x.astype(np.float64)
    np.testing.assert_allclose(out["tanh"], np.tanh(xd), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["sigmoid"], 1 / (1 + np.exp(-xd)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["exp"], np.exp(xd), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fmax_gives_the_larger_value_and_a_running_maximum(dtype):
    from numba import njit

    @njit(**dict(dense.KERNEL, cache=False))
    def running_max(x):
        m = x[0]
        for i in range(x.shape[0]):
            m = dense.fmax(m, x[i])
        return m

    x = np.random.default_rng(4).normal(size=1001).astype(dtype)
    x[[17, 700]] = [-np.inf, 5.5]
    assert running_max(x) == x.max() == dtype(5.5)
    assert running_max(-np.abs(x)) == (-np.abs(x)).max()


def _activations(x, t, s, e):
    from numba import njit

    @njit(**dict(dense.KERNEL, cache=False))
    def kernel(x, t, s, e):
        for i in range(x.shape[0]):
            t[i] = dense.tanh(x[i])
            s[i] = dense.sigmoid(x[i])
            e[i] = dense.exp(x[i])
    kernel(x, t, s, e)


# ---------------------------------------------------------------------------------------------------
# Softmax output layers.

V, HO, N = 23, 5, 17


@pytest.fixture(scope="module")
def classes():
    counts = np.random.default_rng(1).zipf(1.5, V) % 1000
    return make_classes(counts, 5)


def outputs(classes):
    return [FullSoftmax(V, HO, block_rows=4), ClassSoftmax(V, HO, classes, budget=7)]


def softmax_case(out, dtype, seed=3):
    rng = np.random.default_rng(seed)
    p = {k: rng.normal(size=s).astype(dtype) for k, s in out.param_shapes().items()}
    hs = rng.normal(size=(N, out.H)).astype(dtype)
    y = rng.integers(0, V, N).astype(np.int32)
    y[[3, 10]] = -1
    return p, hs, y


def reference_log_probs(out, p, hs, y, classes):
    ref = np.zeros(N)
    for i in np.flatnonzero(y >= 0):
        h = hs[i].astype(np.float64)
        if isinstance(out, ClassSoftmax):
            c = classes.word_class[y[i]]
            s, e = classes.start[c], classes.start[c + 1]
            ref[i] = (naive.log_softmax(p["Wc"] @ h + p["bc"])[c]
                      + naive.log_softmax(p["W"][s:e] @ h + p["b"][s:e])[y[i] - s])
        else:
            ref[i] = naive.log_softmax(p["W"] @ h + p["b"])[y[i]]
    return ref


@pytest.mark.parametrize("kind", [0, 1], ids=["full", "class"])
def test_softmax_log_probs_and_loss_match_reference_in_float32(kind, classes):
    out = outputs(classes)[kind]
    p, hs, y = softmax_case(out, np.float32)
    ref = reference_log_probs(out, p, hs, y, classes)
    np.testing.assert_allclose(out.log_probs(hs, p, y), ref, atol=2e-5)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    loss = out.loss(hs, p, y, 1.0, np.empty_like(hs), g)
    assert loss == pytest.approx(-ref.sum(), rel=1e-5)


@pytest.mark.parametrize("kind", [0, 1], ids=["full", "class"])
def test_softmax_gradients_match_central_differences_in_float64(kind, classes):
    out = outputs(classes)[kind]
    p, hs, y = softmax_case(out, np.float64)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dhs = np.empty_like(hs)
    out.loss(hs, p, y, 0.5, dhs, g)
    eps = 1e-6
    for name in list(p) + ["hs"]:
        target, analytic = (hs, dhs) if name == "hs" else (p[name], g[name])
        numeric = np.zeros_like(target)
        for idx in np.ndindex(target.shape):
            orig = target[idx]
            target[idx] = orig + eps
            up = -0.5 * out.log_probs(hs, p, y).sum()
            target[idx] = orig - eps
            down = -0.5 * out.log_probs(hs, p, y).sum()
            target[idx] = orig
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8, err_msg=name)
    assert not dhs[[3, 10]].any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("H", [HO, 40])
@pytest.mark.parametrize("kind", [0, 1], ids=["full", "class"])
def test_deferred_gradient_and_norms_match_the_written_gradient(kind, H, dtype, classes):
    """``defer``: the output weights' gradient kept aside (class softmax: as factors; full softmax:
    transposed) for an SGD step to apply, instead of written into g["W"]; its norm is that of the
    written gradient, as is the class softmax kernel's norm of the rows it writes. Blocks of 4 rows
    (full) and a budget of 7 logits (class) cut the work into several pieces; the norm of a class
    with few tokens for its size and H is taken from the factors' dot products."""
    out = [FullSoftmax(V, H, block_rows=4), ClassSoftmax(V, H, classes, budget=7)][kind]
    p, hs, y = softmax_case(out, dtype)
    tol = dict(rtol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dhs = np.empty_like(hs)
    loss = out.loss(hs, p, y, 0.5, dhs, g)
    starts, ends = out.touched_rows(y)
    rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])
    assert out.deferred is None
    assert not g["W"][np.setdiff1d(np.arange(V), rows)].any()
    norm2 = np.sum(g["W"][rows].astype(np.float64) ** 2) + np.sum(g["b"][rows].astype(np.float64) ** 2)
    if kind == 1:
        assert len(rows) < V and out.written_norm2 == pytest.approx(norm2, rel=tol["rtol"])
    g2 = {k: np.zeros_like(v) for k, v in p.items()}
    dhs2 = np.empty_like(hs)
    assert out.loss(hs, p, y, 0.5, dhs2, g2, defer=True) == loss
    np.testing.assert_array_equal(dhs2, dhs)
    for name in set(p) - {"W"}:
        np.testing.assert_array_equal(g2[name], g[name])
    assert not g2["W"].any()
    assert out.written_norm2 == pytest.approx(norm2, rel=1e-10 if dtype == np.float64 else 1e-5)
    W = p["W"].copy()
    out.deferred.apply(W, 2.0)
    np.testing.assert_allclose(W, p["W"] - 2.0 * g["W"], **tol)
    assert out.loss(hs, p, y, 0.5, dhs2, g2) == loss and out.deferred is None


@pytest.mark.parametrize("shares", [1, 3])
@pytest.mark.parametrize("kind", [0, 1], ids=["full", "class"])
def test_deferred_gradients_of_shards_join_into_their_sum(kind, shares, classes):
    """Shards of a batch (``neural.parallel``): their deferred gradients joined (class by class, or
    transposed gradients summed) stand for the sum of their written gradients, in norm (taken as they
    are joined, ``shares`` ranges on a thread pool) and in the SGD step, also a share of the rows at
    a time (as threads apply them)."""
    from concurrent.futures import ThreadPoolExecutor

    out = [FullSoftmax(V, 40, block_rows=4), ClassSoftmax(V, 40, classes, budget=7)][kind]
    written = {k: np.zeros(s) for k, s in out.param_shapes().items()}
    parts, layers = [], [type(out)(V, 40, block_rows=4) if kind == 0 else out for _ in range(3)]
    for seed, layer in zip((3, 4, 5), layers):  # a full softmax's deferred gradient lives in its scratch
        p, hs, y = softmax_case(out, np.float64, seed=3)
        hs = np.random.default_rng(seed).normal(size=hs.shape)
        y = np.random.default_rng(seed).integers(0, V, N).astype(np.int32)
        y[seed] = -1
        out.loss(hs, p, y, 0.5, np.empty_like(hs), written)
        layer.loss(hs, p, y, 0.5, np.empty_like(hs), {k: np.zeros_like(v) for k, v in p.items()}, defer=True)
        parts.append(layer.deferred)
    with ThreadPoolExecutor(shares) as pool:
        joined, norm2 = type(parts[0]).join_normed(parts, pool.map, shares)
    assert norm2 == pytest.approx(np.sum(written["W"] ** 2), rel=1e-10)
    assert joined.squared_norm() == pytest.approx(norm2, rel=1e-12)
    W = p["W"].copy()
    joined.apply(W, 0.5)
    np.testing.assert_allclose(W, p["W"] - 0.5 * written["W"], rtol=1e-12)
    ranges = joined.split(3)
    assert ranges[0][0] == 0 and ranges[-1][1] == [V, classes.n_classes][kind]
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    W2 = p["W"].copy()
    for part in ranges:
        joined.apply(W2, 0.5, part)
    np.testing.assert_array_equal(W2, W)
    assert sum(joined.squared_norm(part) for part in ranges) == pytest.approx(norm2, rel=1e-12)


def test_full_softmax_norms_its_deferred_gradient_only_when_asked():
    """Shards skip the norm of their own transposed gradient (``DataParallel`` norms the joined one):
    ``written_norm2`` is taken on first use, and stands for the gradient as ``loss`` left it."""
    out = FullSoftmax(V, HO, block_rows=4)
    p, hs, y = softmax_case(out, np.float64)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    out.loss(hs, p, y, 0.5, np.empty_like(hs), g, defer=True)
    assert isinstance(out._written, tuple)
    W = np.zeros_like(p["W"])
    out.deferred.apply(W, -1.0)  # W = the gradient
    assert out.written_norm2 == pytest.approx(np.sum(W ** 2) + np.sum(g["b"] ** 2), rel=1e-12)
    assert isinstance(out._written, float)
    out.loss(hs, p, y, 0.5, np.empty_like(hs), g)
    assert out.written_norm2 is None and out.deferred is None


@pytest.mark.parametrize("kind", [0, 1], ids=["full", "class"])
def test_distributions_sum_to_one_and_agree_with_log_probs(kind, classes):
    out = outputs(classes)[kind]
    p, hs, y = softmax_case(out, np.float32)
    d = out.distribution(hs, p)
    assert d.dtype == np.float32 and d.shape == (N, V)
    np.testing.assert_allclose(d.sum(axis=1, dtype=np.float64), 1.0, atol=1e-5)
    ok = y >= 0
    np.testing.assert_allclose(np.log(d[ok, y[ok]]), out.log_probs(hs, p, y)[ok], atol=1e-5)


def test_make_classes_bins_by_frequency_into_contiguous_ranges():
    counts = np.array([0, 0, 50, 1000, 3, 3, 200, 7, 1, 90, 12, 5, 40, 2, 1, 1])
    for method in ("sqrt", "mass"):
        cl = make_classes(counts, 4, method)
        assert 1 <= cl.n_classes <= 4
        np.testing.assert_array_equal(cl.order[cl.rank], np.arange(len(counts)))
        assert list(cl.order[:3]) == [3, 6, 9]  # falling frequency
        assert np.all(np.diff(counts[cl.order]) <= 0)
        assert np.all(np.diff(cl.word_class) >= 0) and cl.word_class[-1] == cl.n_classes - 1
        again = WordClasses.from_arrays(**cl.arrays())
        np.testing.assert_array_equal(again.word_class, cl.word_class)
    assert make_classes(counts, 4, "mass").start[1] == 1  # the word with 70% of the mass is alone
    assert make_classes(counts).n_classes <= 4
    with pytest.raises(ValueError, match="n_classes"):
        make_classes(counts, 0)


# ---------------------------------------------------------------------------------------------------
# PyTorch's cells, given the same weights (skipped without torch; under CI=1 they fail instead).

@pytest.mark.parametrize("cell,activation", CELLS[:4], ids=IDS[:4])
def test_cells_match_torch(cell, activation):
    torch = import_unless_ci("torch", "pip install torch, as the bench extra does")
    p, x, state, _ = segment(cell, np.float32, seed=5)
    reset = np.zeros((T, B), bool)
    ws = run(cell, activation, p, x, state, reset)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    if cell is lstm:
        mod = torch.nn.LSTM(I, H)
        hx = (t(state["h"][None]), t(state["c"][None]))
    elif cell is gru:
        mod = torch.nn.GRU(I, H)
        hx = t(state["h"][None])
    else:
        mod = torch.nn.RNN(I, H, nonlinearity=activation)
        hx = t(state["h"][None])
    with torch.no_grad():
        mod.weight_ih_l0.copy_(t(p["U"].T))
        mod.weight_hh_l0.copy_(t(p["W"].T))
        mod.bias_ih_l0.copy_(t(p["b"]))
        mod.bias_hh_l0.zero_()
        if cell is gru:
            mod.bias_hh_l0[2 * H:] = t(p["bn"])
        out, _ = mod(t(x), hx)
    np.testing.assert_allclose(ws["h"][1:], out.numpy(), atol=1e-5)
