"""Exchange clustering of words into softmax classes: the objective, its optimum, and what it finds."""

import numpy as np
import pytest

from lmtool.neural.classes import make_classes
from lmtool.neural.classes import exchange_classes

from .. import naive


def zipf_corpus(V=30, n=3000, seed=5):
    """A first-order Markov chain with Zipfian rows: bigram structure for the clustering to find."""
    rng = np.random.default_rng(seed)
    rows = rng.dirichlet(np.full(V, 0.3), size=V)
    seq = np.empty(n + 1, np.int64)
    seq[0] = 0
    for i in range(n):
        seq[i + 1] = rng.choice(V, p=rows[seq[i]])
    return seq[:-1], seq[1:]


def class_of_word(classes):
    return classes.word_class[classes.rank]


def test_each_pass_raises_the_class_bigram_likelihood_computed_naively():
    x, y = zipf_corpus()
    V = 30
    logged = []
    cl = exchange_classes(x, y, V, 5, penalty=0, passes=50, log=lambda p, moved, ll: logged.append((moved, ll)))
    initial = make_classes(np.bincount(y, minlength=V) + 1, 5)
    before = naive.class_bigram_loglik(x, y, class_of_word(initial))
    after = naive.class_bigram_loglik(x, y, class_of_word(cl))
    assert after == pytest.approx(logged[-1][1], rel=1e-9)
    lls = [before] + [ll for _, ll in logged]
    assert all(b >= a - 1e-6 for a, b in zip(lls, lls[1:]))
    assert after > before + 10  # nats: the frequency bins were far from the optimum
    assert logged[-1][0] == 0  # converged within 50 passes


@pytest.mark.parametrize("penalty", [0.0, 0.05])
def test_no_single_move_improves_the_converged_classes(penalty):
    x, y = zipf_corpus(V=20, n=1500, seed=9)
    V = 20
    counts = np.bincount(y, minlength=V)

    def objective(word_class):  # log-likelihood minus the penalty on the logits within classes
        sizes = np.bincount(word_class, minlength=V)
        return naive.class_bigram_loglik(x, y, word_class) - penalty * np.sum(counts * sizes[word_class])

    cl = exchange_classes(x, y, V, 4, penalty=penalty, passes=100, tolerance=0)
    word_class = class_of_word(cl).copy()
    best = objective(word_class)
    for w in np.unique(y):
        for c in range(cl.n_classes):
            moved = word_class.copy()
            moved[w] = c
            assert objective(moved) <= best + 1e-7, (w, c)


def test_the_penalty_trades_likelihood_for_fewer_logits_per_token():
    x, y = zipf_corpus(V=60, n=6000, seed=2)
    results = []
    for penalty in (0.0, 0.02, 0.2):
        cl = exchange_classes(x, y, 60, 6, penalty=penalty, passes=100, tolerance=0)
        sizes = np.diff(cl.start)
        logits = cl.n_classes + sizes[cl.word_class[cl.rank[y]]].mean()
        results.append((naive.class_bigram_loglik(x, y, class_of_word(cl)), logits))
    (ll0, cost0), (ll1, cost1), (ll2, cost2) = results
    assert cost0 > cost1 > cost2 and ll0 > ll1 > ll2


def test_words_that_follow_different_contexts_go_to_different_classes():
    # p is always followed by a word of group A, q by one of group B; frequencies interleave A and B,
    # so the frequency bins mix the groups and the clustering must separate them.
    rng = np.random.default_rng(0)
    group_a, group_b = [2, 4, 6, 8], [3, 5, 7, 9]
    weights = np.array([8, 4, 2, 1]) / 15
    seq = []
    for _ in range(4000):
        if rng.random() < 0.5:
            seq += [0, group_a[rng.choice(4, p=weights)]]
        else:
            seq += [1, group_b[rng.choice(4, p=weights)]]
    seq = np.array(seq)
    V = 10
    frequency = make_classes(np.bincount(seq[1:], minlength=V) + 1, 3)
    assert len(set(class_of_word(frequency)[group_a]) & set(class_of_word(frequency)[group_b])) > 0
    cl = exchange_classes(seq[:-1], seq[1:], V, 3)
    of = class_of_word(cl)
    assert len(set(of[group_a])) == 1 and len(set(of[group_b])) == 1 and of[2] != of[3]
    assert of[0] == of[1] and of[0] not in (of[2], of[3])  # p and q follow the same contexts


def test_classes_are_contiguous_position_ranges_in_falling_frequency():
    x, y = zipf_corpus()
    counts = np.bincount(y, minlength=40)
    cl = exchange_classes(x, y, 40, 6)  # ids 30..39 never occur
    np.testing.assert_array_equal(np.sort(cl.order), np.arange(40))
    assert cl.n_classes <= 6
    for c in range(cl.n_classes):
        members = cl.order[cl.start[c]:cl.start[c + 1]]
        assert np.all(np.diff(counts[members]) <= 0)


def test_bad_pairs_are_refused():
    with pytest.raises(ValueError, match="one length"):
        exchange_classes(np.zeros(3, int), np.zeros(4, int), 5)
    with pytest.raises(ValueError, match="0..4"):
        exchange_classes(np.zeros(3, int), np.array([1, 2, 5]), 5)
