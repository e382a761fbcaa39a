"""Training recurrent models: determinism, resume, divergence, bad options, and serving the result."""

import re
import struct
import subprocess
import sys

import numpy as np
import pytest

import lmtool
from lmtool.errors import LmtoolError
from lmtool.neural.options import TrainOptions
from lmtool.neural.pipeline import run_training
from lmtool.neural.train import Trainer

from .. import conftest
from ..helpers import import_unless_ci

TINY, TINY_TEST = str(conftest.TINY_TRAIN), str(conftest.TINY_TEST)  # str: options and the model's meta hold str


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
    {"cell": "lstm-peephole", "softmax": "class", "layers": 2, "dropout": 0.2},
    {"cell": "lstm-coupled", "layers": 2, "tie": True, "optimizer": "adam"},
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

    frequency = run_training(options(tmp_path, "f.lm", softmax="class", class_method="frequency", n_classes=44,
                                     epochs=1)).network.classes
    # </s> ends each of the 1,000 sentences, the 4th most frequent target: it sits with the frequent
    # words (counted from the input ids alone, it would be among the rarest, in the largest class);
    # 44 = sqrt(V) frequency bins, the first two of them (the/and/of, then </s>) the most frequent words
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


@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole", "lstm-coupled"])
def test_same_seed_same_bytes(tmp_path, cell):
    run_training(options(tmp_path, "a.lm", dropout=0.2, cell=cell))
    run_training(options(tmp_path, "b.lm", dropout=0.2, cell=cell))
    assert (tmp_path / "a.lm").read_bytes() == (tmp_path / "b.lm").read_bytes()
    run_training(options(tmp_path, "c.lm", dropout=0.2, seed=4, cell=cell))
    assert (tmp_path / "a.lm").read_bytes() != (tmp_path / "c.lm").read_bytes()


@pytest.mark.parametrize("model", [["--cell", "lstm", "--softmax", "class", "--classes", "6"],
                                   ["--cell", "gru", "--softmax", "full"],
                                   ["--cell", "rnn", "--softmax", "class", "--optimizer", "adam", "--threads", "2"],
                                   ["--cell", "lstm-peephole", "--softmax", "class", "--classes", "6"]],
                         ids=["lstm-class", "gru-full", "rnn-class-adam-threads", "lstm-peephole-class"])
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


@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole", "lstm-coupled"])
def test_resume_reproduces_the_run(tmp_path, monkeypatch, cell):
    run_training(options(tmp_path, "full.lm", epochs=3, dropout=0.1, optimizer="adam", cell=cell))
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
        run_training(options(tmp_path, "cut.lm", epochs=3, dropout=0.1, optimizer="adam", cell=cell))
    monkeypatch.setattr(Trainer, "_step", step)
    ckpt = tmp_path / "cut.lm.ckpt"
    assert ckpt.exists()
    with pytest.raises(LmtoolError, match=r"these differ: --hidden 32 \(checkpoint: 16\), --dropout 0.2 "
                                          r"\(checkpoint: 0.1\); drop them"):
        run_training(options(tmp_path, "cut.lm", epochs=3, dropout=0.2, hidden=32, optimizer="adam", resume=str(ckpt),
                             cell=cell))
    with pytest.raises(LmtoolError, match=r"these differ: --embed-dropout 0.0 \(checkpoint: 0.1\); drop them"):
        run_training(options(tmp_path, "cut.lm", epochs=3, dropout=0.1, embed_dropout=0.0, optimizer="adam",
                             resume=str(ckpt), cell=cell))
    run_training(options(tmp_path, "cut.lm", epochs=3, dropout=0.1, optimizer="adam", resume=str(ckpt), cell=cell))
    assert not ckpt.exists()
    assert (tmp_path / "full.lm").read_bytes() == (tmp_path / "cut.lm").read_bytes()


