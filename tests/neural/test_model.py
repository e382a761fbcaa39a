"""RecurrentModel over running text (``train --stream``): its layout, training, scoring each line in the
context of the lines before it, and ``generate --lines``. Sentence-at-a-time scoring is checked against
the networks in ``test_network.py`` and through every command in ``tests/test_cli.py``."""

import subprocess
import sys

import numpy as np
import pytest

import lmtool
from lmtool.errors import LmtoolError
from lmtool.neural.batches import text_stream
from lmtool.neural.model import LN10
from lmtool.neural.options import TrainOptions
from lmtool.neural.pipeline import run_training
from lmtool.neural.train import TrainConfig, Trainer
from lmtool.sampling import running_text
from lmtool.scoring import corpus_totals, score_chunks
from lmtool.vocab import BOS, EOS

from ..conftest import TINY_TEST, TINY_TRAIN


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """A short training text and a validation text: the tiny corpus's first lines, wrapped at 24
    characters as verse is (so that even a small model soon learns where a line ends)."""
    import textwrap

    folder = tmp_path_factory.mktemp("stream")
    train, valid = folder / "train.txt", folder / "valid.txt"
    for path, source, lines in ((train, TINY_TRAIN, 120), (valid, TINY_TEST, 15)):
        text = " ".join(source.read_text(encoding="utf-8").splitlines()[:lines])
        path.write_text("\n".join(textwrap.wrap(text, 24)) + "\n", encoding="utf-8")
    return folder, train, valid


def options(folder, train, valid, name="m.lm", **kw):
    base = dict(corpus=[str(train)], output=str(folder / name), valid=str(valid), hidden=16, embed=8, epochs=2,
                batch=4, bptt=16, seed=5, level="char", stream=True)
    base.update(kw)
    return TrainOptions(**base)


@pytest.fixture(scope="module")
def char_model(texts):
    folder, train, valid = texts
    run_training(options(folder, train, valid, "char.lm"))
    return lmtool.load(folder / "char.lm")


def test_running_text_layout():
    """Targets are the sentence layout's; each input is the token before (the newline, </s>, at a line
    start) and the state restarts only where a file starts, fed the newline too."""
    ids, lengths = np.array([5, 6, 7, 8], np.int32), np.array([2, 1, 1], np.int32)  # a file of 2 lines, one of 1
    x, y, reset = text_stream(ids, lengths, [0, 2])
    assert y.tolist() == [5, 6, EOS, 7, EOS, 8, EOS]
    assert x.tolist() == [EOS, 5, 6, EOS, 7, EOS, 8]
    assert reset.tolist() == [True, False, False, False, False, True, False]
    x1, _, reset1 = text_stream(ids, lengths)  # one file
    assert x1.tolist() == [EOS, 5, 6, EOS, 7, EOS, 8] and reset1.sum() == 1


def test_training_carries_the_state_across_lines(texts):
    folder, train, valid = texts
    from lmtool.encoded_corpus import encode_corpus

    data = encode_corpus([str(train), str(train)], level="char")
    assert data.file_starts.tolist() == [0, len(train.read_text().splitlines())]
    model = run_training(options(folder, train, valid, "t.lm", epochs=1))
    trainer = Trainer(model, TrainConfig(batch=4, bptt=16), (data.ids, data.lengths, data.file_starts))
    tokens = len(data.ids) + len(data.lengths)
    padding = trainer.x.size - tokens
    assert trainer.reset.sum() == 2 + padding  # the two file starts, and the padded tail


