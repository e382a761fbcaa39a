"""Mixtures (``lmtool mix``): proper distributions with every member kind, exact weighted sums, tuned
weights that are the best ones, a self-contained checksummed file served by every command, and bad
input refused in one line with nothing written."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import lmtool
from lmtool import mixture_weights
from lmtool.distributions import _ngram_rows, _recurrent_rows, _stepped_rows, log10_rows
from lmtool.errors import LmtoolError
from lmtool.mixture import MixtureModel

from .conftest import TINY_TEST, TINY_TRAIN, run_lmtool

COMMANDS = {
    "ngram3": ["count", TINY_TRAIN, "--order", 3],
    "wb2": ["count", TINY_TRAIN, "--order", 2, "--smoothing", "witten-bell", "--min-count", 2],
    "lstm": ["train", TINY_TRAIN, "--hidden", 16, "--epochs", 1, "--seed", 1],
    "gru": ["train", TINY_TRAIN, "--cell", "gru", "--softmax", "class", "--hidden", 16, "--epochs", 1,
            "--min-count", 3, "--seed", 2],
    "window": ["train", TINY_TRAIN, "--cell", "window", "--window", 3, "--hidden", 16, "--epochs", 1, "--seed", 3],
    "q8": ["count", TINY_TRAIN, "--order", 3, "--quantize", 8],
    "stupid": ["count", TINY_TRAIN, "--order", 2, "--smoothing", "stupid-backoff"],
    "char": ["count", TINY_TRAIN, "--order", 3, "--level", "char"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Model files built by the command line: n-gram (two smoothings, one vocabulary without the
    rare words, one quantised), an LSTM with a full softmax, a GRU with a class softmax and a smaller
    vocabulary, a fixed-window network, a stupid-backoff model and a character-level one."""
    folder = tmp_path_factory.mktemp("mixture-members")
    out = {}
    for name, args in COMMANDS.items():
        out[name] = folder / f"{name}.lm"
        done = run_lmtool(*args, "-q", "-o", out[name])
        assert done.returncode == 0, done.stderr.decode()
    return out


@pytest.fixture(scope="module")
def models(files):
    return {name: lmtool.load(path) for name, path in files.items()}


def members_of_every_kind(models, mode):
    nested = MixtureModel([models["ngram3"], models["gru"]], [0.6, 0.4] if mode == "linear" else [0.8, 0.5], mode)
    return [models["ngram3"], models["wb2"], models["lstm"], models["gru"], nested, models["window"]]


def context_mixture(models):
    """A linear mixture of every member kind with weights by context (the 3-gram's three rows differ)."""
    table = np.array([[0.3, 0.1, 0.2, 0.1, 0.2, 0.1], [0.1, 0.0, 0.5, 0.1, 0.2, 0.1], [0.6, 0.1, 0.1, 0.0, 0.1, 0.1]])
    return MixtureModel(members_of_every_kind(models, "linear"), table, context=0)


@pytest.mark.parametrize("mode", ["linear", "loglinear", "by-context"])
def test_sums_to_one_for_random_contexts_with_every_member_kind(models, mode):
    if mode == "by-context":
        mixture = context_mixture(models)
    else:
        weights = [0.3, 0.1, 0.2, 0.1, 0.2, 0.1] if mode == "linear" else [0.7, 0.2, 0.4, 0.3, 0.5, 0.3]
        mixture = MixtureModel(members_of_every_kind(models, mode), weights, mode)
    assert len(mixture.vocab) == len(models["ngram3"].vocab) > max(len(models["gru"].vocab), len(models["wb2"].vocab))
    rng = np.random.default_rng(11)
    prefixes = [rng.integers(0, len(mixture.vocab), size=int(rng.integers(0, 8))).astype(np.int32) for _ in range(25)]
    dist = mixture.distribution(mixture.begin(prefixes))
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=2e-6)
    assert (dist >= 0).all()
    # the distributions that scoring normalises over sum to one too, and give what scoring gives
    ids, lengths = mixture.encode("and god said unto moses\nzzz qqq the lord\n\nand the")
    rows = log10_rows(mixture, ids, lengths)
    np.testing.assert_allclose((10.0 ** rows).sum(axis=1), 1.0, atol=2e-6)
    scores = mixture.score_ids(ids, lengths)
    targets = mixture.targets(ids, lengths)
    np.testing.assert_allclose(rows[np.arange(len(targets)), targets], scores.token, atol=2e-5)
    # and generation's distribution after each prefix of the first sentence is scoring's at that position
    for k in range(5):
        after = mixture.distribution(mixture.begin([ids[:k]]))[0]
        assert np.log10(after[ids[k]]) == pytest.approx(float(scores.token[k]), abs=2e-5)