def test_a_resumed_run_takes_a_new_budget_and_the_checkpoint_settings_given_again():
    from types import SimpleNamespace

    from lmtool.neural.config import NetworkConfig
    from lmtool.neural.pipeline import _resumed_config
    from lmtool.neural.train import TrainConfig

    vocabulary = {"min_count": 2, "max_vocab": None, "vocab_file": None}
    model = SimpleNamespace(config=NetworkConfig(vocab_size=10, hidden=16, embed=16),
                            vocab=SimpleNamespace(level="word"), meta={"training": {"vocabulary": vocabulary}})
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
        changed = TrainOptions(**again, class_method="frequency", given=frozenset({"class_method"}))
        _resumed_config(changed, model, saved)
    # a network whose embedding starts as its output weights do records no range: that is --embed-range 0.1
    assert _resumed_config(TrainOptions(**again, embed_range=0.1, given=frozenset({"embed_range"})), model,
                           saved) == saved
    with pytest.raises(LmtoolError, match=r"--embed-range 0.5 \(checkpoint: 0.1\)"):
        _resumed_config(TrainOptions(**again, embed_range=0.5, given=frozenset({"embed_range"})), model, saved)
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
    ({"dropout": 1.0}, "--dropout"), ({"embed_dropout": -0.1}, "--embed-dropout"),
    ({"lr": -1.0}, "--lr"),
    ({"tie": True, "embed": 8}, "--tie"),
    ({"init": "identity", "cell": "lstm"}, "--init identity"),
    ({"init": "identity", "cell": "lstm-peephole"}, "--init identity"),
    ({"batch": 20000}, "too few for one batch"), ({"batch": 100000}, "absurdly large"),
    ({"anneal": 0.5}, "--anneal 0.5 is a share of the --max-time budget: give --max-time"),
    ({"anneal": 1.5, "max_time": "1m"}, r"--anneal must be a share of the --max-time budget, in \[0, 1\], got 1.5"),
])
def test_bad_options(tmp_path, kw, message):
    with pytest.raises(LmtoolError, match=message):
        run_training(options(tmp_path, **kw))
    assert not (tmp_path / "m.lm").exists()


def test_embed_dropout_is_recorded_only_apart_from_dropout(tmp_path):
    """A model file names ``embed_dropout`` only where it differs from ``--dropout`` (words: it follows
    it, as before the option); characters spare their embeddings by default."""
    words = run_training(options(tmp_path, "words.lm", epochs=1, dropout=0.2)).config
    assert "embed_dropout" not in words.to_dict() and words.embedding_dropout == 0.2
    chars = lmtool.load(run_training(options(tmp_path, "chars.lm", epochs=1, level="char")) and
                        tmp_path / "chars.lm").config
    assert (chars.dropout, chars.embed_dropout) == (0.1, 0.0) and chars.to_dict()["embed_dropout"] == 0.0
    apart = run_training(options(tmp_path, "apart.lm", epochs=1, dropout=0.2, embed_dropout=0.4)).config
    assert (apart.dropout, apart.embedding_dropout) == (0.2, 0.4)


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
    assert lines[0] == "epoch,lr,train_ppl,valid_ppl,tokens,complete,seconds" and len(lines) == 3
    assert 0 < float(lines[1].split(",")[-1]) <= float(lines[2].split(",")[-1])  # training seconds so far
    gen = [sys.executable, "-m", "lmtool.cli", "generate", str(out), "--prefix", "and god", "-n", "3", "--seed", "7",
           "--temperature", "0.8", "--top-k", "40", "--top-p", "0.9", "-q"]
    first = subprocess.run(gen, capture_output=True, text=True)
    second = subprocess.run(gen, capture_output=True, text=True)
    assert first.returncode == 0 and first.stdout == second.stdout
    assert all(line.startswith("and god") for line in first.stdout.splitlines()) and len(first.stdout.splitlines()) == 3
    info = subprocess.run([sys.executable, "-m", "lmtool.cli", "info", str(out)], capture_output=True, text=True)
    assert "recurrent" in info.stdout and "history" in info.stdout


