"""The fixed-window model: gradients against the naive reference, scoring, generation, training."""

import numpy as np
import pytest

from lmtool.neural.classes import make_classes
from lmtool.neural.window import WindowConfig, WindowNetwork
from lmtool.vocab import BOS, UNK
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
    net = network(config(dtype="float32", **case))  # dropout, if any, only when training with a generator
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
    loss, n = net.forward_backward(ctx, y)  # no generator: no dropout
    assert loss == pytest.approx(-ref.sum(), rel=1e-5)


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
    assert "embed_range" not in cfg.to_dict()  # recorded only when set
    ranged = config(embed_range=1.5)
    assert WindowConfig.from_dict(ranged.to_dict()) == ranged and ranged.to_dict()["embed_range"] == 1.5
    embedding = WindowNetwork(ranged, seed=0).p["embed"]
    assert 0.5 < np.abs(embedding).max() <= 1.5 and np.abs(WindowNetwork(config(), seed=0).p["embed"]).max() <= 0.1
    # the library's defaults are train's for --cell window (neural.choices.CELL_DEFAULTS)
    bare = WindowConfig(vocab_size=10)
    assert (bare.hidden, bare.embed, bare.dropout, bare.window, bare.softmax) == (200, 200, 0.0, 4, "full")
    assert cfg.width == 5 + N * 4 and "cell" not in cfg.to_dict() and cfg.cell == "window"
    for bad in (dict(window=0), dict(tie=True), dict(embed=5, tie=True, direct=True), dict(dropout=1.0)):
        with pytest.raises(ValueError, match="WindowConfig"):
            config(**bad)
    with pytest.raises(ValueError, match="unknown fields"):
        WindowConfig.from_dict(dict(cfg.to_dict(), bptt=35))


# Training, serving and the command line -------------------------------------------------------------

TINY = "corpora/tiny/train.txt"
TINY_TEST = "corpora/tiny/test.txt"


def options(tmp_path, name="m.lm", **kw):
    from lmtool.neural.options import TrainOptions

    base = dict(corpus=[TINY], output=str(tmp_path / name), valid=TINY_TEST, cell="window", hidden=16, embed=8,
                epochs=2, batch=64, seed=3)
    base.update(kw)
    return TrainOptions(**base)


@pytest.mark.parametrize("kw", [
    {}, {"window": 6, "direct": True, "dropout": 0.2},
    {"softmax": "class", "n_classes": 8, "optimizer": "adam"},
    {"embed": 16, "tie": True, "softmax": "class"},
    {"level": "char", "window": 8, "epochs": 1},
])
def test_a_trained_window_model_serves_through_the_common_interface(tmp_path, kw):
    import lmtool
    from lmtool.neural.pipeline import run_training

    model = run_training(options(tmp_path, **kw))
    loaded = lmtool.load(tmp_path / "m.lm")
    assert loaded.kind == "window" and loaded.config == model.config and loaded.config.window == kw.get("window", 4)
    assert [row["epoch"] for row in loaded.meta["history"]] == list(range(1, len(loaded.meta["history"]) + 1))
    text = "and god said unto moses ,\nthe lord is my shepherd\n\n"
    ids, lengths = loaded.encode(text)
    scores = loaded.score_ids(ids, lengths)
    assert scores.sentence.shape == (3,) and np.isfinite(scores.token).all()
    # a sentence scored alone, or in a batch, or in blocks of a few windows gets the same log-probability
    np.testing.assert_allclose(scores.sentence, [loaded.score(line) for line in text.splitlines()], rtol=1e-5)
    for path in (loaded.score_ids_compiled, loaded.score_ids_numpy):  # the kernels, and NumPy for small inputs
        np.testing.assert_allclose(path(ids, lengths, block=5).token, scores.token, rtol=1e-5)
    # the distribution after a prefix is what scoring gives its next word
    p = loaded.next_token_probs("and god")
    assert abs(p.sum() - 1.0) < 1e-5
    word = loaded.vocab.encode(["said"])[0] if loaded.vocab.level == "word" else None
    if word is not None:
        assert np.log10(p[word]) == pytest.approx(scores.token[2], abs=1e-5)
        # nucleus sampling draws the word after the prefix from the smallest set that reaches P
        from lmtool.sampling import generate
        from tests.naive import naive_nucleus

        p[[BOS, UNK]] = 0  # never drawn
        drawn = {int(s[0]) for s in generate(loaded, loaded.vocab.encode(["and", "god"]), n=200, seed=1, top_p=0.5,
                                             max_tokens=1)}
        assert drawn <= naive_nucleus(p / p.sum(), 0.5)
    # generation carries the window forward one word at a time: a generated sentence scores as the
    # product of the probabilities it was drawn with (checked through the state)
    state = loaded.advance(loaded.begin([np.array([], np.int32)] * 2), np.array([5, 6], np.int32))
    assert state.shape == (2, loaded.config.window) and (state[:, -1] == [5, 6]).all()


