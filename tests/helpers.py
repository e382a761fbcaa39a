"""Small builders shared by the tests, and the rule for tests that cannot run everywhere."""

import importlib
import os
import signal
import warnings

import pytest

from lmtool.ngram.build import build_ngram_model


def on_ci():
    """Whether the tests run under CI: the environment variable CI set (CI=1, or CI=true as CI
    services set it; empty, 0 or false mean not)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def skip_unless_ci(reason):
    """Skip a test that cannot run here, for ``reason``; under CI fail instead, so that a check CI
    is meant to make never passes unseen."""
    if on_ci():
        pytest.fail(f"{reason}; under CI (CI={os.environ['CI']}) this test must run, not skip: provide what it "
                    "needs, or unset CI to skip it", pytrace=False)
    pytest.skip(reason)


def import_unless_ci(module, install):
    """``module`` imported, or the test skipped (failed under CI, see ``skip_unless_ci``) when it is
    not installed; ``install`` says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        skip_unless_ci(f"{module} is not installed ({install})")


def model_from_text(tmp_path, text, order=3, smoothing="modified-kneser-ney", name="corpus.txt", **options):
    """Build an n-gram model from ``text`` written to a file in ``tmp_path`` (warnings silenced)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_ngram_model([str(path)], order=order, smoothing=smoothing, **options)


def as_in_a_terminal():
    """For ``preexec_fn`` (in the child, before exec): SIGINT, SIGTERM and SIGHUP handled by default
    and SIGINT not blocked, as a shell's foreground job has them. The test runner may have them
    otherwise (a pytest-xdist worker on a fresh checkout had SIGINT not reaching Python at all; a
    ``nohup make test &`` ignores SIGINT and SIGHUP), and the child would inherit that."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def as_a_background_job():
    """For ``preexec_fn``: as a non-interactive shell's ``command &`` has them, SIGINT ignored (and
    SIGTERM, SIGHUP handled by default)."""
    as_in_a_terminal()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
