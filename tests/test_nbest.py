"""N-best rescoring (``lmtool rescore``): the three formats read and written back, --best picking what
``score`` ranks first, --tune lowering WER, streaming, and bad input named by its line."""

import itertools
import os

import numpy as np
import pytest

import lmtool
from lmtool import nbest

from . import naive
from .conftest import TINY_TEST, run_lmtool

SENTENCES = TINY_TEST.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def model(tiny_model):
    return lmtool.load(tiny_model.lm)


def synthetic_lists(sentences, rng, size=6, drop_add=False, noise=0.0):
    """(TSV text, references): each sentence with corruptions (swaps and replacements; with
    ``drop_add`` also dropped and added words), shuffled; scores 0, or -edits + noise * N(0, 1)."""
    words = " ".join(sentences).split()
    lines = []
    for number, sentence in enumerate(sentences, 1):
        hyps = [(sentence.split(), 0)]
        for _ in range(size - 1):
            hyp, edits = sentence.split(), int(rng.integers(1, 4))
            for _ in range(edits):
                kind = rng.integers(4 if drop_add else 2)
                if kind == 0 and len(hyp) > 1:
                    i = int(rng.integers(len(hyp) - 1))
                    hyp[i], hyp[i + 1] = hyp[i + 1], hyp[i]
                elif kind == 2 and len(hyp) > 1:
                    del hyp[int(rng.integers(len(hyp)))]
                elif kind == 3:
                    hyp.insert(int(rng.integers(len(hyp) + 1)), words[int(rng.integers(len(words)))])
                elif hyp:
                    hyp[int(rng.integers(len(hyp)))] = words[int(rng.integers(len(words)))]
            hyps.append((hyp, edits))
        for k in rng.permutation(len(hyps)):
            score = -hyps[k][1] + noise * rng.standard_normal() if noise else 0.0
            lines.append(f"{number}\t{score:.4f}\t{' '.join(hyps[k][0])}\n")
    return "".join(lines), sentences


def test_the_three_formats_are_read_with_their_ids_and_scores(tmp_path):
    (tmp_path / "a.nbest").write_text("NBestList1.0\n(-1000) and god said\n(-1200) and god sad\nNBestList1.0\n"
                                      "(0) let there be light\n", encoding="utf-8")
    (tmp_path / "b.nbest").write_text("-12.5 -3.25 3 and god said\n-13 -2 2 and god\n", encoding="utf-8")
    (tmp_path / "c.tsv").write_text("u1\t-1.5\tand god said\nu1\t-2\tand god\nu2\t0\tlet there\nu1\t3\tagain\n",
                                    encoding="utf-8")
    lists = list(nbest.read_lists([tmp_path / "a.nbest", tmp_path / "b.nbest", tmp_path / "c.tsv"]))
    assert [(x.id, x.format, len(x.hypotheses)) for x in lists] == [
        (f"{tmp_path}/a.nbest:1", "nbest1", 2), (f"{tmp_path}/a.nbest:2", "nbest1", 1),
        (f"{tmp_path}/b.nbest", "srilm", 2), ("u1", "tsv", 2), ("u2", "tsv", 1), ("u1", "tsv", 1)]
    assert lists[0].scores == pytest.approx([-1000 * nbest.BYTELOG, -1200 * nbest.BYTELOG])
    assert lists[0].hypotheses == ["and god said", "and god sad"]
    assert lists[2].scores == [-12.5, -13.0] and lists[2].hypotheses == ["and god said", "and god"]
    assert lists[3].scores == [-1.5, -2.0] and lists[5].hypotheses == ["again"]


def test_rescored_lists_are_written_back_in_their_format(model, tiny_model, tmp_path):
    (tmp_path / "a.nbest").write_text("NBestList1.0\n(-1000) and god said\n(-1200) and god sad\n", encoding="utf-8")
    (tmp_path / "b.nbest").write_text("-12.5 -3.25 9 and god said\n-13 -2 2 and god\n", encoding="utf-8")
    (tmp_path / "c.tsv").write_text("u1\t-1.5\tand god said\nu1\t-2\tand god\n", encoding="utf-8")
    lm = {h: model.score(h) for h in ("and god said", "and god sad", "and god")}
    for name in ("a.nbest", "b.nbest", "c.tsv"):
        done = run_lmtool("rescore", tiny_model.lm, tmp_path / name, "--lm-weight", 2, "--word-penalty", -0.5)
        assert done.returncode == 0, done.stderr.decode()
        (tmp_path / f"out-{name}").write_bytes(done.stdout)
        before, = [x for x in nbest.read_lists([tmp_path / name])]
        after, = [x for x in nbest.read_lists([tmp_path / f"out-{name}"])]
        assert after.hypotheses == before.hypotheses and after.format == before.format
        words = np.array([len(h.split()) for h in before.hypotheses])
        expected = np.array(before.scores) + 2 * np.array([lm[h] for h in before.hypotheses]) - 0.5 * words
        if name == "a.nbest":
            assert after.scores == pytest.approx(np.round(expected / nbest.BYTELOG) * nbest.BYTELOG)
        elif name == "b.nbest":  # the acoustic score kept, the LM score and word count filled in
            assert after.scores == before.scores
            lines = done.stdout.decode().splitlines()
            assert [float(line.split()[1]) for line in lines] == pytest.approx([lm[h] for h in before.hypotheses],
                                                                               abs=1e-6)
            assert [int(line.split()[2]) for line in lines] == list(words)
        else:
            assert after.scores == pytest.approx(expected, abs=1e-6)