def test_a_stream_model_scores_a_file_as_one_text(char_model, texts):
    folder, train, valid = texts
    assert char_model.stream and char_model.meta["stream"] is True
    text = valid.read_text(encoding="utf-8")
    ids, lengths = char_model.encode(text)
    # the reference: one stream fed token by token through the network, from the newline
    x, y, _ = text_stream(ids, lengths)
    net, state, logp = char_model.network, char_model.network.init_state(1), []
    for a, b in zip(x, y):
        lp, state = net.log_probs(np.array([[a]], np.int32), np.array([[b]], np.int32), state)
        logp.append(lp[0, 0] / LN10)
    scores, context = char_model.score_continuing(ids, lengths)
    np.testing.assert_allclose(scores.token, logp, rtol=1e-4, atol=1e-6)
    totals = corpus_totals(char_model, [str(valid)])
    assert totals.logprob10 == pytest.approx(sum(logp), rel=1e-5)
    assert char_model.perplexity(text) == pytest.approx(totals.summary()["perplexity"], rel=1e-5)
    best = char_model.meta["training"]["best"]
    assert totals.summary()["perplexity"] == pytest.approx(best, rel=1e-5)  # the trainer scores valid as perplexity
    # the text cut in two: the second part continues from the context the first leaves
    cut = int(lengths[:5].sum())
    first, context = char_model.score_continuing(ids[:cut], lengths[:5])
    second, _ = char_model.score_continuing(ids[cut:], lengths[5:], context)
    np.testing.assert_allclose(np.concatenate([first.token, second.token]), scores.token, rtol=1e-4, atol=1e-6)
    # score_ids scores each line on its own, as the first line of a text: otherwise than in context
    alone = char_model.score_ids(ids, lengths)
    lines = text.splitlines()
    assert alone.sentence[0] == pytest.approx(scores.sentence[0], rel=1e-5)
    np.testing.assert_allclose(alone.sentence[1:4], [char_model.score(line) for line in lines[1:4]], rtol=1e-5)
    np.testing.assert_allclose(alone.sentence[1:4], [char_model.score_continuing(*char_model.encode(line))[0]
                                                     .sentence[0] for line in lines[1:4]], rtol=1e-5)
    assert not np.allclose(alone.sentence[1:4], scores.sentence[1:4], rtol=1e-3)


def test_scores_in_context_do_not_depend_on_chunks_or_threads(char_model, texts):
    _, _, valid = texts
    whole = [c.scores.token for c in score_chunks(char_model, [str(valid)])]
    pieces = [c for c in score_chunks(char_model, [str(valid)], chunk_bytes=200, threads=2)]
    assert len(pieces) > 3
    np.testing.assert_allclose(np.concatenate([c.scores.token for c in pieces]), np.concatenate(whole), rtol=1e-5,
                               atol=1e-6)


def test_the_numpy_pass_and_the_kernels_hand_each_other_the_text(char_model, texts, monkeypatch):
    """Each chunk takes the NumPy forward pass or the kernels by its size alone; a text whose chunks take
    them in turn scores as one path scores it, to float32 rounding."""
    import itertools

    _, _, valid = texts
    whole = np.concatenate([c.scores.token for c in score_chunks(char_model, [str(valid)])])
    turns = itertools.count()
    monkeypatch.setattr(type(char_model), "numpy_pays", lambda self, ids, lengths: next(turns) % 2 == 0)
    mixed = np.concatenate([c.scores.token for c in score_chunks(char_model, [str(valid)], chunk_bytes=200)])
    assert next(turns) > 4
    np.testing.assert_allclose(mixed, whole, rtol=1e-4, atol=1e-5)


def test_each_file_is_a_text_of_its_own(char_model, texts):
    _, _, valid = texts
    once = corpus_totals(char_model, [str(valid)])
    twice = corpus_totals(char_model, [str(valid), str(valid)])
    assert twice.logprob10 == pytest.approx(2 * once.logprob10, rel=1e-6)