@pytest.mark.parametrize("first,second", [("ngram3", "lstm"), ("q8", "window")])
def test_a_shared_vocabulary_gives_exactly_the_weighted_sum(models, first, second):
    """Also for a quantised n-gram member (not quite normalised: its codes round the probabilities,
    so it is left out of the sums above) and a fixed-window network."""
    a, b = models[first], models[second]
    assert a.vocab.tokens == b.vocab.tokens
    mixture = MixtureModel([a, b], [0.35, 0.65])
    ids, lengths = mixture.encode(TINY_TEST.read_text(encoding="utf-8"))
    expected = np.log10(0.35 * 10.0 ** a.score_ids(ids, lengths).token.astype(np.float64)
                        + 0.65 * 10.0 ** b.score_ids(ids, lengths).token.astype(np.float64))
    got = mixture.score_ids(ids, lengths)
    np.testing.assert_allclose(got.token, expected, rtol=1e-6)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    np.testing.assert_allclose(got.sentence, np.add.reduceat(expected, starts), rtol=1e-7)


def test_a_word_a_member_lacks_gets_its_share_of_that_members_unk(models):
    full, small = models["ngram3"], models["gru"]
    mixture = MixtureModel([full, small], [0.5, 0.5])
    lacking = [t for t in full.vocab.tokens[3:] if t not in small.vocab]
    assert lacking
    history = "and the"
    p_small = small.next_token_probs(history)
    p_mixed = mixture.next_token_probs(history)
    p_full = full.next_token_probs(history)
    word = mixture.vocab.index[lacking[0]]
    share = p_small[0] / (len(lacking) + 1)
    assert p_mixed[word] == pytest.approx(0.5 * p_full[word] + 0.5 * share, rel=1e-6)
    assert p_mixed[0] == pytest.approx(0.5 * p_full[0] + 0.5 * share, rel=1e-6)  # <unk> itself
    kept = mixture.vocab.index[small.vocab.tokens[10]]
    assert p_mixed[kept] == pytest.approx(0.5 * p_full[kept] + 0.5 * p_small[10], rel=1e-6)


def test_every_kind_of_distribution_rows_agrees_with_stepping_the_model(models):
    ids, lengths = models["ngram3"].encode("and god said\n\nlet there be light .\n")
    for name, rows in (("ngram3", _ngram_rows), ("lstm", _recurrent_rows), ("gru", _recurrent_rows)):
        model = models[name]
        ids, lengths = model.encode("and god said\n\nlet there be light .\n")
        np.testing.assert_allclose(rows(model, ids, lengths), _stepped_rows(model, ids, lengths), atol=1e-5)


def grid_best(logp, step=0.01):
    grid = np.round(np.arange(0, 1 + step / 2, step), 10)
    ppl = [mixture_weights.linear_perplexity(logp, [w, 1 - w]) for w in grid]
    return grid[int(np.argmin(ppl))]


def test_em_weights_agree_with_a_grid_search(models):
    pairs = [("ngram3", "lstm"), ("wb2", "gru"), ("ngram3", "wb2")]
    for a, b in pairs:
        mixture = MixtureModel([models[a], models[b]], [0.5, 0.5])
        tuned, report = mixture_weights.tune(mixture, [TINY_TEST])
        logp = mixture_weights.member_log10(mixture, mixture_weights.read_dev(mixture, [TINY_TEST]))
        assert abs(tuned.weights[0] - grid_best(logp)) <= 0.01, (a, b, tuned.weights)
        assert report["dev_perplexity"] == pytest.approx(mixture_weights.linear_perplexity(logp, tuned.weights),
                                                         rel=1e-5)
        assert report["dev_perplexity"] < min(report["members_dev_perplexity"])
    # three members: the best point of a 0.01 grid over the simplex
    mixture = MixtureModel([models["ngram3"], models["wb2"], models["lstm"]], [1 / 3] * 3)
    tuned, _ = mixture_weights.tune(mixture, [TINY_TEST])
    logp = mixture_weights.member_log10(mixture, mixture_weights.read_dev(mixture, [TINY_TEST]))
    grid = [(i / 100, j / 100, (100 - i - j) / 100) for i in range(101) for j in range(101 - i)]
    best = min(grid, key=lambda w: mixture_weights.linear_perplexity(logp, w))
    assert np.abs(tuned.weights - best).max() <= 0.01