def test_defaults_by_cell_level_budget_and_vocabulary():
    """The defaults computed in TrainOptions.fill_defaults: by --cell, by --level, by whether there is a
    --max-time, by the optimiser and by the vocabulary's size; a value given is never replaced, and a
    default left to the vocabulary stays None until it is known."""
    from lmtool.neural.choices import CELL_DEFAULTS
    from lmtool.neural.options import (ADAM_EMBED_RANGE, BUDGET_ANNEAL, BUDGET_MIN_IMPROVEMENT, CHAR_ADAM_LR,
                                       CLASS_SOFTMAX_ABOVE, INIT_RANGE, LEVEL_DEFAULTS, classes_for)

    def filled(vocab_size=None, **kw):
        return TrainOptions(corpus=[TINY], output="m.lm", **kw).check().fill_defaults(vocab_size)

    words = filled()
    assert (words.hidden, words.layers, words.optimizer, words.batch, words.bptt, words.dropout) == \
        (256, 2, "sgd", 20, 35, 0.25)
    assert words.min_improvement == 0.0 and words.softmax is None and words.embed == 256
    assert words.embed_dropout == 0.25 and filled(dropout=0.4).embed_dropout == 0.4  # words: as --dropout
    assert filled(max_time="15m").min_improvement == BUDGET_MIN_IMPROVEMENT == 0.05
    assert words.anneal == filled(max_time="15m").anneal == BUDGET_ANNEAL["word"] == 0.0
    # characters with a budget anneal over its second half instead of RNNLM's rule; without one, neither
    char_budget = filled(level="char", max_time="10m")
    assert (char_budget.anneal, char_budget.min_improvement) == (BUDGET_ANNEAL["char"], 0.0) == (0.5, 0.0)
    assert (filled(level="char").anneal, filled(level="char").min_improvement) == (0.0, 0.0)
    assert filled(level="char", max_time="10m", anneal=0.0).min_improvement == BUDGET_MIN_IMPROVEMENT
    chars = filled(level="char")
    assert {k: getattr(chars, k) for k in LEVEL_DEFAULTS["char"]} == LEVEL_DEFAULTS["char"]
    assert chars.optimizer == "adam" and chars.lr == CHAR_ADAM_LR == 0.0028
    assert (chars.dropout, chars.embed_dropout) == (0.1, 0.0) and filled(level="char", dropout=0.3).embed_dropout == 0
    # elsewhere the optimiser's rate (neural.choices.DEFAULT_LR), as it is for characters with SGD
    assert words.lr is None and filled(level="char", optimizer="sgd").lr is None
    assert filled(cell="window", level="char").lr is None and filled(level="char", lr=0.01).lr == 0.01
    kjv = filled(12389, max_time="15m")  # the KJV vocabulary: the best 15-minute recipe
    assert (kjv.softmax, kjv.n_classes, kjv.embed, kjv.dropout, kjv.min_improvement) == ("class", 300, 256, 0.25, 0.05)
    assert filled(CLASS_SOFTMAX_ABOVE).softmax == "full" and filled(CLASS_SOFTMAX_ABOVE).n_classes is None
    assert filled(CLASS_SOFTMAX_ABOVE + 1).softmax == "class"
    assert (chars.embed, chars.embed_range) == (256, ADAM_EMBED_RANGE) and words.embed_range == INIT_RANGE == 0.1
    assert filled(level="char", tie=True).embed_range == INIT_RANGE  # tied, the embedding is the output layer
    assert filled(1000, n_classes=20).softmax == "class"  # --classes alone asks for the class softmax
    assert [classes_for(v) for v in (65, 1000, 12389, 90000, 250000)] == [8, 62, 300, 300, 500]
    gru = filled(cell="gru", level="char")
    assert (gru.hidden, gru.layers, gru.optimizer, gru.batch) == (256, 2, "adam", 64)
    # the fixed-window model keeps its own, whatever the level; the rest (budget, vocabulary) as above
    window = filled(12389, cell="window", max_time="15m")
    assert (window.hidden, window.embed, window.layers, window.batch, window.optimizer, window.dropout,
            window.embed_range, window.softmax, window.n_classes, window.min_improvement) == \
        (200, 200, 1, 1024, "adam", 0.0, INIT_RANGE, "class", 300, 0.05)
    char_window = filled(cell="window", level="char")
    assert {k: getattr(char_window, k) for k in CELL_DEFAULTS["window"]} == CELL_DEFAULTS["window"]
    given = dict(optimizer="sgd", batch=20, bptt=35, dropout=0.0, softmax="full", min_improvement=0.0, embed=300,
                 level="char", max_time="15m", embed_range=0.5)
    explicit = filled(12389, **given)
    assert {k: getattr(explicit, k) for k in given} == dict(given, max_time=900.0)
    assert explicit.given == frozenset(given) | {"corpus", "output"}  # what resume compares: not the computed ones


