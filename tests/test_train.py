"""Training recurrent models: determinism, resume, divergence, bad options, and serving the result."""

import subprocess
import sys

import numpy as np
import pytest

import lmtool
from lmtool.errors import LmtoolError
from lmtool.neural.options import TrainOptions
from lmtool.neural.pipeline import run_training
from lmtool.neural.train import Trainer

TINY = "corpora/tiny/train.txt"
TINY_TEST = "corpora/tiny/test.txt"


def options(tmp_path, name="m.lm", **kw):
    base = dict(corpus=[TINY], output=str(tmp_path / name), valid=TINY_TEST, hidden=16, embed=16, epochs=2,
                batch=8, bptt=12, seed=3)
    base.update(kw)
    return TrainOptions(**base)


@pytest.mark.parametrize("kw", [
    {"cell": "lstm"},
    {"cell": "gru", "softmax": "class", "optimizer": "adam"},
    {"cell": "lstm", "softmax": "class", "class_method": "exchange", "n_classes": 8},
    {"cell": "rnn", "activation": "relu", "init": "identity", "layers": 2, "dropout": 0.3},
    {"cell": "lstm", "tie": True, "level": "char", "epochs": 1},
])
def test_train_serves_through_the_common_interface(tmp_path, kw):
    model = run_training(options(tmp_path, **kw))
    loaded = lmtool.load(tmp_path / "m.lm")
    assert loaded.kind == "recurrent" and loaded.config == model.config
    history = loaded.meta["history"]
    assert [row["epoch"] for row in history] == list(range(1, len(history) + 1))
    text = "and god said unto moses ,\nthe lord is my shepherd\n"
    ids, lengths = loaded.encode(text)
    scores = loaded.score_ids(ids, lengths)
    assert scores.sentence.shape == (2,) and np.isfinite(scores.sentence).all()
    np.testing.assert_allclose(scores.sentence, [loaded.score(line) for line in text.splitlines()], rtol=1e-5)
    p = loaded.next_token_probs("and god")
    assert abs(p.sum() - 1.0) < 1e-5
    # a sentence scored alone or in a batch of others gets the same log-probability
    alone = loaded.score("the lord is my shepherd")
    assert alone == pytest.approx(scores.sentence[1], rel=1e-5)


def test_class_softmax_counts_eos_and_keeps_its_classes_in_the_model_file(tmp_path):
    from lmtool.encoded_corpus import encode_corpus
    from lmtool.neural.classes import make_classes
    from lmtool.neural.classes import exchange_classes
    from lmtool.neural.batches import sentence_stream
    from lmtool.vocab import EOS

    frequency = run_training(options(tmp_path, "f.lm", softmax="class", class_method="frequency",
                                     epochs=1)).network.classes
    # </s> ends each of the 1,000 sentences, the 4th most frequent target: it sits with the frequent
    # words (counted from the input ids alone, it would be among the rarest, in the largest class)
    assert frequency.rank[EOS] == 3 and frequency.word_class[3] == 1
    run_training(options(tmp_path, "e.lm", softmax="class", n_classes=12, epochs=1))  # exchange: the default
    loaded = lmtool.load(tmp_path / "e.lm")
    assert loaded.meta["training"]["class_method"] == "exchange"
    saved = loaded.network.classes
    data = encode_corpus([TINY])
    x, y, _ = sentence_stream(data.ids, data.lengths)
    expected = exchange_classes(x, y, len(data.vocab), 12)
    np.testing.assert_array_equal(saved.order, expected.order)
    np.testing.assert_array_equal(saved.start, expected.start)
    binned = make_classes(np.bincount(y, minlength=len(data.vocab)) + 1, 12)
    assert not np.array_equal(saved.order, binned.order)  # the clustering moved words


