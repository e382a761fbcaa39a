"""Smoothing methods: normalisation of every context's distribution, and agreement with naive code."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lmtool.ngram.choices import SMOOTHING
from lmtool.ngram.smoothing import FALLBACK_DISCOUNTS, SmoothingWarning
from lmtool.vocab import BOS, SPECIALS
from tests import naive
from tests.conftest import KJV_TRAIN
from tests.helpers import model_from_text

UNK_TOKEN, BOS_TOKEN = SPECIALS[:2]
NORMALIZED = [m for m in SMOOTHING if m != "stupid-backoff"]
WORDS = ["a", "b", "c", "d", "e", "f"]
corpora = st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=8), min_size=2, max_size=20)


def text_of(lines):
    return "".join(" ".join(words) + "\n" for words in lines)


def contexts(model):
    """Every context the model knows (its n-grams below the top order) plus some unseen ones."""
    found = []
    for n in range(1, model.order):
        found.extend(tuple(r) for r in model.ngrams(n))
    last = len(model.vocab) - 1  # the rarest word: unseen contexts built from it
    found += [(), (BOS,), (BOS, last), (last, last, last)]
    return found


def distribution_sums(model):
    sums = []
    for ctx in contexts(model):
        ctx = [c for c in ctx if c != BOS or ctx[0] == BOS]
        state = [np.asarray(ctx, np.int32)[-(model.order - 1):] if model.order > 1 else np.zeros(0, np.int32)]
        p = model.distribution(state)[0]
        assert p[BOS] == 0.0
        sums.append(p.sum())
    return np.array(sums)


@settings(max_examples=25, deadline=None)
@given(lines=corpora, order=st.integers(1, 4), method=st.sampled_from(NORMALIZED))
def test_every_distribution_sums_to_one(tmp_path_factory, lines, order, method):
    if sum(map(len, lines)) == 0:
        lines = lines + [["a", "b"]]
    model = model_from_text(tmp_path_factory.mktemp("s"), text_of(lines), order, method)
    np.testing.assert_allclose(distribution_sums(model), 1.0, atol=1e-6)


@pytest.mark.parametrize("method", NORMALIZED)
def test_kjv_contexts_sum_to_one(method, kjv_small):
    model = model_from_text(kjv_small[0], kjv_small[1], 3, method)
    rng = np.random.default_rng(0)
    ctxs = contexts(model)
    picked = [ctxs[i] for i in rng.choice(len(ctxs), 300, replace=False)]
    for ctx in picked:
        state = [np.asarray(ctx, np.int32)[-2:]]
        assert abs(model.distribution(state)[0].sum() - 1.0) < 1e-6


@pytest.fixture(scope="module")
def kjv_small(tmp_path_factory):
    with open(KJV_TRAIN, encoding="utf-8") as f:
        text = "".join(f.readline() for _ in range(3000))
    return tmp_path_factory.mktemp("kjv"), text


NAIVE = {"modified-kneser-ney": naive.mkn, "kneser-ney": naive.kneser_ney, "witten-bell": naive.witten_bell,
         "add-k": naive.add_k, "stupid-backoff": naive.stupid_backoff}
TOLERANCE = 1e-6  # log10; the model keeps float32


def table_of(model):
    """The model's n-grams as naive's references give them: {tokens: (log10 p, log10 backoff)}."""
    table = {}
    for n in range(1, model.order + 1):
        rows = model.ngrams(n)
        backoffs = model.backoff[model.level(n)] if n < model.order else np.zeros(len(rows))
        for row, p, b in zip(rows, model.prob[model.level(n)], backoffs):
            table[tuple(model.vocab.tokens[i] for i in row)] = (float(p), float(b))
    return table


def naive_discounts(model, lines):
    """naive's estimates of the Kneser-Ney discounts of the model's corpus, per order (None where
    they cannot be estimated), checked against those the model recorded (or its fallback there)."""
    method, order, vocab = model.meta["smoothing"], model.order, model.vocab.tokens
    adjusted = naive.adjusted_counts(naive.in_vocabulary(lines, vocab), order, vocab)
    estimated = model.meta["estimated"]
    if method == "modified-kneser-ney":
        want, fallback = naive.mkn_discounts(adjusted), FALLBACK_DISCOUNTS
        assert estimated["fallback"] == [want[n] is None for n in range(1, order + 1)]
    else:
        want, fallback = naive.kn_discounts(adjusted), FALLBACK_DISCOUNTS[0]
    for n, got in enumerate(estimated["discounts"], 1):
        assert got == pytest.approx(fallback if want[n] is None else want[n], rel=1e-12, abs=1e-12), n
    return [want[n] for n in range(1, order + 1)]


def naive_table(model, lines):
    """naive's reference for the model's corpus, method and options; Kneser-Ney's is fed the
    discounts the model recorded, once ``naive_discounts`` has checked them."""
    method, order, vocab = model.meta["smoothing"], model.order, model.vocab.tokens
    options = dict(model.meta["options"])
    if method in ("modified-kneser-ney", "kneser-ney"):
        naive_discounts(model, lines)
        options["discounts"] = model.meta["estimated"]["discounts"]
    return NAIVE[method](naive.in_vocabulary(lines, vocab), order, vocab, **options)


def worst_gap(got, want):
    """The largest difference between two tables' log10 probabilities and backoffs (same n-grams)."""
    assert got.keys() == want.keys()
    assert got, "no n-grams compared"
    return max(max(abs(got[g][0] - want[g][0]), abs(got[g][1] - want[g][1])) for g in want)


