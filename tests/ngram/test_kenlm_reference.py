"""Modified Kneser-Ney against KenLM: the same n-grams, the same numbers, the same perplexity.

Numbers agree to TOLERANCE in log10: both tools keep float32, and the worst gap measured is one
float32 step, 2.4e-7 on the tiny models and 4.8e-7 on the full-KJV ones (|log10 p| up to 5.1).
"""

import gzip
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from lmtool.evaluate import Totals
from lmtool.ngram.arpa import read_arpa, write_arpa
from lmtool.ngram.build import build_ngram_model

from ..conftest import KENLM_DATA, KJV_TEST, ROOT, TINY_TEST, TINY_TRAIN
from ..helpers import import_unless_ci, skip_unless_ci

TOLERANCE = 1e-6


def _shared_reference():
    """KenLM's full-KJV ARPA files: where LMTOOL_KENLM_REFERENCE says, else shared/reference beside the
    checkout or beside a folder above it (a git worktree below the usual layout finds it too)."""
    if "LMTOOL_KENLM_REFERENCE" in os.environ:
        return Path(os.environ["LMTOOL_KENLM_REFERENCE"])
    candidates = [folder / "shared" / "reference" for folder in ROOT.parents]
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED = _shared_reference()


def assert_same_ngrams(ours, ref, tol=TOLERANCE):
    """Same n-gram set per order; log10 probabilities and backoffs within ``tol``."""
    assert ours.sizes == ref.sizes
    to_ref = np.array([ref.vocab.index[t] for t in ours.vocab.tokens])
    for n in range(1, ref.order + 1):
        a = ref.ngrams(n)
        b = to_ref[ours.ngrams(n)]
        ia, ib = np.lexsort(a.T[::-1]), np.lexsort(b.T[::-1])
        np.testing.assert_array_equal(a[ia], b[ib])
        np.testing.assert_allclose(ours.prob[ours.level(n)][ib], ref.prob[ref.level(n)][ia], rtol=0, atol=tol)
        if n < ref.order:
            np.testing.assert_allclose(ours.backoff[ours.level(n)][ib], ref.backoff[ref.level(n)][ia],
                                       rtol=0, atol=tol)


def summary_of(model, path):
    """``query -v summary``'s figures for the test corpus at ``path``."""
    with open(path, encoding="utf-8") as f:
        ids, lengths = model.encode(f.read())
    return Totals.of(model.score_ids(ids, lengths), ids, lengths).summary()


def assert_same_summary(got, want):
    """Token and OOV counts equal, perplexities within the precision KenLM's figures are kept to."""
    assert (got["tokens"], got["oov"]) == (want["tokens"], want["oov"])
    assert got["perplexity"] == pytest.approx(want["perplexity"], rel=1e-6)
    assert got["perplexity_excluding_oov"] == pytest.approx(want["perplexity_excluding_oov"], rel=1e-6)


@pytest.fixture(scope="module", params=[3, 5])
def tiny(request, tmp_path_factory):
    order = request.param
    model = build_ngram_model([str(TINY_TRAIN)], order=order)
    arpa = tmp_path_factory.mktemp("arpa") / f"tiny{order}.arpa"
    write_arpa(model, str(arpa))
    return order, model, str(arpa)


def test_tiny_arpa_matches_lmplz(tiny):
    order, model, arpa = tiny
    ref = read_arpa(str(KENLM_DATA / f"tiny.o{order}.arpa.gz"))
    assert_same_ngrams(read_arpa(arpa), ref)
    assert_same_ngrams(model, ref)


def test_tiny_perplexity_matches_query(tiny):
    order, model, _ = tiny
    with open(KENLM_DATA / "query_tiny_test.json") as f:
        want = json.load(f)[f"tiny.o{order}"]
    assert_same_summary(summary_of(model, TINY_TEST), want)


