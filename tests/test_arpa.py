"""ARPA reading and writing: round trips, pruned files with missing n-grams, broken files."""

import gzip
import math

import numpy as np
import pytest

from lmtool.errors import LmtoolError
from lmtool.ngram.arpa import read_arpa, write_arpa
from tests.helpers import import_unless_ci, model_from_text

PRUNED = """
\\data\\
ngram 1=5
ngram 2=2
ngram 3=1

\\1-grams:
-1.0\t<unk>
0\t<s>\t-0.5
-0.5\t</s>
-0.6\ta\t-0.2
-0.7\tb\t-0.1

\\2-grams:
-0.3\t<s> a\t-0.05
-0.2\ta b

\\3-grams:
-0.1\t<s> a b

\\end\\
"""


def test_round_trip(tmp_path):
    model = model_from_text(tmp_path, "a b c\nb c d e\nc d\n", 3)
    write_arpa(model, tmp_path / "m.arpa")
    again = read_arpa(tmp_path / "m.arpa")
    assert again.sizes == model.sizes
    for text in ["a b c", "d c b a", "e e e"]:
        assert again.score(text) == pytest.approx(model.score(text), abs=1e-6)
    with gzip.open(tmp_path / "m.arpa.gz", "wt") as f:
        f.write((tmp_path / "m.arpa").read_text())
    assert read_arpa(tmp_path / "m.arpa.gz").score("a b c") == pytest.approx(model.score("a b c"), abs=1e-6)


def test_missing_suffix_becomes_blank_with_backoff_semantics(tmp_path):
    path = tmp_path / "p.arpa"
    path.write_text(PRUNED)
    model = read_arpa(path)
    # "<s> a b" implies suffix "a b" (present) and prefix "<s> a" (present); nothing missing here,
    # but "a b" as a context has no backoff line: weight 1.
    assert model.meta["blank_ngrams"] == 0
    # p(a | <s>) = -0.3, p(b | <s> a) = -0.1, p(</s> | a b) backs off: bo(a b) = 0, bo(b) = -0.1, p(</s>) = -0.5
    assert model.score("a b") == pytest.approx(-0.3 + -0.1 + (0.0 - 0.1 - 0.5), abs=1e-6)


def test_pruned_file_missing_prefix(tmp_path):
    text = PRUNED.replace("ngram 2=2", "ngram 2=1").replace("-0.3\t<s> a\t-0.05\n", "")
    path = tmp_path / "p.arpa"
    path.write_text(text)
    model = read_arpa(path)
    assert model.meta["blank_ngrams"] == 1
    # the blank "<s> a" scores as backing off: bo(<s>) + p(a), and keeps backoff weight 1
    i = model.vocab.index
    lp = model.score_ids(np.array([i["a"], i["b"]], np.int32), np.array([2], np.int32)).token
    assert lp[0] == pytest.approx(-0.5 + -0.6, abs=1e-6)
    assert lp[1] == pytest.approx(-0.1, abs=1e-6)


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.replace("\\data\\", "data"), "expected '\\\\data\\\\'"),
    (lambda t: t.replace("ngram 2=2", "ngram 2=3"), "announces 3 2-grams"),
    (lambda t: t.replace("-0.2\ta b", "x\ta b"), "not a number"),
    (lambda t: t.replace("-0.2\ta b", "-0.2\ta zz"), "'-0.2 a zz' is not a unigram"),
    (lambda t: t.replace("\\end\\", ""), "missing"),
    (lambda t: t.replace("\\3-grams:", "\\4-grams:"), "missing '\\\\3-grams:'"),
    (lambda t: t.replace("-0.1\t<s> a b", "-0.1\t<s> a"), "expected a log10 probability, 3 words"),
    (lambda t: t.replace("-0.2\ta b", "0.5\ta b"), "line 16: a 2-gram has a log10 probability above 0"),
    (lambda t: t.replace("-0.7\tb\t-0.1", "-0.7\ta\t-0.1"), "line 12: the unigram 'a' is listed twice"),
    (lambda t: t.replace("-0.7\tb\t-0.1", "inf\tb\t-0.1"), "line 12: a 1-gram probability or backoff is not finite"),
])
def test_broken_files_name_the_problem(tmp_path, mutate, message):
    path = tmp_path / "broken.arpa"
    path.write_text(mutate(PRUNED))
    with pytest.raises(LmtoolError, match=message) as caught:
        read_arpa(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_char_vocabulary_cannot_be_arpa(tmp_path):
    from lmtool.ngram.build import build_ngram_model

    (tmp_path / "c.txt").write_text("ab ba\n" * 30)
    model = build_ngram_model([str(tmp_path / "c.txt")], order=2, level="char", smoothing="witten-bell")
    with pytest.raises(LmtoolError, match="whitespace"):
        write_arpa(model, tmp_path / "c.arpa")
    assert not (tmp_path / "c.arpa").exists()
    assert math.isfinite(model.score("ab"))


def test_a_file_without_unk_scores_unknown_words_as_kenlm_does(tmp_path):
    """KenLM's query substitutes log10 -100 for a missing <unk> (lm/config: unknown_missing_logprob)."""
    path = tmp_path / "nounk.arpa"
    path.write_text(PRUNED.replace("ngram 1=5", "ngram 1=4").replace("-1.0\t<unk>\n", ""))
    with pytest.warns(UserWarning, match="no <unk> unigram; unknown words get log10 probability -100"):
        model = read_arpa(path)
    assert model.prob[0] == -100.0
    assert model.score("zzz a") == pytest.approx((-0.5 + -100.0) + -0.6 + (-0.2 + -0.5), abs=1e-6)
    write_arpa(model, tmp_path / "again.arpa")
    assert read_arpa(tmp_path / "again.arpa").prob[0] == -100.0  # kept through a round trip
    kenlm = import_unless_ci("kenlm", "pip install kenlm")
    theirs = kenlm.Model(str(path))
    assert model.score("zzz a") == pytest.approx(theirs.score("zzz a", bos=True, eos=True), abs=1e-5)