def check_queries(model, table, sentences, distributions=3):
    """The model's sentence scores, and its next-word distributions after each prefix of the first
    ``distributions`` sentences, against naive's backoff computation over the model's own ``table``."""
    vocab = set(model.vocab.tokens)
    ids, lengths = model.encode(text_of(sentences))
    want = [naive.sentence_logprob(table, model.order, words, vocab) for words in sentences]
    np.testing.assert_allclose(model.score_ids(ids, lengths).sentence, want, rtol=0, atol=1e-9)
    for words in sentences[:distributions]:
        history = [BOS_TOKEN] + [w if w in vocab else UNK_TOKEN for w in words]
        for end in range(1, len(history) + 1):
            with np.errstate(divide="ignore"):  # p(<s>) = 0
                got = np.log10(model.distribution(model.begin([model.vocab.encode(history[1:end])]))[0])
            want = [naive.backoff_logprob(table, model.order, history[:end], w) for w in model.vocab.tokens
                    if w != BOS_TOKEN]
            np.testing.assert_allclose(np.delete(got, BOS), want, rtol=0, atol=1e-9)


unseen_words = st.lists(st.lists(st.sampled_from(WORDS + ["z"]), max_size=8), min_size=1, max_size=4)


@pytest.mark.parametrize("method", list(SMOOTHING))
@settings(max_examples=20, deadline=None)
@given(lines=st.lists(st.lists(st.sampled_from(WORDS), max_size=10), min_size=8, max_size=30),
       order=st.integers(1, 4), held_out=unseen_words, k=st.sampled_from([0.1, 0.5, 1.0, 2.0]))
def test_matches_naive_definition(tmp_path_factory, method, lines, order, held_out, k):
    """Every n-gram's log10 probability and backoff equal naive's, computed from the method's
    definition (Kneser-Ney's with the discounts the model recorded, themselves checked against
    naive's estimates); sentence scores and distributions equal the naive backoff computation."""
    lines = lines + [["a"]]  # a corpus of empty lines only is refused
    options = {"k": k} if method == "add-k" else {}
    model = model_from_text(tmp_path_factory.mktemp("m"), text_of(lines), order, method, **options)
    expected = naive_table(model, lines)
    table = table_of(model)
    assert worst_gap(table, expected) < TOLERANCE
    check_queries(model, table, held_out + lines[:2])


@pytest.mark.parametrize("method", list(SMOOTHING))
@pytest.mark.parametrize("min_count", [1, 2], ids=["all-words", "unk-counted"])
def test_matches_naive_definition_on_kjv_lines(kjv_small, method, min_count):
    """As above on 1,000 KJV lines (order 3); with --min-count 2 the rarer words count as <unk>."""
    sentences = naive.sentences(kjv_small[1])
    lines = sentences[:1000]
    model = model_from_text(kjv_small[0], text_of(lines), 3, method, name=f"{method}{min_count}.txt",
                            min_count=min_count)
    if "discounts" in model.meta["estimated"]:
        assert None not in naive_discounts(model, lines)  # estimated, not the fallback
    expected = naive_table(model, lines)
    table = table_of(model)
    assert worst_gap(table, expected) < TOLERANCE
    check_queries(model, table, sentences[1000:1200], distributions=1)


def test_add_one_unigrams_are_laplace(tmp_path):
    model = model_from_text(tmp_path, "a a b\nc\n", 1, "add-k", k=1.0)
    V = len(model.vocab) - 1  # without <s>: <unk> </s> a b c
    N = 3 + 1 + 2  # words plus one </s> per line
    count = {"a": 2, "b": 1, "c": 1, "</s>": 2, "<unk>": 0}
    for token, c in count.items():
        p = 10 ** model.prob[model.vocab.index[token]]
        assert p == pytest.approx((c + 1) / (N + V), rel=1e-6)