def test_kenlm_module_reads_our_arpa(tiny):
    kenlm = import_unless_ci("kenlm", "pip install -e '.[test]'")
    order, model, arpa = tiny
    theirs = kenlm.Model(arpa)
    total, tokens = 0.0, 0
    with open(TINY_TEST, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        total += theirs.score(line, bos=True, eos=True)
        tokens += len(line.split()) + 1
    theirs_ppl = 10 ** (-total / tokens)
    ours_ppl = model.perplexity("\n".join(lines))
    assert ours_ppl == pytest.approx(theirs_ppl, rel=1e-6)
    for line in lines:  # the module sums a sentence in float32: half a float32 step per word
        want = theirs.score(line)
        half_steps = float(np.spacing(np.float32(abs(want)))) * (len(line.split()) + 1) / 2
        assert model.score(line) == pytest.approx(want, abs=half_steps)


def make_kjv_reference():
    """tests/data/kenlm/make_kjv_reference.py, the script that derived the compact KJV reference."""
    spec = importlib.util.spec_from_file_location("make_kjv_reference", KENLM_DATA / "make_kjv_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def node_of(model, words):
    """The model's node (global index) of the n-gram ``words``, found by binary search in its trie."""
    node = model.vocab.index[words[0]]
    for w in words[1:]:
        lo, hi = model.child_start[node], model.child_start[node + 1]
        node = lo + int(np.searchsorted(model.word[lo:hi], model.vocab.index[w]))
        assert node < hi and model.word[node] == model.vocab.index[w], words
    return node


@pytest.fixture(scope="module")
def kjv_reference():
    with gzip.open(KENLM_DATA / "kjv.reference.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)["models"]


@pytest.mark.parametrize("order", [3, 5])
def test_kjv_matches_lmplz_compact_reference(order, kjv_models, kjv_reference):
    """Against tests/data/kenlm/kjv.reference.json.gz, which stands in for KenLM's full-KJV ARPA
    files wherever they are absent: per order the same number of n-grams and the same sorted list
    (its digest), the sampled n-grams' numbers, and KenLM's test perplexities."""
    script = make_kjv_reference()
    ref = kjv_reference[f"kjv.o{order}"]
    model = kjv_models(order)
    assert script.vocabulary_digest(model.vocab.tokens) == ref["vocabulary_blake2b"]
    assert model.sizes == [level["count"] for level in ref["orders"]]
    rank = script.ranks(model.vocab.tokens)
    rank_of = np.array([rank[t] for t in model.vocab.tokens])
    for level in ref["orders"]:
        n = level["n"]
        assert script.digest(rank_of[model.ngrams(n)]) == level["blake2b"], f"the {n}-grams differ from KenLM's"
        nodes = np.array([node_of(model, g.split(" ")) for g, _, _ in level["sample"]])
        want = np.array([[p, b] for _, p, b in level["sample"]], np.float32)  # as KenLM holds them
        np.testing.assert_allclose(model.prob[nodes], want[:, 0], rtol=0, atol=TOLERANCE)
        backoff = model.backoff[nodes] if n < order else np.zeros(len(nodes))
        np.testing.assert_allclose(backoff, want[:, 1], rtol=0, atol=TOLERANCE)
    assert_same_summary(summary_of(model, KJV_TEST), ref["query_test"])


@pytest.mark.parametrize("order", [3, 5])
def test_kjv_matches_lmplz(order, kjv_models, kjv_reference):
    """Every n-gram against KenLM's full-KJV ARPA file, where ../shared/reference holds them."""
    path = SHARED / f"kjv.o{order}.arpa.gz"
    if not path.is_file():
        skip_unless_ci(f"KenLM's full-KJV reference {path} is not present (LMTOOL_KENLM_REFERENCE may name "
                       "the folder holding kjv.o3.arpa.gz and kjv.o5.arpa.gz)")
    model = kjv_models(order)
    assert_same_ngrams(model, read_arpa(str(path)))
    assert_same_summary(summary_of(model, KJV_TEST), kjv_reference[f"kjv.o{order}"]["query_test"])


def test_discounts_match_lmplz_on_kjv(kjv_models):
    """lmplz -o 5 prints these D1/D2/D3+ per order for KJV train (../shared/ANCHORS.md)."""
    model = kjv_models(5)
    want = [(0.561453, 1.07144, 1.51672), (0.694972, 1.11415, 1.4636), (0.800418, 1.19043, 1.50727),
            (0.881644, 1.32309, 1.57914), (0.882881, 1.39719, 1.6383)]
    for got, expected in zip(model.meta["estimated"]["discounts"], want):
        assert got == pytest.approx(expected, rel=1e-5)
