"""A private temporary folder under ``--tmp``, removed however the command ends, and stdin spooled
into it so that a two-pass reader can read it twice.

A full disk while writing there becomes one line naming the folder, instead of a traceback.
"""

import errno
import os
import shutil
import stat
import sys
import tempfile
import threading

from .errors import LmtoolError

_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def check_parent(folder):
    """Refuse a ``--tmp`` that is missing or is not a folder, in one line naming it."""
    if not os.path.isdir(folder):
        what = "not a folder" if os.path.exists(folder) else "no such folder"
        raise LmtoolError(f"--tmp: {what}; create it or choose another", folder)


class ScratchFolder:
    """Context manager: a new folder inside ``parent``, deleted on success, on error and on Ctrl-C."""

    def __init__(self, parent):
        self.parent = os.path.abspath(parent)
        self.path = None
        self._removals = []

    def __enter__(self):
        check_parent(self.parent)
        try:
            self.path = tempfile.mkdtemp(prefix="lmtool-count-", dir=self.parent)
        except OSError as err:
            raise LmtoolError(f"--tmp: cannot create a temporary folder ({err.strerror}); choose another",
                              self.parent) from None
        return self

    def __exit__(self, kind, value, tb):
        for removal in self._removals:
            removal.join()
        shutil.rmtree(self.path, ignore_errors=True)
        if kind is not None and issubclass(kind, OSError) and value.errno in _FULL:
            raise LmtoolError("no space left for temporary files; free some or point --tmp at a larger disk",
                              self.parent) from None
        return False

    def join(self, name):
        """A path inside the folder."""
        return os.path.join(self.path, name)

    def remove_soon(self, *folders):
        """Delete ``folders`` (inside this one) on a thread of their own, while the work goes on:
        unlinking files of a few hundred MB waits on the disk for a second or more. Leaving the
        context waits for it."""
        removal = threading.Thread(target=lambda: [shutil.rmtree(f, ignore_errors=True) for f in folders],
                                   name="lmtool-scratch-removal", daemon=True)
        removal.start()
        self._removals.append(removal)


class SpooledPath(os.PathLike):
    """A file that stands in for another input: opened at ``real``, named ``shown`` in messages."""

    def __init__(self, real, shown):
        self.real = real
        self.shown = shown

    def __fspath__(self):
        return self.real

    def __str__(self):
        return self.shown


def is_pipe(path):
    """Whether ``path`` gives its bytes once: a pipe (``<(zcat x.gz)``, ``/dev/stdin``) or a character
    device. False for a missing or unreadable path (the reading says what is wrong, naming it)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def readable_twice(scratch, path, number=0):
    """``path`` itself when it can be read twice, else (``is_pipe``) a copy of it in ``scratch``;
    stdin's (``-``) is ``spool_stdin``'s."""
    if str(path) == "-":
        return spool_stdin(scratch)
    if not is_pipe(path):
        return path
    try:
        with open(path, "rb") as stream:
            return spool_stdin(scratch, stream, name=f"input{number}", shown=str(path))
    except PermissionError:
        return path


def spool_stdin(scratch, stream=None, name="stdin", shown="<stdin>"):
    """Copy stdin (raw bytes, compressed or not), or ``stream``, into ``scratch`` as ``name``; returns
    a path shown as ``shown``."""
    path = scratch.join(name)
    with open(path, "wb") as out:
        shutil.copyfileobj(stream or sys.stdin.buffer, out, 1 << 20)
    return SpooledPath(path, shown)
