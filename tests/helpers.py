"""Small builders shared by the tests."""

import signal
import warnings

from lmtool.ngram.build import build_ngram_model


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