def test_loglinear_weights_maximise_the_dev_likelihood(models, tmp_path):
    dev = tmp_path / "dev.txt"
    dev.write_text("".join(TINY_TEST.read_text(encoding="utf-8").splitlines(True)[:30]), encoding="utf-8")
    mixture = MixtureModel([models["ngram3"], models["gru"]], [0.5, 0.5], "loglinear")
    tuned, report = mixture_weights.tune(mixture, [dev])
    chunks = mixture_weights.read_dev(mixture, [dev])
    best, grad, _ = mixture_weights.loglinear_statistics(mixture, chunks, tuned.weights)
    for i in range(2):
        for delta in (-0.01, 0.01):
            moved = tuned.weights.copy()
            moved[i] = max(moved[i] + delta, 0.0)
            assert mixture_weights.loglinear_statistics(mixture, chunks, moved)[0] <= best + 1e-9
    tokens = sum(len(ids) + len(lengths) for ids, lengths in chunks)
    assert np.abs(grad[tuned.weights > 0]).max() < 1e-3 * tokens  # a stationary point, not just a good one
    assert tuned.perplexity(dev.read_text(encoding="utf-8")) == pytest.approx(report["dev_perplexity"], rel=1e-5)


def test_members_must_be_probabilities_of_one_level(models):
    with pytest.raises(LmtoolError, match="not probabilities"):
        MixtureModel([models["ngram3"], models["stupid"]], [0.5, 0.5])
    with pytest.raises(LmtoolError, match="char-level"):
        MixtureModel([models["ngram3"], models["char"]], [0.5, 0.5])


def test_each_token_is_mixed_with_the_row_of_what_the_ngram_member_knows_of_its_history(models):
    """Scoring's rows (the n-gram length of the previous token) against the n-gram model asked about
    each history on its own (``history_lengths``), OOVs and a sentence's first word included."""
    from lmtool.mixture import history_rows

    a, b = models["ngram3"], models["lstm"]
    table = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    mixture = MixtureModel([a, b], table, context=0)
    ids, lengths = mixture.encode("and god said unto moses\nzzz the lord qqq said\n\nlet there be light")
    buckets = history_rows(a, ids, lengths)
    asked, start = [], 0
    for n in lengths:
        sentence = ids[start:start + n]
        asked += [int(a.history_lengths(a.begin([sentence[:k]]))[0]) for k in range(n + 1)]
        start += n
    assert buckets.tolist() == asked and {0, 1, 2} <= set(asked)
    expected = np.log10(table[buckets, 0] * 10.0 ** a.score_ids(ids, lengths).token.astype(np.float64)
                        + table[buckets, 1] * 10.0 ** b.score_ids(ids, lengths).token.astype(np.float64))
    np.testing.assert_allclose(mixture.score_ids(ids, lengths).token, expected, rtol=1e-6)


def test_em_by_context_finds_each_rows_best_weights(models):
    mixture = MixtureModel([models["ngram3"], models["lstm"]], [0.5, 0.5])
    tuned, report = mixture_weights.tune(mixture, [TINY_TEST], by_context=True)
    plain, _ = mixture_weights.tune(mixture, [TINY_TEST])
    assert tuned.context == 0 and tuned.weights.shape == (3, 2)
    chunks = mixture_weights.read_dev(mixture, [TINY_TEST])
    logp = mixture_weights.member_log10(mixture, chunks)
    rows = mixture_weights.dev_rows(mixture, chunks, 0)
    assert report["row_dev_tokens"] == np.bincount(rows, minlength=3).tolist()
    for row in range(3):
        if report["row_dev_tokens"][row] >= mixture_weights.MIN_ROW_TOKENS:
            assert abs(tuned.weights[row, 0] - grid_best(logp[:, rows == row])) <= 0.01
    text = TINY_TEST.read_text(encoding="utf-8")
    assert tuned.perplexity(text) == pytest.approx(report["dev_perplexity"], rel=1e-4)
    assert tuned.perplexity(text) < plain.perplexity(text)


