"""RecurrentNetwork: gradients against finite differences, forward against the NumPy reference."""

from dataclasses import replace

import numpy as np
import pytest

from lmtool.neural.classes import make_classes
from lmtool.neural import NetworkConfig, RecurrentNetwork
from lmtool.neural.layout import ALIGN
from tests import naive_recurrent as naive

V, T, B = 13, 4, 3
COUNTS = np.array([0, 0, 9, 50, 3, 30, 7, 1, 12, 2, 20, 5, 4])
CLASSES = make_classes(COUNTS, 4)


def config(**kw):
    base = dict(vocab_size=V, embed=5, hidden=5, layers=1, dtype="float64")
    base.update(kw)
    if base.get("softmax") == "class":
        base["n_classes"] = CLASSES.n_classes
    return NetworkConfig(**base)


def network(cfg, seed=0):
    net = RecurrentNetwork(cfg, CLASSES if cfg.softmax == "class" else None, seed=seed)
    # Spread the parameters a little so every unit and bias matters to the loss.
    rng = np.random.default_rng(seed + 1)
    net.params += rng.uniform(-0.3, 0.3, net.params.shape).astype(net.params.dtype)
    return net


def data(seed=0, pad=True):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, (T, B)).astype(np.int32)
    y = rng.integers(0, V, (T, B)).astype(np.int32)
    reset = np.zeros((T, B), bool)
    reset[2, 1] = True
    if pad:
        y[3, 2] = -1
        x[3, 2] = -1
    return x, y, reset


CASES = [
    dict(cell="lstm"), dict(cell="gru"), dict(cell="rnn"),
    dict(cell="rnn", activation="relu"), dict(cell="rnn", activation="sigmoid"),
    dict(cell="lstm", layers=2, dropout=0.3), dict(cell="gru", layers=2, dropout=0.3, tie=True),
    dict(cell="rnn", layers=2, tie=True),
    dict(cell="lstm", softmax="class"), dict(cell="gru", softmax="class", layers=2, dropout=0.3),
    dict(cell="lstm", softmax="class", tie=True, dropout=0.3),
    dict(cell="rnn", activation="relu", init="identity", softmax="class", layers=2),
    dict(cell="lstm", embed=4, hidden=6, layers=2),
    dict(cell="lstm-peephole"), dict(cell="lstm-coupled"),
    dict(cell="lstm-peephole", layers=2, dropout=0.3, softmax="class"),
    dict(cell="lstm-coupled", layers=2, softmax="class", tie=True, dropout=0.3),
    dict(cell="lstm-peephole", embed=4, hidden=6, layers=2), dict(cell="lstm-coupled", embed=4, hidden=6),
    dict(cell="lstm", layers=2, dropout=0.3, embed_dropout=0.0), dict(cell="gru", dropout=0.0, embed_dropout=0.3),
]


def case_id(c):
    return "-".join(f"{v}" if k in ("cell", "softmax", "activation", "init") else f"{k}{v}"
                    for k, v in c.items())


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_gradient_matches_central_differences_in_float64(case):
    net = network(config(**case))
    x, y, reset = data()
    state = net.init_state(B)
    state.h[:] = np.random.default_rng(9).normal(size=state.h.shape)
    dropout = case.get("dropout", 0) > 0 or case.get("embed_dropout", 0) > 0

    def loss():
        rng = np.random.default_rng(42) if dropout else None  # the same masks at every evaluation
        total, n, _ = net.forward_backward(x, y, state, rng, reset)
        return total / n

    loss()
    analytic = net.grad.copy()
    rng = np.random.default_rng(3)
    eps = 1e-6
    for name, view in net.p.items():
        offset = net.layout.offsets[name]
        picks = rng.choice(view.size, size=min(view.size, 12), replace=False)
        for k in offset + picks:
            orig = net.params[k]
            net.params[k] = orig + eps
            up = loss()
            net.params[k] = orig - eps
            down = loss()
            net.params[k] = orig
            numeric = (up - down) / (2 * eps)
            assert analytic[k] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, k - offset)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_float32_log_probs_match_numpy_reference(case):
    case = {k: v for k, v in case.items() if k not in ("dropout", "embed_dropout")}
    net = network(config(dtype="float32", **case))
    x, y, reset = data(seed=1)
    state = net.init_state(B)
    state.h[:] = np.random.default_rng(4).normal(size=state.h.shape)
    logp, after = net.log_probs(x, y, state, reset)
    states = [tuple(a[l] for a in (state.h, state.c) if a is not None) for l in range(net.config.layers)]
    cls = (CLASSES.rank, CLASSES.start) if case.get("softmax") == "class" else None
    ref, final = naive.network_log_probs(net.p, net.config.cell, net.config.layers, x, y, states, reset,
                                         activation=net.config.activation, classes=cls)
    np.testing.assert_allclose(logp, ref, atol=1e-5)
    assert logp[3, 2] == 0.0
    np.testing.assert_allclose(after.h[-1], final[-1][0], atol=1e-6)
    loss, n, _ = net.forward_backward(x, y, state, None, reset)
    assert n == T * B - 1 and loss == pytest.approx(-ref.sum(), rel=1e-5)


