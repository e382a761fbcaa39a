"""Small inputs need no compilation (``lmtool.compiled``): loading a model and scoring, perplexity or
generating for a few lines leaves Numba unimported, in Python and from the shell, and the paths
taken give what the kernels give (the Python tokeniser here; the trie and forward pass in
``test_trie.py`` and ``test_forward.py``)."""

import importlib
import subprocess
import sys

import numpy as np
import pytest

from lmtool.vocab import SPECIALS, Vocabulary, token_table

from .conftest import ROOT, TINY_TEST, run_lmtool

PIECES = ["a", "bb", "é", "ünï", "<s>", "</s>", "<unk>", "x\x0by", "zz", "\u00a0", "日本"]
SEPARATORS = [" ", "  ", "\t", " \r ", "\n", "\n\n", "\r", "\r\n", " \n"]


@pytest.mark.parametrize("level", ["word", "char"])
def test_python_tokeniser_gives_the_kernels_ids(level):
    rng = np.random.default_rng(0)
    known = ["a", "bb", "é", "日本", "x\x0by"] if level == "word" else list("abé日 \t\x0b")
    vocab = Vocabulary(list(SPECIALS) + known, level)
    kernel = token_table(vocab.tokens, level)
    for _ in range(400):
        text = "".join(str(rng.choice(PIECES)) + str(rng.choice(SEPARATORS)) for _ in range(rng.integers(0, 30)))
        if rng.random() < 0.5:
            text = text.rstrip("\n")
        data = text.encode("utf-8")
        ids, lengths = vocab.encode_python(data)
        expected_ids, expected_lengths = kernel.encode(data, grow=False)
        assert ids.tolist() == expected_ids.tolist(), repr(text)
        assert lengths.tolist() == expected_lengths.tolist(), repr(text)


NO_NUMBA = """
import sys, lmtool
m = lmtool.load(sys.argv[1])
m.score("the quick brown fox")
m.perplexity("a b c\\nd e\\n")
m.next_token_probs("the")
print("numba" in sys.modules)
"""


def test_python_users_scoring_a_sentence_do_not_load_numba(tiny_model, tmp_path):
    """n-gram models plain and quantised, every recurrent cell, the fixed-window model."""
    import lmtool
    from lmtool.ngram.quantize import quantize

    from .neural.test_forward import random_model, random_window_model

    paths = [tiny_model.lm, tmp_path / "q.lm"]
    quantize(lmtool.load(tiny_model.lm), 8).save(paths[1])
    for cell in ("lstm", "gru", "lstm-peephole", "lstm-coupled"):
        paths.append(tmp_path / f"{cell}.lm")
        random_model(0, cell=cell).save(paths[-1])
    paths.append(tmp_path / "window.lm")
    random_window_model(0, direct=True).save(paths[-1])
    for path in paths:
        done = subprocess.run([sys.executable, "-c", NO_NUMBA, str(path)], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False", path


SHELL = """
import sys
from lmtool.cli import main
status = main(sys.argv[1:])
print("numba" in sys.modules, file=sys.stderr)
sys.exit(status)
"""


@pytest.mark.parametrize("command", [["score"], ["score", "--per-token"], ["perplexity"], ["generate", "-n", "1"],
                                     ["generate", "-n", "2", "--prefix", "the", "--top-k", "3"]])
def test_commands_on_a_few_lines_do_not_load_numba(tiny_model, command):
    args = [*command[:1], str(tiny_model.lm), *command[1:]]
    if command[0] != "generate":
        args.insert(2, "-")
    done = subprocess.run([sys.executable, "-c", SHELL, *args], input=b"the dog barks\nthe cat\n",
                          capture_output=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().strip() == "False"


def test_a_few_sentences_are_the_kernels_sentences(tiny_model):
    """``generate -n 3`` draws in Python, ``-n 40`` through the kernel: the first three are the same."""
    few = run_lmtool("generate", tiny_model.lm, "-n", 3, "--seed", 5)
    many = run_lmtool("generate", tiny_model.lm, "-n", 40, "--seed", 5)
    assert few.returncode == many.returncode == 0
    assert many.stdout.splitlines()[:3] == few.stdout.splitlines()


def test_scores_are_the_same_through_either_path(tiny_model, monkeypatch):
    """The same file scored with the NumPy paths and with the kernels: the same bytes."""
    import lmtool
    from lmtool import compiled
    from lmtool.scoring import format_scores, score_chunks

    def scored():
        model = lmtool.load(tiny_model.lm)
        return "".join(score_chunks(model, [TINY_TEST], chunk_bytes=300,
                                    then=lambda s: format_scores(model, s, per_token=True)))

    monkeypatch.setattr(compiled, "NGRAM_NUMPY_TOKENS", 10 ** 9)
    monkeypatch.setattr(compiled, "TOKENISER_PYTHON_BYTES", 10 ** 9)
    numpy_paths = scored()
    monkeypatch.setattr(compiled, "NGRAM_NUMPY_TOKENS", 0)
    monkeypatch.setattr(compiled, "TOKENISER_PYTHON_BYTES", 0)
    importlib.import_module("lmtool.kernels.tokenize")  # Numba loaded: the tokeniser takes its kernel at any size
    assert scored() == numpy_paths


def test_a_large_input_loads_the_kernels_at_once(tiny_model):
    import lmtool

    model = lmtool.load(tiny_model.lm)
    model.prepare(10)
    assert model._hashed is None
    model.prepare(10 ** 8)
    assert model._hashed is not None
    assert not model.numpy_pays(np.zeros(4, np.int32), np.array([4]))  # once built, the table serves every batch


def test_many_small_batches_move_to_the_kernels(tiny_model, monkeypatch):
    """A loop scoring sentence by sentence is a large input too: after NGRAM_NUMPY_TOKENS tokens
    scored in NumPy the n-gram model builds its table."""
    import lmtool
    from lmtool import compiled

    monkeypatch.setattr(compiled, "NGRAM_NUMPY_TOKENS", 50)
    model = lmtool.load(tiny_model.lm)
    first = [model.score("the dog barks at the cat") for _ in range(6)]
    assert model._hashed is None
    later = [model.score("the dog barks at the cat") for _ in range(3)]
    assert model._hashed is not None and first[0] == later[-1]


def test_a_very_long_line_goes_to_the_kernels(tiny_model):
    import lmtool
    from lmtool import compiled

    model = lmtool.load(tiny_model.lm)
    long = compiled.NGRAM_NUMPY_LONGEST + 1
    assert model.numpy_pays(np.zeros(long - 1, np.int32), np.array([long - 1]))
    assert not model.numpy_pays(np.zeros(long, np.int32), np.array([long]))