def test_same_seed_same_bytes(tmp_path):
    run_training(options(tmp_path, "a.lm", dropout=0.2))
    run_training(options(tmp_path, "b.lm", dropout=0.2))
    assert (tmp_path / "a.lm").read_bytes() == (tmp_path / "b.lm").read_bytes()
    run_training(options(tmp_path, "c.lm", dropout=0.2, seed=4))
    assert (tmp_path / "a.lm").read_bytes() != (tmp_path / "c.lm").read_bytes()


@pytest.mark.parametrize("model", [["--cell", "lstm", "--softmax", "class", "--classes", "6"],
                                   ["--cell", "gru", "--softmax", "full"],
                                   ["--cell", "rnn", "--softmax", "class", "--optimizer", "adam", "--threads", "2"]],
                         ids=["lstm-class", "gru-full", "rnn-class-adam-threads"])
def test_the_run_that_compiles_the_kernels_gives_the_bytes_of_later_runs(model, tmp_path):
    """The first run after installing compiles the kernels, later runs load them from Numba's cache:
    both must train the same bytes and score the same (a fresh, empty cache folder makes the first
    run compile). Kernels used to link fast-math helpers that the cache held optimised another way."""
    import json
    import os

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    outputs = []
    for name in ("compiling.lm", "cached.lm"):
        out = tmp_path / name
        train = [sys.executable, "-m", "lmtool.cli", "train", TINY, "-o", str(out), "--hidden", "16", "--embed", "16",
                 "--layers", "2", "--dropout", "0.1", "--epochs", "1", "--batch", "8", "--bptt", "12", "--seed", "3",
                 "-q", *model]
        done = subprocess.run(train, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert any((tmp_path / "numba-cache").iterdir())  # the first run filled the cache
        ppl = subprocess.run([sys.executable, "-m", "lmtool.cli", "perplexity", str(out), TINY_TEST, "--json"],
                             capture_output=True, text=True, env=env)
        assert ppl.returncode == 0, ppl.stderr
        scores = json.loads(ppl.stdout)
        del scores["model"]
        outputs.append((out.read_bytes(), scores))
    assert outputs[0] == outputs[1]


def test_resume_reproduces_the_run(tmp_path, monkeypatch):
    run_training(options(tmp_path, "full.lm", epochs=3, dropout=0.1, optimizer="adam"))
    step = Trainer._step
    calls = []

    def interrupting(self):
        calls.append(1)
        result = step(self)
        if len(calls) == 150:  # in the second epoch
            self.request_stop()
        return result

    monkeypatch.setattr(Trainer, "_step", interrupting)
    with pytest.raises(LmtoolError, match="--resume"):
        run_training(options(tmp_path, "cut.lm", epochs=3, dropout=0.1, optimizer="adam"))
    monkeypatch.setattr(Trainer, "_step", step)
    ckpt = tmp_path / "cut.lm.ckpt"
    assert ckpt.exists()
    with pytest.raises(LmtoolError, match=r"these differ: --hidden 32 \(checkpoint: 16\), --dropout 0.2 "
                                          r"\(checkpoint: 0.1\); drop them"):
        run_training(options(tmp_path, "cut.lm", epochs=3, dropout=0.2, hidden=32, optimizer="adam", resume=str(ckpt)))
    run_training(options(tmp_path, "cut.lm", epochs=3, dropout=0.1, optimizer="adam", resume=str(ckpt)))
    assert not ckpt.exists()
    assert (tmp_path / "full.lm").read_bytes() == (tmp_path / "cut.lm").read_bytes()


def test_a_resumed_run_takes_a_new_budget_and_the_checkpoint_settings_given_again():
    from types import SimpleNamespace

    from lmtool.neural.config import NetworkConfig
    from lmtool.neural.pipeline import _resumed_config
    from lmtool.neural.train import TrainConfig

    vocabulary = {"min_count": 2, "max_vocab": None, "vocab_file": None}
    model = SimpleNamespace(config=NetworkConfig(vocab_size=10, hidden=16, embed=16), vocab=SimpleNamespace(level="word"),
                            meta={"training": {"vocabulary": vocabulary}})
    saved = TrainConfig(optimizer="adam", epochs=3, seed=3)
    again = dict(corpus=[TINY], output="m.lm", hidden=16, embed=16, optimizer="adam", seed=3, resume="m.lm.ckpt")
    config = _resumed_config(TrainOptions(**again, epochs=5, max_time=60.0,
                                          given=frozenset({"hidden", "optimizer", "seed", "epochs", "max_time"})),
                             model, saved)
    assert (config.epochs, config.max_time, config.optimizer, config.lr) == (5, 60.0, "adam", saved.lr)
    same_values = _resumed_config(TrainOptions(**again, given=frozenset()), model, saved)
    assert same_values == saved
    with pytest.raises(LmtoolError, match=r"these differ: --optimizer sgd \(checkpoint: adam\); drop them"):
        _resumed_config(TrainOptions(**dict(again, optimizer="sgd"), given=frozenset({"optimizer"})), model, saved)
    # the vocabulary is the checkpoint's: its options given again must say the same (they were ignored)
    assert _resumed_config(TrainOptions(**again, min_count=2, given=frozenset({"min_count"})), model, saved) == saved
    with pytest.raises(LmtoolError, match=r"these differ: --max-vocab 50 \(checkpoint: None\); drop them"):
        _resumed_config(TrainOptions(**again, min_count=2, max_vocab=50, given=frozenset({"min_count", "max_vocab"})),
                        model, saved)
    with pytest.raises(LmtoolError, match=r"--class-method frequency \(checkpoint: None\)"):
        _resumed_config(TrainOptions(**again, class_method="frequency", given=frozenset({"class_method"})), model, saved)
    del vocabulary["min_count"]  # a checkpoint from before lmtool recorded it
    with pytest.raises(LmtoolError, match=r"--min-count 2 \(checkpoint: not recorded\)"):
        _resumed_config(TrainOptions(**again, min_count=2, given=frozenset({"min_count"})), model, saved)


def test_divergence_stops_with_one_line_and_keeps_the_model(tmp_path):
    out = tmp_path / "m.lm"
    out.write_bytes(b"previous model")
    with pytest.raises(LmtoolError, match=r"diverged at epoch 1.*lower --lr") as caught:
        run_training(options(tmp_path, lr=1e30, clip=0, epochs=1))
    assert "\n" not in str(caught.value)
    assert out.read_bytes() == b"previous model"


@pytest.mark.parametrize("kw,message", [
    ({"hidden": 0}, "--hidden must be a positive integer"),
    ({"layers": -1}, "--layers"),
    ({"dropout": 1.0}, "--dropout"),
    ({"lr": -1.0}, "--lr"),
    ({"tie": True, "embed": 8}, "--tie"),
    ({"init": "identity", "cell": "lstm"}, "--init identity"),
    ({"batch": 20000}, "too few for one batch"), ({"batch": 100000}, "absurdly large"),
])
def test_bad_options(tmp_path, kw, message):
    with pytest.raises(LmtoolError, match=message):
        run_training(options(tmp_path, **kw))
    assert not (tmp_path / "m.lm").exists()


def test_validation_without_known_words(tmp_path):
    valid = tmp_path / "v.txt"
    valid.write_text("zzz qqq\nxxx\n")
    with pytest.raises(LmtoolError, match="no word of the training vocabulary"):
        run_training(options(tmp_path, valid=str(valid)))


def test_resume_refuses_other_kinds(tmp_path):
    from lmtool.ngram.build import build_ngram_model

    build_ngram_model([TINY], order=2).save(tmp_path / "ngram.lm")
    with pytest.raises(LmtoolError, match="not a training checkpoint"):
        run_training(options(tmp_path, resume=str(tmp_path / "ngram.lm")))
    run_training(options(tmp_path, "done.lm", epochs=1))
    with pytest.raises(LmtoolError, match="not a checkpoint"):
        run_training(options(tmp_path, resume=str(tmp_path / "done.lm")))


def test_cli_train_log_and_generate(tmp_path):
    out = tmp_path / "cli.lm"
    log = tmp_path / "log.csv"
    cmd = [sys.executable, "-m", "lmtool.cli", "train", TINY, "--valid", TINY_TEST, "-o", str(out), "--hidden", "16",
           "--epochs", "2", "--batch", "8", "--log", str(log), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    assert lines[0].startswith("epoch,lr,train_ppl,valid_ppl") and len(lines) == 3
    gen = [sys.executable, "-m", "lmtool.cli", "generate", str(out), "--prefix", "and god", "-n", "3", "--seed", "7",
           "--temperature", "0.8", "--top-k", "40", "-q"]
    first = subprocess.run(gen, capture_output=True, text=True)
    second = subprocess.run(gen, capture_output=True, text=True)
    assert first.returncode == 0 and first.stdout == second.stdout
    assert all(line.startswith("and god") for line in first.stdout.splitlines()) and len(first.stdout.splitlines()) == 3
    info = subprocess.run([sys.executable, "-m", "lmtool.cli", "info", str(out)], capture_output=True, text=True)
    assert "recurrent" in info.stdout and "history" in info.stdout


def test_min_improvement_decays_while_still_improving(tmp_path):
    """RNNLM's rule: an epoch that improves validation by less than the fraction still divides the rate."""
    plain = lmtool.load(run_training(options(tmp_path, "plain.lm", epochs=3)) and tmp_path / "plain.lm")
    eager = lmtool.load(run_training(options(tmp_path, "eager.lm", epochs=3, min_improvement=0.99, decay=2.0))
                        and tmp_path / "eager.lm")
    rates = [row["lr"] for row in eager.meta["history"]]
    valid = [row["valid_ppl"] for row in eager.meta["history"]]
    assert all(b < a for a, b in zip(valid, valid[1:])), "the tiny corpus should keep improving for 3 epochs"
    assert rates == [20.0, 20.0, 10.0]  # epoch 2 improved by less than 99%: halved for epoch 3
    assert [row["lr"] for row in plain.meta["history"]] == [20.0, 20.0, 20.0]
    with pytest.raises(LmtoolError, match="--min-improvement"):
        run_training(options(tmp_path, min_improvement=1.5))


def test_info_shows_config_parameters_and_history(tmp_path):
    model = run_training(options(tmp_path, epochs=2))
    done = subprocess.run([sys.executable, "-m", "lmtool.cli", "info", str(tmp_path / "m.lm"), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import json

    info = json.loads(done.stdout)
    assert info["kind"] == "recurrent" and info["config"]["hidden"] == 16
    assert info["parameters"] == model.network.params.size
    assert [row["epoch"] for row in info["history"]] == [1, 2]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_during_training_saves_the_checkpoint_it_names(tmp_path, sig):
    """``kill`` (or a closed terminal) stops ``lmtool train`` as Ctrl-C does: after the step, with a
    checkpoint that ``--resume`` takes (it used to say so and leave none)."""
    import signal
    import time

    from .conftest import TINY_TRAIN, run_lmtool
    from .helpers import as_in_a_terminal

    out, log = tmp_path / "m.lm", tmp_path / "log.tsv"
    common = ["train", "-q", TINY_TRAIN, "-o", out, "--hidden", "16", "--embed", "16"]
    proc = subprocess.Popen([sys.executable, "-m", "lmtool.cli", *map(str, common), "--epochs", "500", "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=as_in_a_terminal)
    try:
        deadline = time.monotonic() + 120
        while not (log.exists() and log.stat().st_size) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # an epoch has ended: training is under way
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ckpt = tmp_path / "m.lm.ckpt"
    assert proc.returncode == 130, err
    assert err.decode().strip() == f"lmtool: interrupted: checkpoint saved; continue with: lmtool train ... --resume {ckpt}"
    assert ckpt.exists()
    done = run_lmtool(*common, "--epochs", "1", "--resume", ckpt)  # the budget is spent: it finishes at once
    assert done.returncode == 0, done.stderr
    assert not ckpt.exists() and lmtool.load(out).meta["history"]
