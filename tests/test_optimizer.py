"""The optimisers (``neural.optimizer``) against naive float64 versions: SGD, Adam as torch.optim.Adam,
clipping by the global L2 norm as torch.nn.utils.clip_grad_norm_."""

import numpy as np
import pytest

from lmtool.neural.optimizer import Optimizer, clip_scale
from lmtool.neural.spans import split_spans
from tests import naive

SIZE = 96
SUPPORT = np.array([[0, 5], [20, 41], [90, 96]], np.int64)  # where the gradients below may be nonzero
STEPS = 6
LRS = [0.01 * 0.7 ** t for t in range(STEPS)]  # a decaying rate, as the trainer's --decay gives


def gradients(seed, support=None):
    """STEPS float32 gradients whose values span 1e-9 .. 10 (Adam's eps matters at the small end),
    some exactly zero; with ``support``, zero outside it."""
    rng = np.random.default_rng(seed)
    grads = []
    for _ in range(STEPS):
        g = rng.standard_normal(SIZE) * 10.0 ** rng.uniform(-9, 1, SIZE)
        g[rng.random(SIZE) < 0.1] = 0.0
        if support is not None:
            g[~naive_mask(support)] = 0.0
        grads.append(g.astype(np.float32))
    return grads


def naive_mask(spans):
    mask = np.zeros(SIZE, bool)
    for a, b in spans:
        mask[a:b] = True
    return mask


def in_pieces(fn, support=None):
    """``map_spans`` as ``DataParallel`` hands it to ``Optimizer.step``, over uneven pieces."""
    if support is None:
        for span in ((0, 7), (7, 50), (50, SIZE)):
            fn(span)
    else:
        for part in split_spans(support, 3):
            fn(part)


def run(kind, grads, max_norm, resume_after=None, **step):
    """lmtool's optimiser over ``grads`` at LRS, each clipped to ``max_norm`` as the trainer does
    (``clip_scale``, folded into the step); with ``resume_after``, the state goes through
    ``state``/``load_state`` into a new optimiser after that many steps, as a checkpoint does."""
    params = np.random.default_rng(7).standard_normal(SIZE).astype(np.float32)
    optimizer = Optimizer(kind, SIZE)
    for t, (grad, lr) in enumerate(zip(grads, LRS)):
        if t == resume_after:
            arrays, info = optimizer.state()
            optimizer = Optimizer(kind, SIZE)
            optimizer.load_state({k: a.copy() for k, a in arrays.items()}, info)
        scale, _ = clip_scale(grad, max_norm, step.get("support"))
        optimizer.step(params, grad.copy(), lr, scale, **step)
    return params, optimizer


def expected(kind, grads, max_norm):
    params = np.random.default_rng(7).standard_normal(SIZE).astype(np.float32)
    clipped = [naive.clip_grad_norm(g, max_norm)[0] if max_norm > 0 else g for g in grads]
    if kind == "sgd":
        return naive.sgd(params, clipped, LRS), None
    theta, m, v = naive.adam(params, clipped, LRS)
    return theta, (m, v)


@pytest.mark.parametrize("max_norm", [0.0, 5.0, 1e6], ids=["no-clip", "clip-some", "clip-above-norm"])
@pytest.mark.parametrize("seed", [1, 2])
def test_clip_scale_is_clip_grad_norm(max_norm, seed):
    """The factor ``clip_scale`` returns times the gradient is torch's clipped gradient, read over the
    whole vector or over the gradient's support; the norm is the L2 norm. --clip 0 turns clipping off
    (torch would zero the gradient)."""
    grads = gradients(seed, SUPPORT)
    norms = [naive.clip_grad_norm(g, 5.0)[1] for g in grads]
    assert min(norms) < 5.0 < max(norms) < 1e6  # 5 clips some and not others, 1e6 none
    for grad in grads:
        want, norm = naive.clip_grad_norm(grad, max_norm)
        for support in (None, SUPPORT):
            scale, got_norm = clip_scale(grad, max_norm, support)
            assert got_norm == pytest.approx(norm, rel=1e-12)
            if max_norm == 0:
                assert scale == 1.0
            else:
                np.testing.assert_allclose(scale * grad.astype(np.float64), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("max_norm", [0.0, 1.0], ids=["no-clip", "clipped"])
@pytest.mark.parametrize("how", ["whole", "pieces", "support", "support-pieces", "resumed"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_steps_match_naive(kind, how, max_norm):
    """Six steps at a decaying rate give the naive optimiser's parameters (and, for Adam, moments),
    whether the vector is updated whole, in pieces on threads (``map_spans``), only over the
    gradient's support (SGD; Adam moves everywhere, its moments decaying without a gradient), or
    after going through a checkpoint's state halfway."""
    support = SUPPORT if how.startswith("support") else None
    step = {"support": support} if support is not None else {}
    if how.endswith("pieces"):
        step["map_spans"] = in_pieces
    grads = gradients(3, SUPPORT if support is not None else None)
    params, optimizer = run(kind, grads, max_norm, resume_after=STEPS // 2 if how == "resumed" else None, **step)
    want, moments = expected(kind, grads, max_norm)
    assert max_norm == 0 or any(np.linalg.norm(g) > max_norm for g in grads)  # clipping did happen
    # float32 parameters and arithmetic: within a few float32 roundings of the update (lr 0.01)
    np.testing.assert_allclose(params, want, rtol=0, atol=1e-6)
    if kind == "adam":
        assert optimizer.steps == STEPS
        np.testing.assert_allclose(optimizer.m, moments[0], rtol=1e-6, atol=1e-30)
        np.testing.assert_allclose(optimizer.v, moments[1], rtol=1e-6, atol=1e-30)
    if support is not None and kind == "sgd":
        start = np.random.default_rng(7).standard_normal(SIZE).astype(np.float32)
        outside = ~naive_mask(SUPPORT)
        np.testing.assert_array_equal(params[outside], start[outside])  # nothing written there

