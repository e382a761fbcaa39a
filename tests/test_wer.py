"""Word errors and the search for the LM weight and word penalty (``lmtool.wer``), against slow
references: the edit distance of ``tests/naive.py`` and a dense sample of each line of weights."""

import numpy as np

from lmtool.kernels.nbest import word_errors
from lmtool.wer import Gathered, _line_search, picked_errors, tune_weights, word_error_rate

from . import naive


def test_word_errors_match_the_definition():
    rng = np.random.default_rng(0)
    hyps = [rng.integers(0, 5, size=int(rng.integers(0, 9))).astype(np.int32) for _ in range(300)]
    refs = [rng.integers(0, 5, size=int(rng.integers(0, 9))).astype(np.int32) for _ in range(30)]
    which = rng.integers(0, 30, size=300)
    out = np.empty(300, np.int32)
    word_errors(np.concatenate(hyps), np.array([len(h) for h in hyps], np.int32), np.concatenate(refs),
                np.array([len(r) for r in refs], np.int32), which.astype(np.int64), out)
    assert out.tolist() == [naive.levenshtein(h.tolist(), refs[w].tolist()) for h, w in zip(hyps, which)]


def random_gathered(rng, lists=40):
    sizes = rng.integers(1, 8, size=lists)
    H = int(sizes.sum())
    return Gathered(base=rng.normal(size=H), lm=rng.normal(size=H) * 3, words=rng.integers(3, 9, size=H) * 1.0,
                    errors=rng.integers(0, 6, size=H), list_start=np.concatenate([[0], np.cumsum(sizes)]),
                    reference_words=rng.integers(5, 9, size=lists))


def test_the_line_search_finds_the_fewest_errors_on_the_line():
    rng = np.random.default_rng(1)
    for _ in range(20):
        g = random_gathered(rng)
        point = np.array([rng.uniform(0, 2), rng.normal()])
        angle = rng.uniform(0, np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])
        x, found = _line_search(g, point, direction)
        xs = np.linspace(-30, 30, 6001)
        xs = xs[point[0] + xs * direction[0] >= 0]
        sampled = [picked_errors(g, g.base + (point[0] + t * direction[0]) * g.lm
                                 + (point[1] + t * direction[1]) * g.words) for t in xs]
        assert found <= min(sampled)
        at = point + x * direction
        assert picked_errors(g, g.base + at[0] * g.lm + at[1] * g.words) == found


def test_tune_weights_is_deterministic_and_never_worse():
    g = random_gathered(np.random.default_rng(2), lists=200)
    first = tune_weights(g, 1.0, 0.0)
    assert first == tune_weights(g, 1.0, 0.0)
    assert first[2] <= word_error_rate(g, 1.0, 0.0) and first[0] >= 0


def test_error_stats_count_each_hypothesis_against_its_lists_reference():
    from lmtool.nbest import NBestList, ScoredList
    from lmtool.wer import ErrorStats, oracle_error_rate

    lists = [NBestList("a", "tsv", [0.0, -1.0, 0.0], ["the lord is", "the lord is my shepherd", "lord the is"]),
             NBestList("b", "tsv", [], []),
             NBestList("c", "tsv", [-2.0, 0.0], ["in the beginning god", "in beginning"])]
    scored = [ScoredList(x, np.array([-1.0, -3.0, -1.0][:len(x.scores)]), np.array([len(h.split())
                                                                                     for h in x.hypotheses]))
              for x in lists]
    refs = ["the lord is my shepherd", "and god said", "in the beginning god"]
    stats = ErrorStats()
    stats.add(scored[:2], refs[:2])
    stats.add(scored[2:], refs[2:])
    g = stats.finish()
    assert g.errors.tolist() == [naive.levenshtein(h.split(), r.split()) for x, r in zip(lists, refs)
                                 for h in x.hypotheses]
    assert g.list_start.tolist() == [0, 3, 3, 5] and g.reference_words.tolist() == [5, 3, 4]
    # scores alone: list a's first of its two equal best ("the lord is", 2 errors), the empty list b
    # all 3 words deleted, list c "in beginning" (2 errors)
    assert word_error_rate(g, 0.0, 0.0) == (2 + 3 + 2) / 12
    assert oracle_error_rate(g) == (0 + 3 + 0) / 12