# --- the command line --------------------------------------------------------------------------

def lmtool_ok(*args):
    done = run_lmtool(*args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_mix_tunes_prints_and_writes_a_self_contained_file(files, models, tmp_path):
    out = lmtool_ok("mix", files["ngram3"], files["lstm"], files["gru"], "--tune", TINY_TEST, "-o", tmp_path / "m.lm",
                    "-q")
    lines = out.splitlines()
    assert [line.split(",")[0] for line in lines[:3]] == [f"member {i}: {files[n]} ({k})" for i, n, k in
                                                          ((1, "ngram3", "ngram"), (2, "lstm", "recurrent"),
                                                           (3, "gru", "recurrent"))]
    assert lines[3].startswith("weights (EM, ") and lines[4].startswith("mixture dev perplexity: ")
    weights = [float(w) for w in lines[3].split(": ")[1].split(",")]
    assert sum(weights) == pytest.approx(1.0, abs=1e-5)
    # moved alone, the file still opens: the members travel inside it
    moved = tmp_path / "elsewhere" / "moved.lm"
    moved.parent.mkdir()
    shutil.move(tmp_path / "m.lm", moved)
    loaded = lmtool.load(moved)
    assert loaded.kind == "mixture" and [m.kind for m in loaded.members] == ["ngram", "recurrent", "recurrent"]
    np.testing.assert_allclose(loaded.weights, weights, atol=1e-6)
    text = TINY_TEST.read_text(encoding="utf-8")
    in_memory = MixtureModel([models["ngram3"], models["lstm"], models["gru"]], loaded.weights)
    assert loaded.perplexity(text) == pytest.approx(in_memory.perplexity(text), rel=1e-9)
    assert float(lines[4].split(": ")[1]) == pytest.approx(loaded.perplexity(text), rel=1e-4)
    info = lmtool_ok("info", moved, "--json")
    for needle in ('"mode": "linear"', '"method": "EM"', '"members_dev_perplexity"', '"dev_perplexity"',
                   '"kind": "recurrent"', '"weights"'):
        assert needle in info
    # a damaged byte inside an embedded member is caught by the mixture's checksum
    data = bytearray(moved.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "broken.lm").write_bytes(bytes(data))
    done = run_lmtool("perplexity", tmp_path / "broken.lm", TINY_TEST)
    assert done.returncode == 1 and b"checksum" in done.stderr and done.stderr.count(b"\n") == 1


def test_mix_by_context_prints_a_row_of_weights_per_history_length(files, tmp_path):
    out = lmtool_ok("mix", files["ngram3"], files["lstm"], "--tune", TINY_TEST, "--by-context", "-o",
                    tmp_path / "m.lm", "-q")
    lines = out.splitlines()
    assert lines[2].startswith("weights (EM by context of member 1, ") and lines[-1].startswith("mixture dev ")
    rows = [[float(w) for w in line.split(": ")[1].split(",")] for line in lines[3:6]]
    assert [line.split(" (")[0] for line in lines[3:6]] == ["  0", "  1", "  2"]
    loaded = lmtool.load(tmp_path / "m.lm")
    assert loaded.context == 0
    np.testing.assert_allclose(loaded.weights, rows, atol=1e-6)
    assert float(lines[-1].split(": ")[1]) == pytest.approx(loaded.perplexity(TINY_TEST.read_text()), rel=1e-4)
    assert json.loads(lmtool_ok("info", tmp_path / "m.lm", "--json"))["context"]["member"] == 1
    generated = lmtool_ok("generate", tmp_path / "m.lm", "-n", 3, "--seed", 2)
    assert generated.count("\n") == 3


def test_top_p_samples_a_mixture_from_its_nucleus(models):
    from lmtool.sampling import generate
    from lmtool.vocab import BOS, UNK
    from tests.naive import naive_nucleus

    mix = MixtureModel([models["ngram3"], models["window"]], [0.5, 0.5])
    p = mix.next_token_probs("and god")
    p[[BOS, UNK]] = 0  # never drawn
    drawn = {int(s[0]) for s in generate(mix, mix.vocab.encode(["and", "god"]), n=200, seed=4, top_p=0.6,
                                         max_tokens=1) if len(s)}
    assert drawn and drawn <= naive_nucleus(p / p.sum(), 0.6)


def test_every_command_serves_a_mixture(files, tmp_path):
    mix = tmp_path / "m.lm"
    lmtool_ok("mix", files["ngram3"], files["gru"], "--weights", "0.6,0.4", "-o", mix)
    one = lmtool_ok("score", mix, TINY_TEST, "--per-token")
    two = lmtool_ok("score", mix, TINY_TEST, "--per-token", "--threads", "2")
    assert one == two and one.count("\n") == 100
    assert lmtool_ok("perplexity", mix, TINY_TEST, "--threads", "2") == lmtool_ok("perplexity", mix, TINY_TEST)
    args = ("generate", mix, "--prefix", "and god", "-n", 4, "--seed", 7, "--temperature", 0.8, "--top-k", 20,
            "--top-p", 0.9)
    first = lmtool_ok(*args)
    assert first == lmtool_ok(*args) and all(line.startswith("and god") for line in first.splitlines())
    nested = tmp_path / "nested.lm"
    lmtool_ok("mix", mix, files["lstm"], "--loglinear", "--weights", "0.7,0.4", "-o", nested)
    assert lmtool.load(nested).members[0].kind == "mixture"
    assert "Perplexity including OOVs" in lmtool_ok("perplexity", nested, TINY_TEST)


BAD_MIX = {
    "missing member": (["{ngram3}", "{out}/nothing.lm", "--weights", "0.5,0.5"], "nothing.lm"),
    "damaged member": (["{ngram3}", "{damaged}", "--weights", "0.5,0.5"], "damaged.lm"),
    "negative weight": (["{ngram3}", "{lstm}", "--weights", "1.5,-0.5"], "--weights"),
    "weights for other models": (["{ngram3}", "{lstm}", "--weights", "0.2,0.3,0.5"], "--weights"),
    "weights not summing to one": (["{ngram3}", "{lstm}", "--weights", "0.5,0.6"], "sum"),
    "weights not numbers": (["{ngram3}", "{lstm}", "--weights", "0.5,x"], "--weights"),
    "stupid-backoff member": (["{ngram3}", "{stupid}", "--weights", "0.5,0.5"], "stupid.lm"),
    "levels differ": (["{ngram3}", "{char}", "--weights", "0.5,0.5"], "char.lm"),
    "empty dev file": (["{ngram3}", "{lstm}", "--tune", "{empty}"], "empty.txt"),
    "missing dev file": (["{ngram3}", "{lstm}", "--tune", "{out}/no-dev.txt"], "no-dev.txt"),
    "no weights at all": (["{ngram3}", "{lstm}"], "--tune"),
    "one model": (["{ngram3}", "--weights", "1"], "two"),
    "static with a recurrent member": (["{ngram3}", "{lstm}", "--weights", "0.5,0.5", "--static"], "lstm.lm"),
    "static log-linear": (["{ngram3}", "{wb2}", "--weights", "0.5,0.5", "--static", "--loglinear"], "--static"),
    "by context with hand weights": (["{ngram3}", "{lstm}", "--weights", "0.5,0.5", "--by-context"], "--tune"),
    "by context log-linear": (["{ngram3}", "{lstm}", "--tune", "{dev}", "--by-context", "--loglinear"],
                              "--loglinear"),
    "by context static": (["{ngram3}", "{wb2}", "--tune", "{dev}", "--by-context", "--static"], "--static"),
    "by context without an n-gram member": (["{lstm}", "{gru}", "--tune", "{dev}", "--by-context"], "lstm.lm"),
}


@pytest.mark.parametrize("case", sorted(BAD_MIX))
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, case):
    args, named = BAD_MIX[case]
    damaged = tmp_path / "damaged.lm"
    damaged.write_bytes(Path(files["ngram3"]).read_bytes()[:5000])
    (tmp_path / "empty.txt").write_bytes(b"")
    paths = {k: str(v) for k, v in files.items()}
    paths.update(out=str(tmp_path), damaged=str(damaged), empty=str(tmp_path / "empty.txt"), dev=str(TINY_TEST))
    before = set(os.listdir(tmp_path))
    done = run_lmtool("mix", *[a.format(**paths) for a in args], "-o", tmp_path / "out.lm", cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert err.startswith("lmtool: error: ") and err.count("\n") == 1 and named in err, err
    assert done.stdout == b""
    assert set(os.listdir(tmp_path)) == before
