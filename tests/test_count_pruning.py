"""``count --prune``: lmplz's count thresholds, against lmplz's own pruned KJV model and a naive definition."""

import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lmtool.errors import LmtoolError
from lmtool.ngram.arpa import read_arpa
from lmtool.ngram.build import build_ngram_model
from lmtool.ngram.count_pruning import check_thresholds
from tests import naive
from tests.helpers import model_from_text
from tests.test_kenlm_reference import SHARED, assert_same_ngrams

REFERENCE = os.environ.get("LMTOOL_REFERENCE", SHARED)  # a checkout outside the usual layout names it
from tests.test_smoothing import NORMALIZED, distribution_sums, text_of

WORDS = ["a", "b", "c", "d", "e", "f"]


@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="../shared/reference (full-KJV KenLM outputs) not present")
def test_kjv_matches_lmplz_prune_0_1_1_1_1():
    """lmplz -o 5 --prune 0 1 1 1 1 on KJV train: the same n-grams, the same numbers, the same perplexity."""
    model = build_ngram_model(["corpora/kjv/train.txt"], order=5, prune=[0, 1, 1, 1, 1])
    assert model.sizes == [12389, 56311, 94788, 82970, 57012]
    assert_same_ngrams(model, read_arpa(os.path.join(REFERENCE, "kjv.o5.prune01111.arpa.gz")), tol=1e-6)
    with open("corpora/kjv/test.txt", encoding="utf-8") as f:
        text = f.read()
    ids, lengths = model.encode(text)
    from lmtool.evaluate import Totals

    summary = Totals.of(model.score_ids(ids, lengths), ids, lengths).summary()
    assert summary["perplexity"] == pytest.approx(50.15003, rel=1e-4)
    assert summary["perplexity_excluding_oov"] == pytest.approx(47.90058, rel=1e-4)


@pytest.fixture(scope="module")
def kjv_lines():
    with open("corpora/kjv/train.txt", encoding="utf-8") as f:
        return naive.sentences("".join(f.readline() for _ in range(1500)))


@pytest.mark.parametrize("prune", [[0, 1, 1, 1], [0, 0, 1, 2], [0, 2, 2]])
def test_mkn_matches_naive_definition(tmp_path, kjv_lines, prune):
    order = 4
    model = model_from_text(tmp_path, "".join(" ".join(w) + "\n" for w in kjv_lines), order, prune=prune)
    assert not any(model.meta["estimated"]["fallback"])
    expected = naive.mkn(kjv_lines, order, model.vocab.tokens, prune=check_thresholds(prune, order))
    unpruned = naive.count_ngrams(kjv_lines, order)
    for n in range(1, order + 1):
        rows = model.ngrams(n)
        got = {tuple(model.vocab.tokens[i] for i in r): (p, b) for r, p, b in zip(
            rows, model.prob[model.level(n)], model.backoff[model.level(n)] if n < order else np.zeros(len(rows)))}
        want = {g: v for g, v in expected.items() if len(g) == n}
        assert got.keys() == want.keys()
        if prune[min(n, len(prune)) - 1] > 0:
            assert len(want) < len(unpruned[n])  # something was dropped
        assert max(abs(got[g][0] - want[g][0]) for g in want) < 2e-6
        if n < order:
            assert max(abs(got[g][1] - want[g][1]) for g in want) < 2e-6


@settings(max_examples=20, deadline=None)
@given(lines=st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8), min_size=3, max_size=25),
       order=st.integers(2, 4), method=st.sampled_from(NORMALIZED), low=st.integers(0, 2), step=st.integers(0, 1))
def test_pruned_models_of_every_method_sum_to_one(tmp_path_factory, lines, order, method, low, step):
    prune = [0] + [low + step * (n > 2) for n in range(2, order + 1)]
    model = model_from_text(tmp_path_factory.mktemp("p"), text_of(lines), order, method, prune=prune)
    np.testing.assert_allclose(distribution_sums(model), 1.0, atol=1e-6)
    raw = naive.count_ngrams(lines, order)
    for n in range(2, order + 1):
        kept = {tuple(model.vocab.tokens[i] for i in r) for r in model.ngrams(n)}
        assert kept == {g for g, c in raw[n].items() if c > prune[n - 1]}