def test_same_seed_same_bytes_also_on_two_threads(tmp_path):
    from lmtool.neural.pipeline import run_training

    kw = dict(dropout=0.2, direct=True, softmax="class", n_classes=8)
    for name, more in (("a.lm", {}), ("b.lm", {}), ("c.lm", {"seed": 4}), ("t0.lm", {"threads": 2}),
                       ("t1.lm", {"threads": 2})):
        run_training(options(tmp_path, name, **kw, **more))
    assert (tmp_path / "a.lm").read_bytes() == (tmp_path / "b.lm").read_bytes()
    assert (tmp_path / "a.lm").read_bytes() != (tmp_path / "c.lm").read_bytes()
    assert (tmp_path / "t0.lm").read_bytes() == (tmp_path / "t1.lm").read_bytes()


@pytest.mark.parametrize("case", [dict(), dict(softmax="class", dropout=0.2), dict(direct=True)], ids=case_id)
@pytest.mark.parametrize("defer", [False, True])
def test_a_step_on_two_threads_is_the_step_on_one_up_to_the_order_of_sums(case, defer):
    from lmtool.neural.window_train import WindowParallel

    one, two = (network(config(dtype="float32", **case)) for _ in range(2))
    ctx, y = (a.repeat(5, axis=0) for a in data(seed=4))
    loss, n = one.forward_backward(ctx, y, np.random.default_rng(5), defer_output=defer)
    parallel = WindowParallel(two, len(y) // 2, 2)
    try:
        assert parallel.forward_backward(ctx, y, np.random.default_rng(5), defer_output=defer) == \
            (pytest.approx(loss, rel=1e-6), n)
        assert parallel.grad_norm == pytest.approx(one.grad_norm(), rel=1e-6)
        np.testing.assert_allclose(two.grad, one.grad, atol=1e-7)
        one.apply_deferred(1.0)
        parallel.apply_deferred(1.0)
        np.testing.assert_allclose(two.params, one.params, atol=1e-7)
    finally:
        parallel.close()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_reproduces_the_run(tmp_path, monkeypatch, optimizer):
    from lmtool.errors import LmtoolError
    from lmtool.neural.pipeline import run_training
    from lmtool.neural.window_train import WindowTrainer

    kw = dict(epochs=3, dropout=0.1, optimizer=optimizer, softmax="class", n_classes=8)
    run_training(options(tmp_path, "full.lm", **kw))
    step = WindowTrainer._step
    calls = []

    def interrupting(self):
        calls.append(1)
        result = step(self)
        if len(calls) == 600:  # in the second epoch (464 minibatches each)
            self.request_stop()
        return result

    monkeypatch.setattr(WindowTrainer, "_step", interrupting)
    with pytest.raises(LmtoolError, match="--resume"):
        run_training(options(tmp_path, "cut.lm", **kw))
    monkeypatch.setattr(WindowTrainer, "_step", step)
    ckpt = tmp_path / "cut.lm.ckpt"
    with pytest.raises(LmtoolError, match=r"these differ: --window 5 \(checkpoint: 4\); drop them"):
        run_training(options(tmp_path, "cut.lm", window=5, resume=str(ckpt), **kw))
    run_training(options(tmp_path, "cut.lm", resume=str(ckpt), **kw))
    assert not ckpt.exists()
    assert (tmp_path / "full.lm").read_bytes() == (tmp_path / "cut.lm").read_bytes()


@pytest.mark.parametrize("kw,message", [
    ({"window": 0}, "--window must be a positive integer, got 0"),
    ({"window": 65}, "--window 65 is absurdly large"),
    ({"cell": "lstm", "window": 6}, "--window applies to --cell window only, not to lstm"),
    ({"cell": "gru", "direct": True}, "--direct applies to --cell window only"),
    ({"bptt": 20}, "--bptt applies to the recurrent cells"),
    ({"layers": 2}, "--layers 2: --cell window has one hidden layer"),
    ({"tie": True, "embed": 16, "direct": True}, "--tie cannot go with --direct"),
    ({"tie": True}, "--tie needs --embed equal to --hidden"),
    ({"init": "identity"}, "--init identity is for --cell rnn"),
    ({"stream": True}, "--stream applies to the recurrent cells"),
    ({"embed_dropout": 0.1}, "--embed-dropout applies to the recurrent cells"),
    ({"batch": 20000}, "too few for two batches of 20000 windows"),
])
def test_bad_options_are_one_line_each(tmp_path, kw, message):
    from lmtool.errors import LmtoolError
    from lmtool.neural.pipeline import run_training

    with pytest.raises(LmtoolError, match=message) as caught:
        run_training(options(tmp_path, **kw))
    assert "\n" not in str(caught.value) and not (tmp_path / "m.lm").exists()


def test_the_command_line_trains_scores_and_samples_a_window_model(tmp_path):
    import json
    import subprocess
    import sys

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "lmtool.cli", *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done

    out = tmp_path / "w.lm"
    trained = run("train", TINY, "--valid", TINY_TEST, "-o", out, "--cell", "window", "--window", 3, "--direct",
                  "--hidden", 16, "--embed", 8, "--epochs", 2, "--softmax", "class")
    assert "window of 3, 16 hidden" in trained.stderr
    summary = json.loads(run("perplexity", out, TINY_TEST, "--json", "-q").stdout)
    assert summary["kind"] == "window" and 1 < summary["perplexity"] < 2000
    per_token = run("score", out, TINY_TEST, "--per-token", "-q").stdout.splitlines()
    assert len(per_token) == 100 and per_token == run("score", out, TINY_TEST, "--per-token", "--threads", "2",
                                                       "-q").stdout.splitlines()
    first = run("generate", out, "--prefix", "and god", "-n", 3, "--seed", 7, "--top-k", 40, "-q").stdout
    assert first == run("generate", out, "--prefix", "and god", "-n", 3, "--seed", 7, "--top-k", 40, "-q").stdout
    assert [line.split()[:2] for line in first.splitlines()] == [["and", "god"]] * 3
    info = json.loads(run("info", out, "--json").stdout)
    assert info["kind"] == "window" and info["config"]["window"] == 3 and info["config"]["direct"] is True


def test_the_run_that_compiles_the_kernels_gives_the_bytes_of_later_runs(tmp_path):
    """As ``tests/neural/test_train.py`` checks for the recurrent cells: a fresh Numba cache makes the first
    run compile the window kernels, the second loads them; both train the same bytes and scores."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    outputs = []
    for name in ("compiling.lm", "cached.lm"):
        out = tmp_path / name
        train = [sys.executable, "-m", "lmtool.cli", "train", TINY, "-o", str(out), "--cell", "window", "--direct",
                 "--dropout", "0.1", "--softmax", "class", "--hidden", "16", "--embed", "8", "--epochs", "1",
                 "--batch", "64", "--seed", "3", "-q"]
        done = subprocess.run(train, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        ppl = subprocess.run([sys.executable, "-m", "lmtool.cli", "perplexity", str(out), TINY_TEST, "--json"],
                             capture_output=True, text=True, env=env)
        assert ppl.returncode == 0, ppl.stderr
        outputs.append((out.read_bytes(), json.loads(ppl.stdout)["perplexity"]))
    assert any((tmp_path / "numba-cache").iterdir()) and outputs[0] == outputs[1]
