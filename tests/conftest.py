"""Fixtures shared by several test files: the shipped corpora and models built from them once per session.

The tiny model is built through the real command line and shared read-only by ``tests/test_cli.py``
and ``tests/test_cli_errors.py``; tests that need a damaged copy make their own. The KJV models
(``kjv_models``) are built in memory for the KenLM comparisons.
"""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_TRAIN = ROOT / "corpora" / "tiny" / "train.txt"
TINY_TEST = ROOT / "corpora" / "tiny" / "test.txt"
KJV_TRAIN = ROOT / "corpora" / "kjv" / "train.txt"
KJV_VALID = ROOT / "corpora" / "kjv" / "valid.txt"
KJV_TEST = ROOT / "corpora" / "kjv" / "test.txt"
KENLM_DATA = ROOT / "tests" / "data" / "kenlm"


def run_lmtool(*args, stdin=None, cwd=None, timeout=300):
    """Run ``python -m lmtool.cli ARGS`` in a fresh process; returns the ``CompletedProcess`` (bytes)."""
    return subprocess.run([sys.executable, "-m", "lmtool.cli", *map(str, args)], input=stdin,
                          capture_output=True, cwd=cwd, timeout=timeout)


@dataclass(frozen=True)
class BuiltModel:
    """A model file and the ARPA file written beside it by the same ``lmtool count`` run."""

    lm: Path
    arpa: Path
    order: int


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """``lmtool count corpora/tiny/train.txt --order 3`` (modified Kneser-Ney), model and ARPA."""
    folder = tmp_path_factory.mktemp("tiny-model")
    lm, arpa = folder / "tiny3.lm", folder / "tiny3.arpa"
    done = run_lmtool("count", "-q", TINY_TRAIN, "--order", 3, "-o", lm, "--arpa", arpa)
    assert done.returncode == 0, done.stderr.decode()
    return BuiltModel(lm, arpa, 3)


@pytest.fixture(scope="session")
def kjv_models():
    """``kjv_models(order)``: lmtool's default model (modified Kneser-Ney) of KJV train, built on
    first use (~2 s for order 5) and shared read-only for the rest of the session."""
    from lmtool.ngram.build import build_ngram_model

    built = {}

    def model(order):
        if order not in built:
            built[order] = build_ngram_model([str(KJV_TRAIN)], order=order)
        return built[order]

    return model
