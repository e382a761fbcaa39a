"""The static merge of n-gram models (``mix --static``): equal, n-gram by n-gram, to the definition in
``tests/naive.py``; a distribution; readable by KenLM as ARPA; close to the dynamic mixture."""

import numpy as np
import pytest

from lmtool.errors import LmtoolError
from lmtool.mixture import MixtureModel
from lmtool.ngram.arpa import write_arpa
from lmtool.ngram.merge import merge_ngram_models

from .. import naive
from ..conftest import TINY_TEST, TINY_TRAIN
from ..helpers import model_from_text

TEXT = TINY_TRAIN.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """A 3-gram (modified Kneser-Ney, every word) and a Witten-Bell 2-gram without the words seen once."""
    folder = tmp_path_factory.mktemp("merge")
    return (model_from_text(folder, TEXT, order=3, name="a.txt"),
            model_from_text(folder, TEXT, order=2, smoothing="witten-bell", min_count=2, name="b.txt"))


def as_dict(model):
    """{ngram of tokens: (log10 p, log10 backoff)}, read straight from the model's arrays."""
    out = {}
    for n in range(1, model.order + 1):
        rows = model.ngrams(n)
        prob = model.prob[model.level(n)].astype(np.float64)
        backoff = model.backoff[model.level(n)].astype(np.float64) if n < model.order else np.zeros(len(rows))
        for row, p, b in zip(rows.tolist(), prob.tolist(), backoff.tolist()):
            out[tuple(model.vocab.tokens[w] for w in row)] = (p, b)
    return out


def test_merge_equals_the_definition_ngram_by_ngram(members):
    weights = [0.65, 0.35]
    merged = merge_ngram_models(MixtureModel(members, weights))
    reference = naive.static_mixture([(as_dict(m), m.order, set(m.vocab.tokens)) for m in members], weights)
    got = as_dict(merged)
    assert set(got) == set(reference)
    assert len(merged.vocab) > len(members[1].vocab)  # the second member lacks words: shares were taken
    gram_p = np.array([[got[g][0], reference[g][0]] for g in reference])
    gram_b = np.array([[got[g][1], reference[g][1]] for g in reference if len(g) < merged.order])
    assert np.abs(gram_p[:, 0] - gram_p[:, 1]).max() < 1e-6
    assert np.abs(gram_b[:, 0] - gram_b[:, 1]).max() < 1e-6
    assert (gram_b[:, 1] != 0).sum() > 1000  # the backoffs were recomputed, not left at 1


def test_merged_model_is_a_distribution_and_close_to_the_dynamic_mixture(members):
    mixture = MixtureModel(members, [0.7, 0.3])
    merged = merge_ngram_models(mixture)
    rng = np.random.default_rng(5)
    for _ in range(20):
        prefix = rng.integers(3, len(merged.vocab), size=int(rng.integers(0, 4))).astype(np.int32)
        assert merged.distribution(merged.begin([prefix]))[0].sum() == pytest.approx(1.0, abs=1e-5)
    text = TINY_TEST.read_text(encoding="utf-8")
    assert merged.perplexity(text) == pytest.approx(mixture.perplexity(text), rel=0.01)
    # an n-gram the merge keeps scores exactly as the mixture does
    ids, lengths = merged.encode("and god said")
    exact = mixture.score_ids(ids, lengths).token
    scores = merged.score_ids(ids, lengths)
    kept = scores.ngram_length == np.minimum(np.arange(1, len(exact) + 1) + 1, merged.order)
    assert kept.sum() >= 3
    np.testing.assert_allclose(scores.token[kept], exact[kept], atol=1e-5)


def test_merged_arpa_loads_in_kenlm_with_the_same_scores(members, tmp_path):
    kenlm = pytest.importorskip("kenlm")
    merged = merge_ngram_models(MixtureModel(members, [0.5, 0.5]))
    write_arpa(merged, tmp_path / "merged.arpa")
    reference = kenlm.Model(str(tmp_path / "merged.arpa"))
    lines = TINY_TEST.read_text(encoding="utf-8").splitlines()[:40]
    ours = [merged.score(line) for line in lines]
    theirs = [reference.score(line, bos=True, eos=True) for line in lines]
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_only_linear_mixtures_of_ngram_models_merge(members, tmp_path):
    with pytest.raises(LmtoolError, match="log-linear"):
        merge_ngram_models(MixtureModel(members, [0.5, 0.5], "loglinear"))
    nested = MixtureModel([MixtureModel(members, [0.5, 0.5]), members[0]], [0.5, 0.5])
    with pytest.raises(LmtoolError, match="n-gram members only"):
        merge_ngram_models(nested)
