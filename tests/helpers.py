"""Small builders shared by the tests, the rule for tests that cannot run everywhere, and what the
signal tests need to send a signal at the right moment."""

import importlib
import os
import signal
import time
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


def _states(pid):
    """The state letter of each thread of process ``pid`` (``R``, ``S``, ``T`` stopped, ...), from /proc."""
    states = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone
        return states
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                states.append(f.read().rpartition(")")[2].split()[0])
        except (OSError, IndexError):
            continue
    return states


def process_group(pgid):
    """Process ids of the processes in process group ``pgid`` (Linux /proc)."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if len(fields) > 2 and int(fields[2]) == pgid:
                members.append(int(name))
    return members


def has_open(pid, path):
    """Whether process ``pid`` has ``path`` open (Linux /proc)."""
    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    for fd in names:
        try:
            if os.readlink(os.path.join(folder, fd)) == str(path):
                return True
        except OSError:
            continue
    return False


def signal_when(proc, condition, sig, group=False, timeout=120):
    """Send ``sig`` to ``proc`` (to its whole process group if ``group``, as a terminal's Ctrl-C
    does) at a moment when ``condition()`` holds, however soon the process would move on.

    ``condition`` is polled; once it holds, the process (group) is stopped with SIGSTOP and, when
    every thread has stopped, asked again: if it still holds, ``sig`` is sent while nothing moves and
    the process continues (SIGCONT) with it pending, so nothing happens between the check and the
    signal. Otherwise the process continues and polling goes on. Returns False if the process ended
    first; fails the test if the moment has not come after ``timeout`` seconds.
    """
    def send(signum):
        try:
            if group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)
        except ProcessLookupError:  # ended meanwhile: the caller sees it in the exit status
            pass

    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            pytest.fail(f"the moment to send {signal.Signals(sig).name} never came in {timeout} s")
        if condition():
            send(signal.SIGSTOP)
            members = process_group(proc.pid) if group else [proc.pid]
            while any(state not in "TtZX" for pid in members for state in _states(pid)) \
                    and time.monotonic() < deadline:
                time.sleep(0.001)
            held = proc.poll() is None and condition()
            if held:
                send(sig)
            send(signal.SIGCONT)
            if held:
                return True
        time.sleep(0.001)
    return False