TABLE_CASES = [dict(cell="lstm", layers=2), dict(cell="gru", layers=2, tie=True), dict(cell="rnn", activation="relu"),
               dict(cell="lstm", softmax="class", tie=True), dict(cell="gru", softmax="class", embed=4, hidden=6),
               dict(cell="lstm", layers=2, dropout=0.3, embed_dropout=0.0)]


@pytest.mark.parametrize("case", TABLE_CASES, ids=[case_id(c) for c in TABLE_CASES])
def test_the_input_table_gives_the_per_token_loss_state_and_gradient(case, monkeypatch):
    """Where a segment reads few distinct tokens, layer 0's x U is looked up in a table over them and its
    gradient summed per token first (``network._input_table``): the same numbers, to float64 rounding,
    also under dropout that spares the embeddings."""
    import lmtool.neural.network as network_module

    x, y, reset = data()
    results = []
    for share, used in ((0, True), (10 ** 9, False)):  # the table always, then never
        monkeypatch.setattr(network_module, "TABLE_SHARE", share)
        net = network(config(**case))
        assert (net._input_table(net._positions(x), None) is not None) == used
        state = net.init_state(B)
        state.h[:] = np.random.default_rng(9).normal(size=state.h.shape)
        rng = np.random.default_rng(5) if net.config.dropout else None  # the same masks both times
        loss, n, after = net.forward_backward(x, y, state, rng, reset)
        results.append((loss, net.grad.copy(), after.h.copy()))
    (loss_t, grad_t, h_t), (loss_p, grad_p, h_p) = results
    assert loss_t == pytest.approx(loss_p, rel=1e-12)
    np.testing.assert_allclose(grad_t, grad_p, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(h_t, h_p, rtol=1e-12)


def test_the_input_table_serves_characters_not_words_nor_dropout():
    net = network(config(cell="lstm", dtype="float32"))
    chars = np.random.default_rng(0).integers(0, V, (100, 32)).astype(np.int32)
    chars[-1, -1] = -1  # padding: a zero input
    rows, at = net._input_table(chars, None)
    assert rows.tolist() == list(range(V)) and at[-1] == -1 and (rows[at[:-1]] == chars.reshape(-1)[:-1]).all()
    words = np.arange(35 * 20, dtype=np.int32).reshape(35, 20) % 400  # hundreds of distinct inputs
    assert net._input_table(words, None) is None
    assert net._input_table(chars, net._masks(100, 32, np.random.default_rng(0))) is None  # no dropout masks
    dropping = network(config(cell="lstm", dropout=0.3, dtype="float32"))
    assert dropping._masks(100, 32, None) is None
    assert dropping._input_table(chars, dropping._masks(100, 32, np.random.default_rng(0))) is None
    sparing = network(config(cell="lstm", dropout=0.3, embed_dropout=0.0, dtype="float32"))
    assert sparing._input_table(chars, sparing._masks(100, 32, np.random.default_rng(0))) is not None


def test_dropout_masks_are_used_and_reproducible():
    net = network(config(cell="lstm", layers=2, dropout=0.5, dtype="float32"))
    x, y, _ = data()
    s = net.init_state(B)
    a = net.forward_backward(x, y, s, np.random.default_rng(1))[0]
    g = net.grad.copy()
    assert net.forward_backward(x, y, s, np.random.default_rng(1))[0] == a
    np.testing.assert_array_equal(net.grad, g)
    assert net.forward_backward(x, y, s, np.random.default_rng(2))[0] != a
    assert net.forward_backward(x, y, s, None)[0] != a


def test_dropout_masks_drop_at_the_configured_rate_and_keep_the_mean():
    net = network(config(layers=2, dropout=0.3, dtype="float32"))
    masks = net._masks(50, 20, np.random.default_rng(0))
    assert [m.shape for m in masks] == [(50, 20, 5)] * 3
    values = np.concatenate([m.ravel() for m in masks])
    assert set(np.unique(values)) == {0.0, np.float32(1 / 0.7)}
    assert np.mean(values == 0) == pytest.approx(0.3, abs=0.03)
    assert values.mean() == pytest.approx(1.0, abs=0.05)
    assert net._masks(50, 20, None) is None


def test_embed_dropout_sets_the_embeddings_rate_apart_and_unset_draws_as_before():
    """``embed_dropout`` drops the embedding output at its own rate (0: no mask there, none drawn); set
    to ``dropout`` it draws the very masks of leaving it unset."""
    shared = network(config(layers=2, dropout=0.3, dtype="float32"))._masks(50, 20, np.random.default_rng(0))
    same = network(config(layers=2, dropout=0.3, embed_dropout=0.3, dtype="float32"))._masks(
        50, 20, np.random.default_rng(0))
    for a, b in zip(shared, same):
        np.testing.assert_array_equal(a, b)
    apart = network(config(layers=2, dropout=0.3, embed_dropout=0.1, dtype="float32"))._masks(
        200, 20, np.random.default_rng(0))
    assert [np.mean(m == 0) for m in apart] == pytest.approx([0.1, 0.3, 0.3], abs=0.02)
    spared = network(config(layers=2, dropout=0.3, embed_dropout=0.0, dtype="float32"))._masks(
        50, 20, np.random.default_rng(0))
    assert spared[0] is None and [m.shape for m in spared[1:]] == [(50, 20, 5)] * 2
    only = network(config(layers=2, dropout=0.0, embed_dropout=0.2, dtype="float32"))._masks(
        50, 20, np.random.default_rng(0))
    assert only[0].shape == (50, 20, 5) and only[1:] == [None, None]
    with pytest.raises(ValueError, match="embed_dropout"):
        config(embed_dropout=1.0)


@pytest.mark.parametrize("softmax", ["full", "class"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "lstm-peephole", "lstm-coupled"])
def test_next_distribution_sums_to_one_and_matches_log_probs(cell, softmax):
    net = network(config(cell=cell, softmax=softmax, layers=2, dtype="float32"))
    x, y, _ = data(pad=False)
    state = net.step(x[0], net.init_state(B))
    dist = net.next_distribution(state)
    assert dist.shape == (B, V) and dist.dtype == np.float32
    np.testing.assert_allclose(dist.sum(axis=1, dtype=np.float64), 1.0, atol=1e-5)
    logp, after = net.log_probs(x[:1], y[:1], net.init_state(B))
    np.testing.assert_allclose(np.log(dist[np.arange(B), y[0]]), logp[0], atol=1e-5)
    np.testing.assert_allclose(after.h, state.h)


def test_segments_carry_state_and_reset_restarts_it():
    net = network(config(cell="lstm", layers=2, dtype="float64"))
    x, y, _ = data(pad=False)
    whole, _ = net.log_probs(x, y, net.init_state(B))
    first, mid = net.log_probs(x[:2], y[:2], net.init_state(B))
    second, _ = net.log_probs(x[2:], y[2:], mid)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-12)
    reset = np.zeros((T, B), bool)
    reset[2] = True
    restarted, _ = net.log_probs(x, y, net.init_state(B), reset)
    fresh, _ = net.log_probs(x[2:], y[2:], net.init_state(B))
    np.testing.assert_allclose(restarted[2:], fresh, rtol=1e-12)
    zeroed = mid.copy().reset_rows(np.array([True, False, True]))
    assert not zeroed.h[:, [0, 2]].any() and not zeroed.c[:, [0, 2]].any()
    np.testing.assert_array_equal(zeroed.h[:, 1], mid.h[:, 1])