def test_add_k_seen_bigrams(tmp_path):
    model = model_from_text(tmp_path, "a b\na b\na c\n", 2, "add-k", k=0.5)
    V = len(model.vocab) - 1
    p = model.next_token_probs("a")
    assert p[model.vocab.index["b"]] == pytest.approx((2 + 0.5) / (3 + 0.5 * V), rel=1e-6)
    assert p[model.vocab.index["c"]] == pytest.approx((1 + 0.5) / (3 + 0.5 * V), rel=1e-6)


def test_witten_bell_bigram_by_hand(tmp_path):
    model = model_from_text(tmp_path, "a b\na b\na c\n", 2, "witten-bell")
    p = model.next_token_probs("a")
    # context "a": c(a.) = 3, N1+(a.) = 2 distinct followers
    uni = model.next_token_probs("")  # p(w | <s>)? no: recompute unigram from the table
    p_b_uni = 10 ** model.prob[model.vocab.index["b"]]
    assert p[model.vocab.index["b"]] == pytest.approx((2 + 2 * p_b_uni) / (3 + 2), rel=1e-6)
    assert uni.sum() == pytest.approx(1.0)


def test_kneser_ney_single_discount(tmp_path):
    lines = ["a b c", "a b d", "b c", "c d a", "d a b", "a c", "b d"] * 2 + ["e f"]
    model = model_from_text(tmp_path, "\n".join(lines) + "\n", 2, "kneser-ney")
    discounts = model.meta["estimated"]["discounts"]
    assert len(discounts) == 2 and all(0 < d <= 1 for d in discounts)


def test_stupid_backoff_scores(tmp_path):
    model = model_from_text(tmp_path, "a b\na b\na c\n", 2, "stupid-backoff")
    assert not model.normalized
    i = model.vocab.index
    score = model.score_ids(np.array([i["a"], i["c"]], np.int32), np.array([2], np.int32))
    lp = score.token
    assert lp[0] == pytest.approx(math.log10(3 / 3))  # p(a | <s>) = c(<s> a) / c(<s>.)
    assert lp[1] == pytest.approx(math.log10(1 / 3))  # c(a c) / c(a .)
    assert lp[2] == pytest.approx(0.0)  # c(c </s>) / c(c .)
    lp = model.score_ids(np.array([i["c"], i["b"]], np.int32), np.array([2], np.int32)).token
    assert lp[1] == pytest.approx(math.log10(0.4 * 2 / 9))  # "c b" unseen: 0.4 c(b) / N


def test_mkn_falls_back_with_one_warning_on_char_data(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from lmtool.ngram.build import build_ngram_model

        path = tmp_path / "chars.txt"
        path.write_text("abcabcabc\nbcabca\n" * 20)
        model = build_ngram_model([str(path)], order=3, level="char")
    messages = [str(w.message) for w in caught if issubclass(w.category, SmoothingWarning)]
    assert messages and all("\n" not in m and "fallback" in m for m in messages)
    assert any(model.meta["estimated"]["fallback"])
    assert distribution_sums(model) == pytest.approx(1.0, abs=1e-6)


def test_out_of_range_ids_are_refused_not_read(tmp_path):
    """A context holding an id outside the vocabulary is a ValueError, never a read past the tables."""
    model = model_from_text(tmp_path, "a b\nb a\n", 3, "modified-kneser-ney")
    V = len(model.vocab)
    for bad in ([V], [-1], [V + 1000, 2]):
        with pytest.raises(ValueError, match="ids must lie in"):
            model.distribution([np.array(bad, np.int32)])
        with pytest.raises(ValueError, match="ids must lie in"):
            model.begin([np.array(bad, np.int32)])
    with pytest.raises(ValueError, match="ids must lie in"):
        model.advance(model.begin([np.zeros(0, np.int32)]), np.array([V], np.int32))


def test_bincount_kernels_give_numpys_numbers_exactly():
    """The nogil kernels that replace np.bincount on the smoothing threads add in row order, as it
    does, so the model's floats do not change; add_occurrences with bounds lets threads share one array."""
    from lmtool.kernels.ngram_count import add_occurrences, capped_occurrences, occurrences, weighted_sums

    rng = np.random.default_rng(3)
    index = rng.integers(0, 50, 10_000)
    weights = rng.random(10_000) * 10 ** rng.uniform(-8, 8, 10_000)  # magnitudes where order matters
    assert np.array_equal(weighted_sums(index, weights, 60), np.bincount(index, weights=weights, minlength=60))
    assert np.array_equal(occurrences(index, 60), np.bincount(index, minlength=60))
    values = rng.integers(0, 9, 1000).astype(np.int32)
    expected = [int((values == k).sum()) for k in range(4)] + [int((values >= 4).sum())]
    assert capped_occurrences(values, 4).tolist() == expected
    shared = np.zeros(60, np.int32)
    for lo, hi in ((0, 17), (17, 40), (40, 60)):
        add_occurrences(shared, index, lo, hi)
    assert np.array_equal(shared, np.bincount(index, minlength=60))