def test_help_shows_the_computed_defaults():
    done = subprocess.run([sys.executable, "-m", "lmtool.cli", "train", "--help"], capture_output=True, text=True)
    text = " ".join(done.stdout.split())
    for rule in ("sgd for words, adam for characters and --cell window",
                 "class above 5,000 tokens of vocabulary, else full", "max(sqrt(V), min(300, V/16))",
                 "0.05 with --max-time and no --anneal, else 0",
                 "0.5 for characters with --max-time, else 0",
                 "0.25 for words, 0.1 for characters, 0 for --cell window", "--dropout for words, 0 for characters",
                 "35 for words, 25 for characters",
                 "[default: 256; 200 for --cell window]", "[default: 2; 1 for --cell window]",
                 "20 streams for words, 64 for characters; 1024 windows for --cell window", "--stream",
                 "20 for sgd, 0.002 for adam (0.0028 for characters)"):
        assert rule in text, rule


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

    from ..conftest import TINY_TRAIN, run_lmtool
    from ..helpers import as_in_a_terminal, signal_when

    out, log = tmp_path / "m.lm", tmp_path / "log.tsv"
    common = ["train", "-q", TINY_TRAIN, "-o", out, "--hidden", "16", "--embed", "16"]
    command = [sys.executable, "-m", "lmtool.cli", *map(str, common), "--epochs", "500", "--log", str(log)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=as_in_a_terminal)
    try:
        # once an epoch has ended (its line is in the log), training is under way
        sent = signal_when(proc, lambda: log.exists() and log.stat().st_size > 0, getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
        assert sent, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ckpt = tmp_path / "m.lm.ckpt"
    assert proc.returncode == 130, err
    expected = f"lmtool: interrupted: checkpoint saved; continue with: lmtool train ... --resume {ckpt}"
    assert err.decode().strip() == expected
    assert ckpt.exists()
    done = run_lmtool(*common, "--epochs", "1", "--resume", ckpt)  # the budget is spent: it finishes at once
    assert done.returncode == 0, done.stderr
    assert not ckpt.exists() and lmtool.load(out).meta["history"]


# --- options of `lmtool train`, through the command line ---------------------------------------------

def lmtool_main(capsys, *args, code=0):
    """Run ``lmtool ARGS`` in this process, through the command line's entry point; returns
    ``(stdout, stderr)`` after checking the exit status."""
    from lmtool.cli import main

    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert status == code, captured.err
    return captured.out, captured.err


def train_tiny(capsys, out, *options, code=0):
    """``lmtool train -q`` on the tiny corpus with a tiny network: 8 units, one epoch unless ``options``
    say otherwise (given twice, an option's last value counts)."""
    return lmtool_main(capsys, "train", "-q", TINY, "-o", out, "--hidden", 8, "--epochs", 1, *options, code=code)


def info(capsys, model):
    """What ``lmtool info --json MODEL`` prints."""
    import json

    return json.loads(lmtool_main(capsys, "info", "--json", model)[0])


@pytest.mark.parametrize("patience", [1, 2])
def test_patience_stops_after_that_many_epochs_without_improvement(capsys, tmp_path, patience):
    # a rate of 1e-30 moves no weight (each step is far below float32's resolution): no epoch can improve
    train_tiny(capsys, tmp_path / "m.lm", "--valid", TINY_TEST, "--epochs", 20, "--patience", patience,
               "--lr", "1e-30", "--decay", 4)
    history = info(capsys, tmp_path / "m.lm")["history"]
    assert [row["epoch"] for row in history] == list(range(1, patience + 2))  # the first, then `patience` more
    assert len({row["valid_ppl"] for row in history}) == 1  # none improved: the arrangement holds
    # each epoch without improvement divides the rate by --decay for the next
    assert [row["lr"] for row in history] == pytest.approx([1e-30] + [1e-30 / 4 ** k for k in range(patience)],
                                                           rel=1e-9)


def test_max_time_stops_training(capsys, tmp_path):
    train_tiny(capsys, tmp_path / "m.lm", "--epochs", 5, "--max-time", "0.000001", "--batch", 20, "--bptt", 35)
    details = info(capsys, tmp_path / "m.lm")
    assert details["training"]["train_config"]["max_time"] == 1e-6
    # the first step spends the budget: one step of 20 streams x 35 tokens, the epoch left incomplete
    (row,) = details["history"]
    assert (row["epoch"], row["complete"], row["tokens"]) == (1, False, 20 * 35)
    assert row["tokens"] < details["training"]["tokens"]
    assert lmtool.load(tmp_path / "m.lm").meta["history"] == details["history"]


def test_anneal_takes_the_rate_linearly_to_zero_over_the_budgets_last_share(capsys, tmp_path):
    """Each step's rate is --lr until the last --anneal share of --max-time, then falls linearly to 0
    (the trainer's own clock is its training seconds, ``elapsed``); the log records the rate in effect."""
    from lmtool.encoded_corpus import encode_corpus
    from lmtool.neural.train import TrainConfig, Trainer

    data = encode_corpus([TINY])
    model = run_training(options(tmp_path, epochs=1))
    trainer = Trainer(model, TrainConfig(batch=4, bptt=8, optimizer="adam", lr=0.01, max_time=100.0, anneal=0.4),
                      (data.ids, data.lengths, data.file_starts))
    rates = []
    for elapsed in (0, 30, 60, 70, 80, 99, 100, 130):
        trainer.elapsed = elapsed
        rates.append(trainer.rate())
    assert rates == pytest.approx([0.01, 0.01, 0.01, 0.0075, 0.005, 0.00025, 0.0, 0.0])
    trainer.config.anneal = 0.0  # off: the rate is lr whatever the clock says
    assert trainer.rate() == 0.01
    # the first step spends the budget: the epoch's row has the rate at its end, 0
    train_tiny(capsys, tmp_path / "m.lm", "--max-time", "0.000001", "--anneal", 1, "--optimizer", "adam")
    details = info(capsys, tmp_path / "m.lm")
    assert details["training"]["train_config"]["anneal"] == 1.0 and details["history"][0]["lr"] == 0.0


def test_a_budget_spent_by_an_epochs_last_step_leaves_it_complete(capsys, tmp_path):
    """One step covers the whole text (--bptt beyond it): the budget ends with the epoch, which is
    complete, so its decay and patience bookkeeping happen."""
    train_tiny(capsys, tmp_path / "m.lm", "--epochs", 5, "--max-time", "0.000001", "--bptt", 100000)
    details = info(capsys, tmp_path / "m.lm")
    (row,) = details["history"]
    assert row["complete"] and row["tokens"] == details["training"]["tokens"]


@pytest.mark.parametrize("text, seconds", [("15m", 900), ("90s", 90), ("1h30m", 5400), ("2.5h", 9000), ("45", 45),
                                           ("0.5", 0.5), (" 1H 30M ", 5400)])
def test_max_time_reads_durations(capsys, tmp_path, text, seconds):
    train_tiny(capsys, tmp_path / "m.lm", "--bptt", 100000, f"--max-time={text}")  # one step per epoch
    assert info(capsys, tmp_path / "m.lm")["training"]["train_config"]["max_time"] == seconds


@pytest.mark.parametrize("text, says", [
    ("soon", "expected a duration like 15m, 90s or 1h30m"),
    ("15 minutes", "expected a duration"),
    ("1.5.2h", "expected a duration"),
    ("m", "expected a duration"),
    ("", "expected a duration"),
    ("0", "must be positive"),
    ("0h0m0s", "must be positive"),
    ("-5m", "expected a duration"),  # the sign is not part of a duration
])
def test_max_time_refuses_what_is_not_a_positive_duration(capsys, tmp_path, text, says):
    _, err = train_tiny(capsys, tmp_path / "m.lm", f"--max-time={text}", code=1)
    assert err.count("\n") == 1 and err.startswith("lmtool: error: --max-time") and says in err, err
    assert repr(text) in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_clip_scales_the_step_to_the_largest_gradient_norm(capsys, tmp_path, threads):
    """With SGD an update is -lr * g; clipped, -lr * g * clip / |g| when |g| > clip (the whole
    gradient, the output layer's deferred part included). One step per epoch (--bptt longer than
    each stream) from the same seed: the weights before it are those of a run at --lr 1e-30."""
    def weights(name, *options):
        train_tiny(capsys, tmp_path / name, "--bptt", 100000, "--threads", threads, *options)
        return lmtool.load(tmp_path / name).network.params.astype(np.float64)

    lr, clip = 20.0, 0.01
    start = weights("start.lm", "--lr", "1e-30")
    free = weights("free.lm", "--lr", lr, "--clip", 0) - start
    clipped = weights("clipped.lm", "--lr", lr, "--clip", clip) - start
    grad_norm = np.linalg.norm(free) / lr
    assert grad_norm > 5 * clip  # the step had something to clip
    assert np.linalg.norm(clipped) <= lr * clip + 1e-5
    np.testing.assert_allclose(clipped, free * (clip / grad_norm), rtol=0, atol=1e-5)


def test_plot_draws_a_png(capsys, tmp_path):
    import_unless_ci("matplotlib", "pip install matplotlib")
    plot = tmp_path / "curve.png"
    train_tiny(capsys, tmp_path / "m.lm", "--valid", TINY_TEST, "--epochs", 2, "--plot", plot)
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (600, 400)  # 6 x 4 inches at 100 dpi
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "m.lm"]


