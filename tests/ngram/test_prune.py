"""Relative-entropy pruning (``lmtool prune``) against SRILM's algorithm written from its definition
in ``tests/naive.py``, on lmtool's own models and on ARPA files with the suffixes SRILM drops."""

import math

import numpy as np
import pytest

from lmtool.errors import LmtoolError
from lmtool.ngram import prune as P
from lmtool.ngram.context_frequency import history_of
from lmtool.ngram.arpa import read_arpa
from lmtool.vocab import BOS
from tests import naive
from tests.conftest import TINY_TRAIN, run_lmtool
from tests.helpers import model_from_text
from .test_smoothing import distribution_sums


def as_dict(model):
    """{ngram tokens: (log10 p, log10 backoff)} of every n-gram of ``model``."""
    out = {}
    for n in range(1, model.order + 1):
        probs = model.prob[model.level(n)]
        backs = model.backoff[model.level(n)] if n < model.order else np.zeros(len(probs))
        for row, p, b in zip(model.ngrams(n), probs, backs):
            out[tuple(model.vocab.tokens[i] for i in row)] = (float(p), float(b))
    return out


def assert_same_pruned(ours, want, order):
    """``ours`` (an NgramModel) holds every n-gram of ``want`` (naive, without blanks) with its numbers,
    and its other n-grams are blanks: backoff 1 and the probability backing off gives in ``want``."""
    got = as_dict(ours)
    assert want.keys() <= got.keys()
    for gram, (p, b) in want.items():
        assert got[gram][0] == pytest.approx(p, abs=1e-6), gram
        if len(gram) < order:
            assert got[gram][1] == pytest.approx(b, abs=1e-6), gram
    blanks = got.keys() - want.keys()
    assert len(blanks) == ours.meta["pruned"]["blank_ngrams"]
    for gram in blanks:
        assert any(g[1:] == gram for g in got if len(g) == len(gram) + 1), gram  # a longer n-gram needs it
        assert got[gram][1] == 0.0
        assert got[gram][0] == pytest.approx(naive.backoff_logprob(want, order, gram[:-1], gram[-1]), abs=1e-6)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 4-gram and a 3-gram of the tiny corpus, and the corpus' lines."""
    text = TINY_TRAIN.read_text(encoding="utf-8")
    folder = tmp_path_factory.mktemp("tiny")
    return {order: model_from_text(folder, text, order, name=f"t{order}.txt") for order in (3, 4)}, \
        naive.sentences(text)


@pytest.mark.parametrize("order, threshold", [(4, 3e-6), (4, 3e-5), (3, 1e-3)])
def test_matches_srilm_definition(tiny, order, threshold):
    models, _ = tiny
    model = models[order]
    pruned, used = P.prune(model, threshold=threshold)
    assert used == threshold
    want = naive.entropy_prune(as_dict(model), order, threshold)
    assert len(want) < 0.8 * sum(model.sizes)  # a real share went
    assert_same_pruned(pruned, want, order)
    np.testing.assert_allclose(distribution_sums(pruned), 1.0, atol=1e-6)


def test_history_weighs_contexts_by_their_frequency(tiny):
    models, lines = tiny
    model, order = models[4], 4
    counts = naive.count_ngrams(lines, order - 1)
    tokens = sum(len(w) + 1 for w in lines)
    history = {g: math.log10(c / tokens) for n in counts for g, c in counts[n].items()}
    history[("<s>",)] = math.log10(len(lines) / tokens)
    computed = history_of(model, [str(TINY_TRAIN)])
    for n in range(1, order):
        for row, value in zip(model.ngrams(n), computed[model.level(n)]):
            gram = tuple(model.vocab.tokens[i] for i in row)
            if gram in history:
                assert value == pytest.approx(history[gram], abs=1e-9)
            else:
                assert np.isnan(value), gram
    pruned, _ = P.prune(model, threshold=1e-5, history=[str(TINY_TRAIN)])
    assert pruned.meta["pruned"]["history"] == [str(TINY_TRAIN)]
    want = naive.entropy_prune(as_dict(model), order, 1e-5, history=history)
    assert_same_pruned(pruned, want, order)
    plain, _ = P.prune(model, threshold=1e-5)
    assert as_dict(plain).keys() != as_dict(pruned).keys()


