"""The NumPy search of the n-gram trie (``lmtool.ngram.trie``) gives the kernels' numbers exactly:
scores against the hash scorer, next-token distributions against ``kernels.ngram_query``, and
``FewSentences`` the sentences of the sampling kernel."""

import numpy as np
import pytest

from lmtool.kernels import ngram_query
from lmtool.ngram import trie
from lmtool.ngram.sampler import FewSentences, NgramSampler
from lmtool.vocab import BOS, EOS

from ..conftest import TINY_TRAIN
from ..helpers import model_from_text

WORDS = [f"w{i}" for i in range(40)] + ["é", "ünï"]


def random_text(rng, lines, words=WORDS, longest=14):
    p = 1.0 / np.arange(1, len(words) + 1)
    return "".join(" ".join(rng.choice(words, rng.integers(0, longest), p=p / p.sum())) + "\n" for _ in range(lines))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Models of orders 1 to 5 (one stupid backoff) over a random Zipf text, and the tiny corpus's 4-gram."""
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("trie")
    text = random_text(rng, 1500)
    built = [model_from_text(folder, text, order=n, name=f"o{n}.txt") for n in (1, 2, 3, 5)]
    built.append(model_from_text(folder, text, order=4, smoothing="stupid-backoff", name="sb.txt"))
    built.append(model_from_text(folder, TINY_TRAIN.read_text(encoding="utf-8"), order=4, name="tiny.txt"))
    return built


def random_batch(rng, model, sentences=300):
    """Ids of random sentences, some empty, some with words the model never saw (<unk>)."""
    lengths = rng.integers(0, 16, sentences).astype(np.int32)
    lengths[::17] = 0
    ids = rng.integers(0, len(model.vocab), int(lengths.sum())).astype(np.int32)
    ids[ids == BOS] = 0
    ids[ids == EOS] = 0
    return ids, lengths


def test_numpy_scores_are_the_hash_kernels_bit_for_bit(models):
    rng = np.random.default_rng(0)
    for model in models:
        for sentences in (1, 3, 300):
            ids, lengths = random_batch(rng, model, sentences)
            numpy_path = model.score_ids_numpy(ids, lengths)
            compiled = model.score_ids_compiled(ids, lengths)
            assert numpy_path.sentence.tobytes() == compiled.sentence.tobytes()
            assert numpy_path.token.tobytes() == compiled.token.tobytes()
            assert numpy_path.ngram_length.tobytes() == compiled.ngram_length.tobytes()


def test_text_the_model_was_built_from_matches_long_ngrams(models):
    """Training text reaches the highest order, so every branch of the search is taken."""
    rng = np.random.default_rng(1)
    model = models[3]
    ids, lengths = model.encode(random_text(rng, 200, longest=20))
    numpy_path = model.score_ids_numpy(ids, lengths)
    assert numpy_path.ngram_length.max() == model.order
    assert numpy_path.token.tobytes() == model.score_ids_compiled(ids, lengths).token.tobytes()


def test_find_children_against_a_scan():
    rng = np.random.default_rng(2)
    child_start = np.array([0, 0, 3, 3, 9, 10], np.int64)  # node 0 no children, node 2 none, ...
    word = np.array([1, 4, 7, 0, 2, 3, 5, 8, 9, 6], np.uint16)
    for n in (1, 5, 40):  # below and above trie.FEW: the scalar and the vectorised search
        parents = rng.integers(0, 5, n)
        words = rng.integers(0, 11, n)
        expected = [next((g for g in range(child_start[p], child_start[p + 1]) if word[g] == w), -1)
                    for p, w in zip(parents, words)]
        assert trie.find_children(parents, words, child_start, word).tolist() == expected


def test_distributions_are_the_query_kernels(models):
    rng = np.random.default_rng(4)
    for model in models:
        V = len(model.vocab)
        for _ in range(20):
            history = rng.integers(0, V, rng.integers(0, 6)).astype(np.int32)
            a = trie.context_nodes(history, model.order, model.child_start, model.word)
            b = ngram_query.context_nodes(history, model.order, model.child_start, model.word)
            assert a.tolist() == b.tolist()
            out_a, out_b = np.empty(V), np.empty(V)
            trie.next_logprobs(a, V, model.child_start, model.word, model.prob, model.backoff, BOS, out_a)
            ngram_query.next_logprobs(b, V, model.child_start, model.word, model.prob, model.backoff, BOS, out_b)
            assert out_a.tobytes() == out_b.tobytes()


@pytest.mark.parametrize("seed", [0, 1, 2 ** 64 - 1])
def test_few_sentences_are_the_sampling_kernels(models, seed):
    for model in models:
        if not model.normalized:
            continue
        kernel = NgramSampler(model, max_len=30, block=6)
        ids, lengths = kernel.ids(seed, 2)  # sentences 12..17 of the stream
        few_ids, few_lengths = FewSentences(model, max_len=30).ids(seed, 12, 6)
        assert few_lengths.tolist() == lengths.tolist()
        assert few_ids.tolist() == ids.tolist()


def test_few_sentences_sum_masses_as_the_kernel(models):
    """Cumulative masses equal, bit for bit: ``10.0 ** x`` in Python and in the kernel agree."""
    model = models[3]
    kernel = NgramSampler(model, max_len=5, block=1)
    few = FewSentences(model)
    _, unigrams = few._group(None)
    assert np.array(unigrams).tobytes() == kernel.cum[:len(model.vocab)].tobytes()
    for node in range(0, len(model.child_start) - 1, 3):
        lo, cum = few._group(node)
        assert np.array(cum, np.float64).tobytes() == kernel.cum[lo:lo + len(cum)].tobytes()


def test_child_starts_of_a_few_nodes_are_the_arrays(tmp_path):
    """Node by node, from the stored counts, including counts of 255 and more (kept aside)."""
    text = "".join(f"u{i} v{i % 7} w\n" for i in range(700))  # <s> and w have hundreds of children
    model = model_from_text(tmp_path, text, order=3)
    small, big_at, big = model._stored_children
    assert len(big_at) >= 1
    few = trie.ChildStarts(model.sizes[0], small, big_at, big)
    nodes = np.concatenate([np.arange(len(model.child_start)), big_at, big_at + 1])
    assert few[nodes].tolist() == model.child_start[nodes].tolist()
    assert few[int(big_at[0]) + 1] == model.child_start[int(big_at[0]) + 1]