def test_plot_without_matplotlib_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    plot = tmp_path / "curve.png"
    _, err = train_tiny(capsys, tmp_path / "m.lm", "--plot", plot, code=1)
    assert err == f"lmtool: error: {plot}: --plot needs matplotlib: pip install matplotlib\n"
    assert list(tmp_path.iterdir()) == []  # refused before training: no model either


def _tiny_counts():
    """Occurrences of each word of the tiny training text (words are separated by spaces)."""
    from collections import Counter

    with open(TINY, encoding="utf-8") as f:
        return Counter(word for line in f for word in line.split())


def _vocabulary(min_count=1, max_vocab=None, keep=None):
    """The vocabulary the options describe, naively: the specials, then the words seen at least
    ``min_count`` times (and listed in ``keep``) by falling count, ties in code-point order, cut
    to ``max_vocab`` tokens in all."""
    counts = _tiny_counts()
    words = sorted((w for w, c in counts.items() if c >= min_count and (keep is None or w in keep)),
                   key=lambda w: (-counts[w], w))
    tokens = ["<unk>", "<s>", "</s>"] + words
    return tokens if max_vocab is None else tokens[:max_vocab]


@pytest.mark.parametrize("options, expected", [
    ({"--min-count": 3}, {"min_count": 3}),
    ({"--max-vocab": 40}, {"max_vocab": 40}),
    ({"--vocab": "listed"}, {"keep": "listed"}),
    # 10 words kept of the 15 listed words seen 5 times or more: the cut falls among words seen 40 times
    ({"--vocab": "listed", "--min-count": 5, "--max-vocab": 13}, {"keep": "listed", "min_count": 5, "max_vocab": 13}),
], ids=["min-count", "max-vocab", "vocab", "all-three"])
def test_vocabulary_options_make_the_vocabulary(capsys, tmp_path, options, expected):
    counts = _tiny_counts()
    frequent = [w for w, _ in counts.most_common()]
    # the 5 most frequent words, 10 seen about 40 times, 5 seen once and one the text never has, on
    # lines and separated by spaces
    listed = frequent[:5] + frequent[100:110] + [w for w in frequent if counts[w] == 1][:5] + ["zebra"]
    (tmp_path / "listed.txt").write_text("\n".join(listed[:10]) + "\n" + " ".join(listed[10:]) + "\n")
    given = [str(tmp_path / "listed.txt") if v == "listed" else v for v in options.values()]
    train_tiny(capsys, tmp_path / "m.lm", *[x for pair in zip(options, given) for x in pair])
    if expected.get("keep"):
        expected = dict(expected, keep=set(listed))
    want = _vocabulary(**expected)
    assert len(want) > 5  # the options leave some words: the comparison says something
    model = lmtool.load(tmp_path / "m.lm")
    assert model.vocab.tokens == want
    assert model.config.vocab_size == len(want)
    assert "zebra" not in model.vocab  # listed but never seen: nothing to learn it from


def test_train_help_lists_the_options_quickly():
    """``lmtool train --help`` answers at once: no kernels, no Numba (seconds to load) behind it."""
    from lmtool.cli import cli

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "lmtool.cli", "train", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert all(line.startswith("import time:") for line in done.stderr.splitlines()), done.stderr[-2000:]
    slow = [m for m in imported if m.split(".")[0] in ("numba", "scipy", "matplotlib", "torch")
            or m.startswith("lmtool.kernels")]
    assert not slow, slow
    assert done.stdout.startswith("Usage: lmtool train [OPTIONS] CORPUS...")
    named = ("--patience", "--max-time", "--clip", "--plot", "--vocab", "--min-count", "--max-vocab", "--epochs",
             "--valid", "--resume", "--log", "--seed", "--threads")
    declared = [opt for param in cli.get_command(None, "train").params for opt in param.opts if opt.startswith("-")]
    assert set(named) <= set(declared)
    for option in declared:
        assert re.search(rf"(^|[\s,]){re.escape(option)}\b", done.stdout, re.M), option