def test_unigrams_go_on_request_and_become_unk(tiny):
    models, _ = tiny
    model, order = models[3], 3
    pruned, _ = P.prune(model, threshold=3e-4, prune_unigrams=True)
    want = naive.entropy_prune(as_dict(model), order, 3e-4, prune_unigrams=True)
    assert len(pruned.vocab) < len(model.vocab)
    assert [t for t in model.vocab.tokens if (t,) in want] == pruned.vocab.tokens
    assert_same_pruned(pruned, want, order)
    np.testing.assert_allclose(distribution_sums(pruned), 1.0, atol=1e-6)
    assert pruned.score("zzzunseen") == pytest.approx(pruned.score("<unk>"))


def test_an_srilm_file_missing_suffixes_prunes_as_srilm_does(tiny, tmp_path):
    """A pruned SRILM file lacks the suffixes it dropped; read back they are blanks, which count in no sum."""
    models, _ = tiny
    order = 4
    first = naive.entropy_prune(as_dict(models[order]), order, 3e-5)
    arpa = tmp_path / "srilm.arpa"
    with open(arpa, "w", encoding="utf-8") as f:
        f.write("\\data\\\n" + "".join(f"ngram {n}={sum(len(g) == n for g in first)}\n" for n in range(1, order + 1)))
        for n in range(1, order + 1):
            f.write(f"\n\\{n}-grams:\n")
            for gram, (p, b) in first.items():
                if len(gram) == n:
                    f.write(f"{p:.7f}\t{' '.join(gram)}" + (f"\t{b:.7f}\n" if n < order else "\n"))
        f.write("\n\\end\\\n")
    model = read_arpa(str(arpa))
    assert model.meta["blank_ngrams"] > 0
    pruned, _ = P.prune(model, threshold=1e-4)
    as_read = {g: (round(p, 7), round(b, 7)) for g, (p, b) in first.items()}
    want = naive.entropy_prune({g: (float(np.float32(p)), float(np.float32(b))) for g, (p, b) in as_read.items()},
                               order, 1e-4)
    assert_same_pruned(pruned, want, order)


def test_size_finds_the_smallest_threshold_that_fits(tiny):
    models, _ = tiny
    model = models[4]
    c = P.costs(model)
    target = sum(model.sizes) // 2
    threshold = P.threshold_for_size(c, target)
    pruned, used = P.prune(model, size=target)
    assert used == threshold and sum(pruned.sizes) == P.size_at(c, threshold) <= target
    below = np.unique(c.change[np.isfinite(c.change) & (c.change > 0) & (c.change < threshold)])
    assert P.size_at(c, below[-1]) > target  # the threshold before it leaves too many
    assert P.threshold_for_size(c, sum(model.sizes)) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": -1e-7}, "must be a number >= 0"),
    ({"threshold": float("nan")}, "must be a number >= 0"),
    ({}, "either --threshold or --size"),
    ({"threshold": 1e-7, "size": 10}, "either --threshold or --size"),
    ({"size": 0}, "positive number"),
    ({"size": 10 ** 9}, "more than the model's"),
    ({"size": 10}, "below what pruning can reach"),
])
def test_bad_requests_are_refused(tiny, kwargs, message):
    with pytest.raises(LmtoolError, match=message):
        P.prune(tiny[0][3], **kwargs)


def test_stupid_backoff_is_refused(tmp_path):
    model = model_from_text(tmp_path, "a b\nb a\n", 2, "stupid-backoff")
    with pytest.raises(LmtoolError, match="not probabilities"):
        P.prune(model, threshold=1e-7)


