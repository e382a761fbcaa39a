"""Ctrl-C that Python may swallow: remembered, so that a command does not finish as if nothing happened.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be. When that is a weakref
callback or a ``__del__`` (importlib runs one on every module lock while Numba's many modules load),
the exception is printed as "ignored" and lost, and the command would go on to write its outputs.
``catching`` records every SIGINT as well as raising it, and sends a swallowed one again (from
``sys.unraisablehook``), so that it is raised in ordinary code; should that fail too, ``check``
raises before an output file is renamed into place, and the command line reports the interrupt
when the command returns.
"""

import _thread
import signal
import sys
import threading
import time
from contextlib import contextmanager

_received = threading.Event()


def _handler(signum, frame):
    _received.set()
    raise KeyboardInterrupt


def _quiet_about_interrupts(hook):
    """An ``sys.unraisablehook`` that sends a swallowed interrupt's SIGINT again, to be raised where
    it can stop the command (and printed as the one line a Ctrl-C gives, not as a traceback), and
    passes everything else to ``hook``."""
    def unraisable(info):
        if isinstance(info.exc_value, KeyboardInterrupt):
            try:  # a bare thread: threading.Thread.start waits, and a wait can be interrupted here
                _thread.start_new_thread(_send_again, ())
            except KeyboardInterrupt:  # one more, inside this hook: it is sent again all the same
                _thread.start_new_thread(_send_again, ())
        else:
            hook(info)
    return unraisable


def _send_again():
    """SIGINT for the main thread once it is out of the hook (run on a thread of its own)."""
    time.sleep(0.001)
    _thread.interrupt_main(signal.SIGINT)


@contextmanager
def catching():
    """Record SIGINT (and SIGTERM) while the block runs (in the main thread, unless SIGINT is ignored;
    elsewhere it changes nothing). The record ends with the block, so later work in the process is
    not refused."""
    _received.clear()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # ignored on purpose (nohup, a background job)
        yield
        return
    try:
        previous = signal.signal(signal.SIGINT, _handler)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    # SIGTERM (kill, timeout, a cancelled CI job) stops the command the same way, cleaning up after it
    terminate = signal.getsignal(signal.SIGTERM)
    if terminate is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _handler)
    hook, sys.unraisablehook = sys.unraisablehook, _quiet_about_interrupts(sys.unraisablehook)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if terminate is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, terminate)
        sys.unraisablehook = hook
        _received.clear()


def received():
    """Whether a SIGINT came while ``catching``, whether or not its exception got through."""
    return _received.is_set()


def check():
    """Raise ``KeyboardInterrupt`` if a SIGINT came (one that was swallowed, too)."""
    if _received.is_set():
        raise KeyboardInterrupt
