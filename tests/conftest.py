"""Fixtures shared by the command-line tests: the shipped tiny corpus and one model built from it.

The model is built once per test session, through the real command line, and shared read-only by
``tests/test_cli.py`` and ``tests/test_cli_errors.py``; tests that need a damaged copy make their own.
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
