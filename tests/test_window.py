"""The fixed-window model: gradients against the naive reference, scoring, generation, training."""

import numpy as np
import pytest

from lmtool.kernels.softmax import make_classes
from lmtool.neural.window import WindowConfig, WindowNetwork
from tests import naive_recurrent as naive

V, N, B = 13, 3, 6
COUNTS = np.array([0, 0, 9, 50, 3, 30, 7, 1, 12, 2, 20, 5, 4])
CLASSES = make_classes(COUNTS, 4)


def config(**kw):
    base = dict(vocab_size=V, window=N, embed=4, hidden=5, dtype="float64")
    base.update(kw)
    if base.get("softmax") == "class":
        base["n_classes"] = CLASSES.n_classes
    return WindowConfig(**base)


def network(cfg, seed=0):
    net = WindowNetwork(cfg, CLASSES if cfg.softmax == "class" else None, seed=seed)
    # Spread the parameters a little so every unit and bias matters to the loss.
    rng = np.random.default_rng(seed + 1)
    net.params += rng.uniform(-0.3, 0.3, net.params.shape).astype(net.params.dtype)
    return net


def data(seed=0, window=N):
    rng = np.random.default_rng(seed)
    ctx = rng.integers(0, V, (B, window)).astype(np.int32)
    ctx[1] = 7  # a word three times in one window
    y = rng.integers(0, V, B).astype(np.int32)
    y[4] = -1  # padding: no loss, no gradient
    return ctx, y


CASES = [dict(), dict(direct=True), dict(dropout=0.3), dict(direct=True, dropout=0.3),
         dict(softmax="class"), dict(softmax="class", direct=True, dropout=0.3),
         dict(embed=5, tie=True), dict(embed=5, tie=True, softmax="class"), dict(window=1, embed=2)]


def case_id(c):
    return "-".join(f"{k}{v}" for k, v in c.items()) or "plain"


def reference_loss(net, ctx, y, masks):
    """Mean cross-entropy of the naive reference at the network's current parameters."""
    cls = (CLASSES.rank, CLASSES.start) if net.config.softmax == "class" else None
    logp = naive.window_log_probs(net.p, ctx, y, net.config.direct, masks, cls)
    return -logp.sum() / np.count_nonzero(y >= 0)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_gradient_matches_central_differences_of_the_naive_reference_in_float64(case):
    net = network(config(**case))
    ctx, y = data(window=net.config.window)
    masks = net.dropout_masks(B, np.random.default_rng(42))
    loss, n = net.forward_backward(ctx, y, masks=masks)
    assert n == B - 1 and loss / n == pytest.approx(reference_loss(net, ctx, y, masks), rel=1e-12)
    analytic = net.grad.copy()
    rng = np.random.default_rng(3)
    eps = 1e-6
    for name, view in net.p.items():
        offset = net.layout.offsets[name]
        picks = rng.choice(view.size, size=min(view.size, 15), replace=False)
        for k in offset + picks:
            orig = net.params[k]
            net.params[k] = orig + eps
            up = reference_loss(net, ctx, y, masks)
            net.params[k] = orig - eps
            down = reference_loss(net, ctx, y, masks)
            net.params[k] = orig
            assert analytic[k] == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9), (name, k - offset)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_float32_log_probs_and_distributions_match_the_naive_reference(case):
    case = {k: v for k, v in case.items() if k != "dropout"}
    net = network(config(dtype="float32", **case))
    ctx, y = data(seed=1, window=net.config.window)
    cls = (CLASSES.rank, CLASSES.start) if case.get("softmax") == "class" else None
    ref = naive.window_log_probs(net.p, ctx, y, net.config.direct, None, cls)
    logp = net.log_probs(ctx, y)
    np.testing.assert_allclose(logp, ref, atol=2e-5)
    assert logp[4] == 0.0
    probs = net.next_distribution(ctx)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    rows = y >= 0
    np.testing.assert_allclose(np.log(probs[rows, y[rows]]), ref[rows], atol=2e-5)


def test_gradient_is_zero_outside_its_support_and_a_deferred_step_is_the_same_step():
    for case in (dict(softmax="class"), dict(direct=True)):
        net = network(config(dtype="float32", **case))
        ctx, y = data(seed=2)
        net.forward_backward(ctx, y)
        full, norm = net.grad.copy(), net.grad_norm()
        inside = np.zeros(net.grad.size, bool)
        for a, b in net.grad_support:
            inside[a:b] = True
        assert not full[~inside].any()
        assert norm == pytest.approx(np.sqrt(np.sum(full.astype(np.float64) ** 2)), rel=1e-5)
        W = net.p["output.W"].copy()
        net.forward_backward(ctx, y, defer_output=True)
        assert net.grad_norm() == pytest.approx(norm, rel=1e-5)
        net.apply_deferred(0.5)
        np.testing.assert_allclose(net.p["output.W"], W - 0.5 * full[net.layout.offsets["output.W"]:][:W.size]
                                   .reshape(W.shape), atol=1e-6)


def test_config_checks_and_round_trip():
    cfg = config(direct=True, softmax="class")
    assert WindowConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.width == 5 + N * 4 and "cell" not in cfg.to_dict() and cfg.cell == "window"
    for bad in (dict(window=0), dict(tie=True), dict(embed=5, tie=True, direct=True), dict(dropout=1.0)):
        with pytest.raises(ValueError, match="WindowConfig"):
            config(**bad)
    with pytest.raises(ValueError, match="unknown fields"):
        WindowConfig.from_dict(dict(cfg.to_dict(), bptt=35))
