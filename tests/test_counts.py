"""N-gram counts from the Numba kernels against a brute-force counter."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lmtool.encoded_corpus import encode_corpus
from lmtool.ngram.counts import count_ngrams
from tests import naive
from tests.conftest import KJV_TRAIN

WORDS = ["a", "b", "c", "dd", "é", "<unk>"]
corpora = st.lists(st.lists(st.sampled_from(WORDS), max_size=9), min_size=1, max_size=25)


def kernel_counts(tmp_path, lines, order):
    path = tmp_path / "c.txt"
    path.write_text("".join(" ".join(words) + "\n" for words in lines), encoding="utf-8")
    data = encode_corpus([str(path)])
    counts = count_ngrams(data.ids, data.lengths, order, len(data.vocab))
    return data.vocab, counts


def as_dict(vocab, counts, n):
    """{tuple of tokens: count} for order n, rebuilt from the trie levels."""
    rows = [(i,) for i in range(counts.vocab_size)]
    for k in range(2, n + 1):
        rows = [rows[p] + (w,) for p, w in zip(counts.parent[k - 1], counts.word[k - 1])]
    return {tuple(vocab.tokens[i] for i in row): int(c) for row, c in zip(rows, counts.count[n - 1]) if c}


@settings(max_examples=60, deadline=None)
@given(lines=corpora, order=st.integers(1, 5))
def test_counts_equal_brute_force(tmp_path_factory, lines, order):
    if not any(lines):
        lines = lines + [["a"]]
    vocab, counts = kernel_counts(tmp_path_factory.mktemp("c"), lines, order)
    expected = naive.count_ngrams(lines, order)
    for n in range(1, order + 1):
        assert as_dict(vocab, counts, n) == dict(expected[n])


@settings(max_examples=30, deadline=None)
@given(lines=corpora, order=st.integers(2, 4))
def test_levels_are_sorted_and_linked(tmp_path_factory, lines, order):
    if not any(lines):
        lines = lines + [["b", "c"]]
    _, counts = kernel_counts(tmp_path_factory.mktemp("c"), lines, order)
    for n in range(2, order + 1):
        key = counts.parent[n - 1].astype(np.int64) * counts.vocab_size + counts.word[n - 1]
        assert (np.diff(key) > 0).all()
        # the suffix of (parent, word) is the child of suffix(parent) with the same word
        if n > 2:
            sp = counts.suffix[n - 2][counts.parent[n - 1]]
            suffix_key = sp.astype(np.int64) * counts.vocab_size + counts.word[n - 1]
            key_lower = counts.parent[n - 2].astype(np.int64) * counts.vocab_size + counts.word[n - 2]
            assert (key_lower[counts.suffix[n - 1]] == suffix_key).all()
        else:
            assert (counts.suffix[1] == counts.word[1]).all()


def test_kjv_sizes_match_kenlm():
    """KenLM's lmplz reports these n-gram counts for KJV train (../shared/ANCHORS.md)."""
    data = encode_corpus([str(KJV_TRAIN)])
    counts = count_ngrams(data.ids, data.lengths, 5, len(data.vocab))
    assert counts.sizes() == [12389, 133623, 369043, 558039, 645256]
    assert len(data.ids) == 822470 and len(data.lengths) == 27990


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_merge_by_key_ranges_gives_the_union_with_summed_counts_and_maps(threads):
    from lmtool.ngram.counts import _merge_by_key_ranges

    rng = np.random.default_rng(threads)
    for _ in range(100):  # empty parts and fewer keys than threads included
        keys = [np.unique(rng.integers(0, 50, rng.integers(0, 30))).astype(np.int64) for _ in range(rng.integers(1, 6))]
        counts = [rng.integers(1, 9, len(k)).astype(np.int64) for k in keys]
        merged, summed, maps = _merge_by_key_ranges(keys, counts, threads)
        assert np.array_equal(merged, np.unique(np.concatenate(keys)))
        expected = np.zeros(len(merged), np.int64)
        for k, c, m in zip(keys, counts, maps):
            assert np.array_equal(merged[m], k)
            np.add.at(expected, m, c)
        assert np.array_equal(summed, expected)


@pytest.mark.parametrize("seed", range(4))
def test_merge_of_sorted_pieces(seed):
    from lmtool.ngram.counts import merge_pieces

    rng = np.random.default_rng(seed)
    pieces = [np.unique(rng.integers(0, 400, rng.integers(0, 120))) for _ in range(rng.integers(1, 9))]
    counts = [rng.integers(1, 5, len(p)) for p in pieces]
    joined, summed = np.concatenate(pieces), np.concatenate(counts)
    keys, totals, position, first = merge_pieces(pieces, summed)
    expected = np.unique(joined)
    assert np.array_equal(keys, expected)
    assert np.array_equal(totals, [summed[joined == k].sum() for k in expected])
    assert np.array_equal(keys[position], joined)  # every input row lands on its key
    assert np.array_equal(joined[first], keys)
