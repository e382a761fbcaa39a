"""Modified Kneser-Ney against KenLM: the same n-grams, the same numbers, the same perplexity."""

import json
import math
import os

import numpy as np
import pytest

from lmtool.ngram.arpa import read_arpa, write_arpa
from lmtool.ngram.build import build_ngram_model

from .conftest import KJV_TRAIN, ROOT, TINY_TEST, TINY_TRAIN

DATA = os.path.join(os.path.dirname(__file__), "data", "kenlm")
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")


def assert_same_ngrams(ours, ref, tol=1e-4):
    """Same n-gram set per order; log10 probabilities and backoffs within ``tol``."""
    assert ours.sizes == ref.sizes
    to_ref = np.array([ref.vocab.index[t] for t in ours.vocab.tokens])
    for n in range(1, ref.order + 1):
        a = ref.ngrams(n)
        b = to_ref[ours.ngrams(n)]
        ia, ib = np.lexsort(a.T[::-1]), np.lexsort(b.T[::-1])
        np.testing.assert_array_equal(a[ia], b[ib])
        np.testing.assert_allclose(ours.prob[ours.level(n)][ib], ref.prob[ref.level(n)][ia], atol=tol)
        if n < ref.order:
            np.testing.assert_allclose(ours.backoff[ours.level(n)][ib], ref.backoff[ref.level(n)][ia], atol=tol)


@pytest.fixture(scope="module", params=[3, 5])
def tiny(request, tmp_path_factory):
    order = request.param
    model = build_ngram_model([str(TINY_TRAIN)], order=order)
    arpa = tmp_path_factory.mktemp("arpa") / f"tiny{order}.arpa"
    write_arpa(model, str(arpa))
    return order, model, str(arpa)


def test_tiny_arpa_matches_lmplz(tiny):
    order, model, arpa = tiny
    ref = read_arpa(os.path.join(DATA, f"tiny.o{order}.arpa.gz"))
    assert_same_ngrams(read_arpa(arpa), ref)
    assert_same_ngrams(model, ref)


def test_tiny_perplexity_matches_query(tiny):
    order, model, _ = tiny
    with open(os.path.join(DATA, "query_tiny_test.json")) as f:
        want = json.load(f)[f"tiny.o{order}"]
    with open(TINY_TEST, encoding="utf-8") as f:
        text = f.read()
    from lmtool.evaluate import Totals

    ids, lengths = model.encode(text)
    got = Totals.of(model.score_ids(ids, lengths), ids, lengths).summary()
    assert got["tokens"] == want["tokens"] and got["oov"] == want["oov"]
    assert got["perplexity"] == pytest.approx(want["perplexity"], rel=1e-4)
    assert got["perplexity_excluding_oov"] == pytest.approx(want["perplexity_excluding_oov"], rel=1e-4)


def test_kenlm_module_reads_our_arpa(tiny):
    kenlm = pytest.importorskip("kenlm")
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
    assert f"{theirs_ppl:.4g}" == f"{ours_ppl:.4g}"
    for line in lines[:50]:
        assert model.score(line) == pytest.approx(theirs.score(line), abs=1e-4)


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/reference (full-KJV KenLM outputs) not present")
@pytest.mark.parametrize("order,perplexity", [(3, 48.92532), (5, 41.58920)])
def test_kjv_matches_lmplz(order, perplexity):
    model = build_ngram_model([str(KJV_TRAIN)], order=order)
    assert_same_ngrams(model, read_arpa(os.path.join(SHARED, f"kjv.o{order}.arpa.gz")))
    with open(ROOT / "corpora" / "kjv" / "test.txt", encoding="utf-8") as f:
        assert model.perplexity(f.read()) == pytest.approx(perplexity, rel=1e-4)


def test_discounts_match_lmplz_on_kjv():
    """lmplz -o 5 prints these D1/D2/D3+ per order for KJV train (../shared/ANCHORS.md)."""
    model = build_ngram_model([str(KJV_TRAIN)], order=5)
    want = [(0.561453, 1.07144, 1.51672), (0.694972, 1.11415, 1.4636), (0.800418, 1.19043, 1.50727),
            (0.881644, 1.32309, 1.57914), (0.882881, 1.39719, 1.6383)]
    for got, expected in zip(model.meta["estimated"]["discounts"], want):
        assert got == pytest.approx(expected, rel=1e-5)
    assert not math.isnan(model.perplexity("and god said , let there be light : and there was light ."))