def test_best_picks_what_score_ranks_first(model, tiny_model, tmp_path):
    text, _ = synthetic_lists(SENTENCES[:60], np.random.default_rng(3))
    (tmp_path / "lists.tsv").write_text(text, encoding="utf-8")
    done = run_lmtool("rescore", tiny_model.lm, tmp_path / "lists.tsv", "--best")
    assert done.returncode == 0, done.stderr.decode()
    best = [line.split("\t") for line in done.stdout.decode().splitlines()]
    assert [b[0] for b in best] == [str(i) for i in range(1, 61)]
    rows = [line.split("\t") for line in text.splitlines()]
    (tmp_path / "hyps.txt").write_text("".join(r[2] + "\n" for r in rows), encoding="utf-8")
    scored = run_lmtool("score", tiny_model.lm, tmp_path / "hyps.txt").stdout.decode().splitlines()
    totals = [float(line.split("\t")[0]) for line in scored]
    for key, group in itertools.groupby(zip(rows, totals), key=lambda x: x[0][0]):
        group = list(group)
        top = max(range(len(group)), key=lambda k: (group[k][1], -k))
        assert best[int(key) - 1][1] == group[top][0][2]
    assert sum(b[1] == s for b, s in zip(best, SENTENCES[:60])) > 20  # the reference wins often


def test_tune_lowers_the_word_error_rate(model, tiny_model, tmp_path):
    text, refs = synthetic_lists(SENTENCES, np.random.default_rng(4), size=8, drop_add=True, noise=1.5)
    (tmp_path / "lists.tsv").write_text(text, encoding="utf-8")
    (tmp_path / "refs.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    done = run_lmtool("rescore", tiny_model.lm, tmp_path / "lists.tsv", "--tune", tmp_path / "refs.txt")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0] == f"lists {len(refs)}, hypotheses {8 * len(refs)}, reference words {len(' '.join(refs).split())}"
    before = float(lines[2].rsplit(" ", 1)[1].rstrip("%"))
    after = float(lines[3].rsplit(" ", 1)[1].rstrip("%"))
    assert after < before
    lm_weight, word_penalty = float(lines[3].split()[3]), float(lines[3].split()[5].rstrip(":"))
    best = run_lmtool("rescore", tiny_model.lm, tmp_path / "lists.tsv", "--best", "--lm-weight", lm_weight,
                      "--word-penalty", word_penalty).stdout.decode().splitlines()
    errors = sum(naive.levenshtein(b.split("\t")[1].split(), r.split()) for b, r in zip(best, refs))
    assert 100 * errors / len(" ".join(refs).split()) == pytest.approx(after, abs=0.01)


def test_lists_stream_through(model):
    """An endless source of lists still gives its first results: nothing waits for the end."""
    def endless():
        for k in itertools.count():
            yield nbest.NBestList(str(k), "tsv", [0.0, 0.0], ["and god said", "said god and"], [None, None])

    first = list(itertools.islice(nbest.scored_lists(model, endless(), batch=64), 100))
    assert [s.nbest.id for s in first] == [str(k) for k in range(100)]
    assert all(s.best(1.0, 0.0) == 0 for s in first)


BAD = {
    "unknown format": ("hello world\n", "line 1"),
    "NBestList2.0": ("NBestList2.0\n(1) a ( st: 0 et: 1 g: 0 a: 0 )\n", "NBestList2.0"),
    "broken nbest1 line": ("NBestList1.0\n(-10) a b\n-10 a b\n", "line 3"),
    "broken srilm line": ("-1 -2 2 a b\n-1 x 2 a b\n", "line 2"),
    "broken tsv line": ("1\t-1\ta b\n1\tx\ta b\n", "line 2"),
    "empty": ("", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_lists_are_one_line_naming_the_file_and_line(model, tiny_model, tmp_path, case):
    text, named = BAD[case]
    (tmp_path / "lists").write_text(text, encoding="utf-8")
    done = run_lmtool("rescore", tiny_model.lm, tmp_path / "lists", "-o", tmp_path / "out", cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 1 and err.count("\n") == 1 and err.startswith(f"lmtool: error: {tmp_path}/lists: ")
    assert named in err
    assert sorted(os.listdir(tmp_path)) == ["lists"]


def test_references_must_match_the_lists(model, tiny_model, tmp_path):
    (tmp_path / "lists.tsv").write_text("1\t0\ta b\n2\t0\tc d\n", encoding="utf-8")
    for refs in ("a b\n", "a b\nc d\ne f\n"):
        (tmp_path / "refs").write_text(refs, encoding="utf-8")
        done = run_lmtool("rescore", tiny_model.lm, tmp_path / "lists.tsv", "--tune", tmp_path / "refs")
        err = done.stderr.decode()
        assert done.returncode == 1 and err.count("\n") == 1 and "refs" in err and done.stdout == b""