def test_context_probability_of_sentence_start_is_that_of_the_end(tiny):
    """SRILM's contextProb: P(<s> w) = p(</s>) p(w | <s>), <s> itself never being predicted."""
    model = tiny[0][3]
    c = P.costs(model)
    i = model.vocab.index
    node = model.level(2).start + int(np.flatnonzero(model.ngrams(2)[:, 0] == BOS)[0])
    children = model.ngrams(3)
    rows = np.flatnonzero((children[:, 0] == BOS) & (children[:, 1] == model.word[node]))
    assert len(rows)
    d = as_dict(model)
    gram = tuple(model.vocab.tokens[k] for k in children[rows[0]])
    siblings = [g for g in d if len(g) == 3 and g[:-1] == gram[:-1]]
    want = naive.perplexity_change(d, 3, gram, siblings)
    assert c.change[model.level(3).start + rows[0]] == pytest.approx(want, rel=1e-9, abs=1e-15)
    assert i["</s>"] != BOS


def test_cli_writes_arpa_and_says_the_threshold(tmp_path, tiny_model):
    out = tmp_path / "small.arpa"
    done = run_lmtool("prune", tiny_model.lm, "-o", out, "--size", 4000)
    assert done.returncode == 0, done.stderr.decode()
    assert b"pruned at threshold" in done.stderr
    small = read_arpa(str(out))
    assert sum(small.sizes) <= 4000


@pytest.mark.parametrize("args, message", [
    (("--threshold", "-1"), b"--threshold must be a number >= 0"),
    (("--threshold", "abc"), b"'abc' is not a valid float"),
    (("--size", "100000000"), b"more than the model's"),
    (("--threshold", "1e-7", "--quantize", "0"), b"--quantize takes 4 to 16 bits"),
    (("--threshold", "1e-7", "--quantize", "40"), b"--quantize takes 4 to 16 bits"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_model, args, message):
    out = tmp_path / "small.lm"
    done = run_lmtool("prune", tiny_model.lm, "-o", out, *args)
    assert done.returncode != 0
    assert done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"lmtool: error: ") and message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_stupid_backoff_and_recurrent_models(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\nb c a\n" * 20)
    sb = tmp_path / "sb.lm"
    assert run_lmtool("count", "-q", corpus, "-o", sb, "--smoothing", "stupid-backoff").returncode == 0
    rnn = tmp_path / "rnn.lm"
    assert run_lmtool("train", "-q", corpus, "-o", rnn, "--hidden", 4, "--epochs", 1, "--batch", 2,
                      "--bptt", 4).returncode == 0
    for model, message in ((sb, b"not probabilities"), (rnn, b"has no n-grams to prune")):
        out = tmp_path / "out.lm"
        done = run_lmtool("prune", model, "-o", out, "--threshold", "1e-7")
        assert done.returncode == 1 and done.stderr.count(b"\n") == 1 and message in done.stderr, done.stderr
        assert not out.exists()


def test_cli_weighs_contexts_by_the_recorded_training_text_by_default(tmp_path):
    """The model's own training text, while it is there unchanged, is the default --history; when it
    has changed (or with --chain-rule) contexts are weighed by the chain rule, as SRILM does."""
    corpus, lm = tmp_path / "train.txt", tmp_path / "m.lm"
    corpus.write_bytes(TINY_TRAIN.read_bytes())
    assert run_lmtool("count", "-q", corpus, "--order", 3, "-o", lm).returncode == 0

    def pruned(name, *args):
        done = run_lmtool("prune", lm, "-o", tmp_path / name, "--size", 4000, *args)
        assert done.returncode == 0, done.stderr.decode()
        return (tmp_path / name).read_bytes(), done.stderr.decode()

    by_default, said = pruned("default.lm")
    assert f"weighed contexts by their frequency in {corpus}" in said
    assert by_default == pruned("history.lm", "-q", "--history", corpus)[0]
    chain_rule = pruned("chain.lm", "-q", "--chain-rule")[0]
    assert chain_rule != by_default
    corpus.write_text("a changed text\n")
    changed, said = pruned("changed.lm")
    assert changed == chain_rule and "weighing" not in said
    both = run_lmtool("prune", lm, "-o", tmp_path / "both.lm", "--size", 4000, "--history", corpus, "--chain-rule")
    assert both.returncode == 1 and b"give one" in both.stderr