def test_score_prints_a_line_per_input_line_in_context(char_model, texts):
    folder, _, valid = texts
    done = subprocess.run([sys.executable, "-m", "lmtool.cli", "score", str(folder / "char.lm"), str(valid)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    text = valid.read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(text) and [int(r[1]) for r in rows] == [len(line) + 1 for line in text]
    assert sum(float(r[0]) for r in rows) == pytest.approx(corpus_totals(char_model, [str(valid)]).logprob10,
                                                           rel=1e-6)
    for command in ("score", "perplexity"):  # shards scored apart would cut the text: refused before any work
        refused = subprocess.run([sys.executable, "-m", "lmtool.cli", command, str(folder / "char.lm"), str(valid),
                                  "--dask", "local:1"], capture_output=True, text=True)
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "--dask" in refused.stderr


def test_running_text_writes_the_lines_asked_for(char_model):
    prefix = char_model.vocab.encode(list("and "))
    lines = list(running_text(char_model, prefix, 6, seed=3, temperature=0.7, max_tokens=10000))
    assert len(lines) == 6 and all(EOS not in line and BOS not in line for line in lines)
    again = list(running_text(char_model, prefix, 6, seed=3, temperature=0.7, max_tokens=10000))
    assert all((a == b).all() for a, b in zip(lines, again))
    other = list(running_text(char_model, prefix, 6, seed=4, temperature=0.7, max_tokens=10000))
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(lines, other))
    cut = list(running_text(char_model, [], 50, seed=3, max_tokens=30))
    assert sum(len(line) + 1 for line in cut) <= 31 and len(cut) < 50  # the budget counts the newlines
    narrow = list(running_text(char_model, [], 3, seed=3, top_p=0.5, top_k=5, max_tokens=200))
    assert 1 <= len(narrow) <= 3 and sum(map(len, narrow)) + len(narrow) - 1 <= 200


def test_every_path_starts_a_text_as_training_does(char_model, texts):
    """Training reads a file from a fresh state fed the newline (``test_running_text_layout``), so scoring
    a line alone, the distributions mixtures read, and generation start there too: from ``<s>``, an input
    training sees once per file and epoch, a text would begin with what its untrained embedding makes."""
    from lmtool.distributions import log10_rows

    _, _, valid = texts
    net = char_model.network
    assert char_model.start == EOS
    fresh = net.step(np.array([EOS], np.int32), net.init_state(1))
    np.testing.assert_allclose(char_model.distribution(char_model.begin([np.zeros(0, np.int32)])),
                               net.next_distribution(fresh), rtol=1e-5)
    ids, lengths = char_model.encode("\n".join(valid.read_text(encoding="utf-8").splitlines()[:3]))
    x, y, _ = text_stream(ids[:lengths[0]], lengths[:1])
    state, logp = net.init_state(1), []
    for a, b in zip(x, y):
        lp, state = net.log_probs(np.array([[a]], np.int32), np.array([[b]], np.int32), state)
        logp.append(lp[0, 0] / LN10)
    alone = char_model.score_ids(ids, lengths)
    np.testing.assert_allclose(alone.token[:lengths[0] + 1], logp, rtol=1e-4, atol=1e-6)
    targets = np.concatenate([np.append(line, EOS) for line in np.split(ids, np.cumsum(lengths)[:-1])])
    rows = log10_rows(char_model, ids, lengths)
    np.testing.assert_allclose(rows[np.arange(len(targets)), targets], alone.token, rtol=1e-4, atol=1e-5)


def test_generate_lines_on_the_command_line(char_model, texts):
    folder, _, _ = texts
    cmd = [sys.executable, "-m", "lmtool.cli", "generate", str(folder / "char.lm"), "--lines", "4", "--prefix",
           "and ", "--seed", "2", "--top-p", "0.9", "--max-tokens", "10000"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 4 and first.stdout.startswith("and ")
    assert subprocess.run(cmd, capture_output=True, text=True).stdout == first.stdout


def test_lines_need_a_stream_model(texts):
    folder, train, valid = texts
    model = run_training(options(folder, train, valid, "sentences.lm", stream=False, epochs=1))
    assert not model.stream and "stream" not in lmtool.load(folder / "sentences.lm").meta
    with pytest.raises(LmtoolError, match="--lines needs a model trained with --stream"):
        list(running_text(model, [], 3))
    with pytest.raises(LmtoolError, match="--lines must be at least 1"):
        list(running_text(lmtool.load(folder / "char.lm"), [], 0))


def test_word_level_stream_with_a_class_softmax(texts):
    folder, train, valid = texts
    model = run_training(options(folder, train, valid, "words.lm", level="word", softmax="class", n_classes=6,
                                 epochs=1))
    loaded = lmtool.load(folder / "words.lm")
    assert loaded.stream and loaded.network.classes.n_classes == 6
    assert len(list(running_text(loaded, [], 2, seed=1))) == 2
    assert corpus_totals(model, [str(valid)]).summary()["perplexity"] == pytest.approx(
        loaded.meta["training"]["best"], rel=1e-5)


def test_resume_reproduces_a_stream_run_and_keeps_stream(texts, monkeypatch):
    folder, train, valid = texts
    run_training(options(folder, train, valid, "full.lm", dropout=0.1))
    step, calls = Trainer._step, []

    def interrupting(self):
        calls.append(1)
        result = step(self)
        if len(calls) == 400:  # in the second epoch
            self.request_stop()
        return result

    monkeypatch.setattr(Trainer, "_step", interrupting)
    with pytest.raises(LmtoolError, match="--resume"):
        run_training(options(folder, train, valid, "cut.lm", dropout=0.1))
    monkeypatch.setattr(Trainer, "_step", step)
    ckpt = folder / "cut.lm.ckpt"
    with pytest.raises(LmtoolError, match=r"--stream False \(checkpoint: True\)"):
        run_training(options(folder, train, valid, "cut.lm", dropout=0.1, stream=False, resume=str(ckpt),
                             given=frozenset({"stream"})))
    run_training(options(folder, train, valid, "cut.lm", dropout=0.1, resume=str(ckpt)))
    assert (folder / "full.lm").read_bytes() == (folder / "cut.lm").read_bytes()