def test_flat_layout_initialisation_and_tying():
    cfg = config(cell="lstm", layers=2, tie=True, dtype="float32")
    net = RecurrentNetwork(cfg, seed=7)
    assert "output.W" not in net.p and net.params.dtype == np.float32
    for name, view in net.p.items():
        assert np.shares_memory(view, net.params) and net.layout.offsets[name] % ALIGN == 0
    assert np.all(net.p["layer1.b"][5:10] == 1.0)  # forget gate
    assert np.abs(net.p["embed"]).max() <= 0.1 and not net.p["output.b"].any()
    assert np.array_equal(RecurrentNetwork(cfg, seed=7).params, net.params)
    assert not np.array_equal(RecurrentNetwork(cfg, seed=8).params, net.params)
    irnn = RecurrentNetwork(config(cell="rnn", activation="relu", init="identity"), seed=0)
    np.testing.assert_array_equal(irnn.p["layer0.W"], np.eye(5))
    assert not irnn.p["layer0.b"].any()
    same = RecurrentNetwork(cfg, params=net.params.copy())
    np.testing.assert_array_equal(same.p["layer0.W"], net.p["layer0.W"])
    assert net.n_params == sum(v.size for v in net.p.values())


def test_lstm_variants_start_with_forget_bias_one_and_the_peephole_lstm_as_the_lstm():
    """Forget-gate bias 1 in each LSTM's forget block (lstm-coupled: the first); zero peepholes that
    draw nothing, so lstm-peephole starts as the lstm of the same seed."""
    H = 5
    plain = RecurrentNetwork(config(cell="lstm", layers=2, dtype="float32"), seed=7)
    peep = RecurrentNetwork(config(cell="lstm-peephole", layers=2, dtype="float32"), seed=7)
    coupled = RecurrentNetwork(config(cell="lstm-coupled", layers=2, dtype="float32"), seed=7)
    for l in range(2):
        assert np.all(peep.p[f"layer{l}.b"][H:2 * H] == 1.0) and not peep.p[f"layer{l}.peep"].any()
        assert np.all(coupled.p[f"layer{l}.b"][:H] == 1.0) and coupled.p[f"layer{l}.b"].shape == (3 * H,)
        assert np.abs(coupled.p[f"layer{l}.b"][H:]).max() <= 2 / np.sqrt(H)
    for name, view in plain.p.items():
        np.testing.assert_array_equal(peep.p[name], view)
    x, y, reset = data(pad=False)
    np.testing.assert_array_equal(peep.log_probs(x, y, peep.init_state(B), reset)[0],
                                  plain.log_probs(x, y, plain.init_state(B), reset)[0])


