"""Sampling: determinism under a seed, temperature and top-k shaping."""

import numpy as np
import pytest

from lmtool.errors import LmtoolError
from lmtool.sampling import generate, sentences, shape_distribution
from lmtool.vocab import BOS, EOS, UNK
from tests.conftest import TINY_TRAIN
from tests.helpers import model_from_text


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    with open(TINY_TRAIN, encoding="utf-8") as f:
        text = f.read()
    return model_from_text(tmp_path_factory.mktemp("g"), text, 3)


def test_same_seed_same_text(model):
    prefix = model.vocab.encode(["and", "god"])
    a = generate(model, prefix, n=4, seed=11, temperature=0.9)
    b = generate(model, prefix, n=4, seed=11, temperature=0.9)
    c = generate(model, prefix, n=4, seed=12, temperature=0.9)
    assert all((x == y).all() for x, y in zip(a, b))
    assert any(len(x) != len(z) or (x != z).any() for x, z in zip(a, c))


def test_max_tokens_and_no_specials(model):
    out = generate(model, [], n=20, seed=3, max_tokens=5)
    assert all(len(row) <= 5 for row in out)
    assert all(UNK not in row and BOS not in row for row in out)


def test_top_one_is_greedy(model):
    a = generate(model, model.vocab.encode(["and"]), n=3, seed=1, top_k=1)
    b = generate(model, model.vocab.encode(["and"]), n=3, seed=99, top_k=1)
    assert all((x == a[0]).all() for x in a + b)
    first = model.next_token_probs("and")
    first[[BOS, UNK]] = 0
    assert a[0][0] == first.argmax()


def test_shaping():
    p = np.array([[0.0, 0.0, 0.1, 0.2, 0.3, 0.4]])
    q = shape_distribution(p, temperature=0.5, top_k=2)
    np.testing.assert_allclose(q, [[0, 0, 0, 0, 0.09 / 0.25, 0.16 / 0.25]])
    np.testing.assert_allclose(shape_distribution(p, temperature=1.0).sum(), 1.0)


@pytest.mark.parametrize("kw", [{"temperature": 0}, {"temperature": -1}, {"top_k": -2}, {"max_tokens": 0}, {"n": 0}])
def test_absurd_options(model, kw):
    with pytest.raises(LmtoolError):
        generate(model, [], **kw)


def test_sentences_come_a_batch_at_a_time(model):
    """The first sentence is out before the rest are sampled (``lmtool generate -n 1000000 | head``),
    and a batch's sentences are those ``generate`` gives for the same seed."""
    begun = []

    class Counting:
        def __getattr__(self, name):
            return getattr(model, name)

        def begin(self, prefixes):
            begun.append(len(prefixes))
            return model.begin(prefixes)

    stream = sentences(Counting(), [], n=1000, seed=4, temperature=0.9, batch=64)
    first = [next(stream) for _ in range(64)]
    assert begun == [64]
    next(stream)
    assert begun == [64, 64]
    assert all((a == b).all() for a, b in zip(first, generate(model, [], n=64, seed=4, temperature=0.9)))


def test_plain_ngram_samples_come_from_the_kernel_with_the_same_distribution(model):
    """No prefix, temperature 1, no top-k: ``ngram.sampler``'s kernel draws them; their first words
    follow the model's distribution after ``<s>`` (``<unk>`` left out), as the step-by-step sampler's do."""
    n = 40000
    fast = generate(model, [], n=n, seed=5, max_tokens=1)
    assert all(len(s) <= 1 for s in fast)
    exact = shape_distribution(model.distribution(model.begin([np.zeros(0, np.int32)])))[0]
    seen = np.bincount([s[0] if len(s) else EOS for s in fast], minlength=len(exact)) / n  # EOS: an empty one
    assert seen[UNK] == 0 and seen[BOS] == 0
    top = np.argsort(-exact)[:30]
    sigma = np.sqrt(exact[top] * (1 - exact[top]) / n)
    assert (np.abs(seen[top] - exact[top]) < 5 * sigma).all(), (seen[top], exact[top])


def test_absurd_sentence_count(model):
    with pytest.raises(LmtoolError, match="absurdly large"):
        generate(model, [], n=10 ** 20)
