"""Ctrl-C that Python may swallow: remembered, so that a command does not finish as if nothing happened.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be. When that is a weakref
callback or a ``__del__`` (importlib runs one on every module lock while Numba's many modules load),
the exception is printed as "ignored" and lost, and the command would go on to write its outputs.
``catching`` records every SIGINT (and SIGTERM, SIGHUP) as well as raising it, and sends a
swallowed one again (from ``sys.unraisablehook``), so that it is raised in ordinary code; should
that fail too, ``check`` raises before an output file is renamed into place, and the command line
reports the interrupt when the command returns.
"""

import _thread
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

_received = threading.Event()
STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Signals that end a command as Ctrl-C does, when their default action (death) is in force."""
_last_signal = [signal.SIGINT]  # the one to send again when its exception is swallowed


_NUMBA = os.sep + "numba" + os.sep


def _handler(signum, frame):
    _received.set()
    _last_signal[0] = signum
    if frame is not None and _NUMBA in frame.f_code.co_filename:
        # Compiled Numba code called back into Python here (to unpickle a constant on a kernel's first
        # call, say): an exception raised now is lost in its C code (a SystemError, or a crash). So
        # the signal is sent again a moment later, when the main thread should be back in our code.
        _thread.start_new_thread(_send_again, ())
        return
    raise KeyboardInterrupt


def _quiet_about_interrupts(hook):
    """An ``sys.unraisablehook`` that sends a swallowed interrupt's signal again, to be raised where
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
    """The signal again, for the main thread once it is out of the hook (run on a thread of its own)."""
    time.sleep(0.001)
    _thread.interrupt_main(_last_signal[0])


@contextmanager
def catching():
    """Record SIGINT, SIGTERM and SIGHUP while the block runs, in the main thread (elsewhere this
    changes nothing). A SIGINT ignored on purpose (nohup, a shell's background job) stays ignored;
    SIGTERM (kill, timeout, a cancelled CI job) and SIGHUP (a closed terminal) stop the command as
    Ctrl-C does, cleaning up after it, unless the process ignores them or has a handler of its own.
    The record ends with the block, so later work in the process is not refused."""
    _received.clear()
    wanted = [signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else []
    wanted += [signum for signum in STOPPING if signal.getsignal(signum) is signal.SIG_DFL]
    previous = {}
    try:
        for signum in wanted:
            previous[signum] = signal.signal(signum, _handler)
    except ValueError:  # not the main thread: signals cannot be handled here
        pass
    hook = sys.unraisablehook
    if previous:
        sys.unraisablehook = _quiet_about_interrupts(hook)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = hook
        _received.clear()


def received():
    """Whether a SIGINT, SIGTERM or SIGHUP came while ``catching``, whether or not its exception got through."""
    return _received.is_set()


def check():
    """Raise ``KeyboardInterrupt`` if a SIGINT, SIGTERM or SIGHUP came (one that was swallowed, too)."""
    if _received.is_set():
        raise KeyboardInterrupt