def test_config_validation_and_round_trip():
    cfg = config(cell="gru", softmax="class")
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="embed == hidden"):
        config(tie=True, embed=4)
    with pytest.raises(ValueError, match="cell"):
        config(cell="transformer")
    for cell in ("lstm", "gru", "lstm-peephole", "lstm-coupled"):
        with pytest.raises(ValueError, match="identity"):
            config(cell=cell, init="identity")
    with pytest.raises(ValueError, match="unknown fields"):
        NetworkConfig.from_dict(dict(cfg.to_dict(), heads=4))
    with pytest.raises(ValueError, match="n_classes"):
        RecurrentNetwork(replace(cfg, n_classes=CLASSES.n_classes + 1), CLASSES)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradient_is_zero_outside_its_support_and_clearing_only_the_support_is_exact(case):
    """The sparse bookkeeping (``neural.spans``): after each of several segments the gradient is
    the one a freshly zeroed vector gets, and nothing outside ``grad_support`` is nonzero."""
    cfg = config(**case)
    sparse, dense = network(cfg), network(cfg)
    s1, s2 = sparse.init_state(B), dense.init_state(B)
    for k in range(4):
        x, y, reset = data(seed=k)
        x[:, 0] = k  # inputs vary between segments, so different embedding rows are written
        _, _, s1 = sparse.forward_backward(x, y, s1, np.random.default_rng(k), reset=reset)
        dense.grad[:] = np.nan
        dense.grad_written()  # forces a whole-vector clear
        _, _, s2 = dense.forward_backward(x, y, s2, np.random.default_rng(k), reset=reset)
        np.testing.assert_array_equal(sparse.grad, dense.grad)
        inside = np.zeros(sparse.grad.size, bool)
        for a, b in sparse.grad_support:
            inside[a:b] = True
        assert np.all(sparse.grad[~inside] == 0)
        assert np.count_nonzero(sparse.grad[inside]) > 0
        if cfg.softmax == "class" and not cfg.tie:
            assert not inside.all()  # unread embedding rows are left out


@pytest.mark.parametrize("case", [dict(cell="lstm", softmax="class", dropout=0.3),
                                  dict(cell="gru", softmax="class", layers=2),
                                  dict(cell="lstm", softmax="class", tie=True), dict(cell="lstm"),
                                  dict(cell="rnn", layers=2, tie=True)],
                         ids=case_id)
def test_a_deferred_output_gradient_gives_the_same_norm_and_sgd_step(case):
    """``defer_output``: untied output weights keep their gradient out of ``grad`` (``apply_deferred``
    makes the SGD step); the norm and the step are those of the written gradient. Tied weights
    write it as before."""
    cfg = config(**case)
    written, deferred = network(cfg), network(cfg)
    x, y, reset = data()
    losses = [net.forward_backward(x, y, net.init_state(B), np.random.default_rng(5), reset=reset,
                                   defer_output=defer)[0] for net, defer in ((written, False), (deferred, True))]
    assert losses[0] == losses[1]
    defers = not cfg.tie
    assert (deferred.deferred is not None) == defers and written.deferred is None
    w = deferred.layout.offsets["embed" if cfg.tie else "output.W"]
    in_w = lambda spans: any(a < w + V * cfg.hidden and b > w for a, b in spans)  # noqa: E731
    assert in_w(written.grad_support) and in_w(deferred.grad_support) == (not defers)
    dense_norm = np.sqrt(np.sum(written.grad ** 2))
    assert written.grad_norm() == pytest.approx(dense_norm, rel=1e-12)
    assert deferred.grad_norm() == pytest.approx(dense_norm, rel=1e-12)
    for net in (written, deferred):
        net.params -= 0.5 * net.grad
        net.apply_deferred(0.5)
        assert net.deferred is None
    np.testing.assert_allclose(deferred.params, written.params, rtol=1e-12, atol=1e-14)