def test_stupid_backoff_drops_the_rare_ngrams(tmp_path):
    text = "a b\na b\na c\nc a\n"
    model = model_from_text(tmp_path, text, 2, "stupid-backoff", prune=[0, 1])
    assert {tuple(model.vocab.tokens[i] for i in r) for r in model.ngrams(2)} == {("<s>", "a"), ("a", "b"),
                                                                                 ("b", "</s>")}
    assert not model.normalized


def test_zero_thresholds_give_the_unpruned_arrays(tmp_path):
    text = "a b c\nb c d\na b d\n"
    plain = model_from_text(tmp_path, text, 3)
    zero = model_from_text(tmp_path, text, 3, prune=[0])
    for name in ("word", "prob", "backoff", "children"):
        assert np.array_equal(getattr(plain, name), getattr(zero, name))
    assert zero.meta["options"]["prune"] == [0, 0, 0] and "prune" not in plain.meta["options"]


@pytest.mark.parametrize("values, order, message", [
    (["0", "2", "1"], 3, "must not decrease"),
    (["1"], 3, "first threshold must be 0"),
    (["0", "-1"], 3, "whole numbers"),
    (["0", "x"], 3, "whole numbers"),
    (["0", "1.5"], 3, "whole numbers"),
    (["0", "1", "1", "1"], 3, "orders 1 to 4, but the model has order 3"),
    ([], 3, "one threshold per order"),
])
def test_bad_thresholds_are_refused(values, order, message):
    with pytest.raises(LmtoolError, match=message):
        check_thresholds(values, order)


def test_thresholds_repeat_the_last_for_higher_orders():
    assert check_thresholds(["0", "0", "1"], 5) == [0, 0, 1, 1, 1]


def test_a_threshold_that_empties_an_order_leaves_a_working_model(tmp_path):
    """lmplz writes 'ngram 4=0' when nothing of an order is left; that model scores, and reads back."""
    from lmtool.ngram.arpa import write_arpa

    model = model_from_text(tmp_path, TINY_TEXT, 4, prune=[0, 0, 0, 1000])
    assert model.sizes[3] == 0 and model.sizes[2] > 0
    np.testing.assert_allclose(distribution_sums(model), 1.0, atol=1e-6)
    write_arpa(model, tmp_path / "m.arpa")
    again = read_arpa(str(tmp_path / "m.arpa"))
    assert again.sizes == model.sizes
    assert again.score("and god said") == pytest.approx(model.score("and god said"), abs=1e-5)


TINY_TEXT = "and god said\nand god saw\nand the earth was\ngod said let there be light\n" * 3


@pytest.mark.parametrize("values, message", [
    (("0", "-1"), b"--prune thresholds are counts (whole numbers >= 0), got '-1'"),
    (("0", "1.5"), b"--prune thresholds are counts (whole numbers >= 0), got '1.5'"),
    (("0", "2", "1"), b"--prune thresholds must not decrease with the order (0 2 1)"),
    (("1",), b"the first threshold must be 0"),
])
def test_cli_bad_thresholds_are_one_line_and_write_nothing(tmp_path, values, message):
    from tests.conftest import TINY_TRAIN, run_lmtool

    done = run_lmtool("count", TINY_TRAIN, "--order", 3, "--prune", *values, "-o", tmp_path / "m.lm",
                      "--arpa", tmp_path / "m.arpa")
    assert done.returncode == 1
    assert done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"lmtool: error: ") and message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_prune_takes_every_number_after_it(tmp_path):
    from tests.conftest import TINY_TRAIN, run_lmtool

    done = run_lmtool("count", "--prune", 0, 1, 1, TINY_TRAIN, "--order", 3, "-o", tmp_path / "m.lm")
    assert done.returncode == 0, done.stderr.decode()
    import lmtool

    assert lmtool.load(tmp_path / "m.lm").meta["options"]["prune"] == [0, 1, 1]
