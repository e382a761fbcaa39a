"""Outputs that appear whole or not at all: temporary files beside the target, renamed into place
on success (together, for a command's several outputs), removed on failure, Ctrl-C or SIGTERM.

A device, FIFO or socket named as an output (``-o /dev/null``, ``--arpa >(gzip > m.arpa.gz)``) is
written through instead of replaced. Renames meant to go together run with SIGINT, SIGTERM and
SIGHUP held, and every temporary file not yet renamed is recorded, so that the command line can
remove what a late Ctrl-C left (``remove_pending``). ``check_outputs`` refuses unwritable outputs,
outputs that are also inputs and outputs named twice before any work starts.

Imports nothing heavy (no NumPy), so the command line can always clean up.
"""

import os
import signal
import stat
import threading
from contextlib import contextmanager

from .errors import LmtoolError


class atomic_output:
    """Context manager: a file opened on a temporary name that replaces ``path`` only on success."""

    def __init__(self, path, mode="w", encoding=None):
        self.path = os.fspath(path)
        self.mode = mode
        self.encoding = encoding

    def __enter__(self):
        fd, self.tmp = _temporary_beside(self.path)
        self.file = os.fdopen(fd, self.mode, encoding=self.encoding)
        return self.file

    def __exit__(self, kind, value, tb):
        try:
            self.file.close()
        except OSError as err:  # the last buffer's flush: a full disk may show only here
            if kind is None:
                _remove(self.tmp)
                raise LmtoolError(f"cannot write: {err.strerror or err}", self.path) from None
        if kind is not None:
            _remove(self.tmp)
            if isinstance(value, OSError) and not isinstance(value, LmtoolError):
                raise LmtoolError(f"cannot write: {value.strerror or value}", self.path) from None
            return False
        try:
            _rename_into_place(self.tmp, self.path)
        except LmtoolError:
            _remove(self.tmp)
            raise
        return False


class staged_outputs:
    """Context manager for several outputs that must appear together or not at all.

    Yields one temporary path per target (``None`` targets are skipped and yield ``None``), made up
    front beside each target so an unwritable folder fails before long work; on success every
    temporary file is renamed into place, on any failure (Ctrl-C included) all are removed.
    """

    def __init__(self, *paths):
        self.paths = [None if p is None else os.fspath(p) for p in paths]
        self.tmps = []

    def __enter__(self):
        for path in self.paths:
            if path is None:
                self.tmps.append(None)
                continue
            try:
                fd, tmp = _temporary_beside(path)
            except LmtoolError:
                self._discard()
                raise
            os.close(fd)
            self.tmps.append(tmp)
        return list(self.tmps)

    def _discard(self):
        for tmp in self.tmps:
            if tmp is not None:
                _remove(tmp)

    def __exit__(self, kind, value, tb):
        if kind is not None:
            self._discard()
            named = self._naming_the_output(value)
            if named is not None:
                raise named from None
            return False
        from .interrupts import check

        outputs = [(tmp, path) for tmp, path in zip(self.tmps, self.paths) if tmp is not None]
        special = [(tmp, path) for tmp, path in outputs if is_special(path)]
        try:
            check()  # once, before any output is put in place: then all of them are
            for tmp, path in special:  # may wait for a FIFO's reader, so not with signals held
                _put_in_place(tmp, path)
            with _signals_held():
                for tmp, path in outputs:
                    if (tmp, path) not in special:
                        _put_in_place(tmp, path)
        except BaseException:
            self._discard()
            raise
        return False

    def _naming_the_output(self, error):
        """``error`` about a temporary file retold about the output the user named (which is what a
        full disk is about), or None for any other error."""
        outputs = {tmp: path for tmp, path in zip(self.tmps, self.paths) if tmp is not None}
        if isinstance(error, LmtoolError) and error.path in outputs:  # from an atomic_output inside
            return type(error)(error.message, outputs[error.path])
        name = error.filename if isinstance(error, OSError) else None
        if isinstance(name, (str, os.PathLike)) and os.fspath(name) in outputs:
            return LmtoolError(f"cannot write: {error.strerror or error}", outputs[os.fspath(name)])
        return None


# Temporary files not yet renamed or removed. A Ctrl-C can land between creating one and the code
# that owns it taking charge, so the command line removes whatever is left here when it fails.
_PENDING = set()


def _temporary_beside(path):
    """Create a fresh ``.lmtool-*.tmp`` file in the folder of ``path``'s real target (a symlink's, not
    the link's, so the rename keeps the link), or in the temporary folder for a device, FIFO or socket
    (copied into it, not renamed); returns (fd, name), recorded in _PENDING."""
    if path == "-":  # would otherwise be a file named "-"
        raise LmtoolError("cannot write this output to stdout: give a file name", path)
    import tempfile  # here: the command line imports this module at start, and tempfile takes 10 ms

    folder = tempfile.gettempdir() if is_special(path) else os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise LmtoolError("cannot write: the folder does not exist", path)
    for _ in range(100):
        name = os.path.join(folder, f".lmtool-{os.urandom(6).hex()}.tmp")
        _PENDING.add(name)  # recorded before it exists, so no moment leaves it unknown
        try:
            return os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), name
        except FileExistsError:
            _PENDING.discard(name)
        except OSError as err:
            _PENDING.discard(name)
            raise LmtoolError(f"cannot write: {err.strerror}", path) from None
    raise LmtoolError("cannot write: no free temporary name", path)


def _rename_into_place(tmp, path):
    """Give a finished temporary file the usual permissions and its final name (unless a Ctrl-C came,
    even one that Python swallowed: see ``interrupts``)."""
    from .interrupts import check

    check()
    _put_in_place(tmp, path)


def _put_in_place(tmp, path):
    """Rename a finished temporary file over ``path``'s real target, or copy it into a device, FIFO or
    socket there, which a rename would swap for a plain file. Those are opened by the name given:
    the real path of ``/dev/stdout`` on a pipe, or of ``>(gzip > x.gz)``, is ``/proc/N/fd/pipe:[M]``,
    which cannot be opened."""
    special = is_special(path)
    target = path if special else os.path.realpath(path)
    try:
        if special:
            import shutil

            with open(tmp, "rb") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o644 & ~_umask())
            os.replace(tmp, target)
    except OSError as err:
        raise LmtoolError(f"cannot write: {err.strerror or err}", path) from None
    _PENDING.discard(tmp)


def is_special(path):
    """Whether ``path`` exists and is neither a regular file nor a folder (a device, FIFO or socket:
    an output there is written through, not replaced)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextmanager
def _signals_held():
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then deliver them, so that renames meant
    to go together are never cut short. Python handlers stand in for the real ones meanwhile, because
    a per-thread signal mask would not do: the kernel hands the signal to another thread (OpenBLAS
    starts one), and Python still runs the handler on the main thread. Only the main thread can
    do this; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from .interrupts import STOPPING

    held, previous = [], {}
    for signum in (signal.SIGINT, *STOPPING):
        if signal.getsignal(signum) not in (signal.SIG_IGN, None):
            previous[signum] = signal.signal(signum, lambda number, frame: held.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


def _remove(name):
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
    _PENDING.discard(name)


def remove_pending():
    """Remove every temporary output file still pending (after a failure or Ctrl-C)."""
    for name in list(_PENDING):
        _remove(name)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path):
    """Fail before long work if ``path`` cannot be written (missing folder, a directory, no permission)."""
    if is_special(path):  # written through (``--arpa /dev/stdout``, ``>(gzip > x.gz)``): its folder does not matter
        if not os.access(path, os.W_OK):
            raise LmtoolError("cannot write: no permission", path)
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise LmtoolError("is a directory, expected an output file name", path)
    if not os.path.isdir(folder):
        raise LmtoolError(f"cannot write: folder {folder} does not exist", path)
    if not os.access(folder, os.W_OK):
        raise LmtoolError(f"cannot write: no permission in {folder}", path)


def check_outputs(outputs, inputs=()):
    """``check_writable`` for each output, and refuse an output that is also an input (it would be
    overwritten before it is read, or after) or that is named twice, before any work is done."""
    seen = {}
    for path in outputs:
        if path is None:
            continue
        if not path.strip():
            raise LmtoolError(f"an output file name cannot be empty, got {path!r}")
        check_writable(path)
        real = os.path.realpath(path)
        if real in seen:
            also = "" if seen[real] == path else f" (also as {seen[real]})"
            raise LmtoolError(f"named twice as an output{also}; give each output its own name", path)
        seen[real] = path
        for source in inputs:
            if source and source != "-" and _same_file(source, path):
                raise LmtoolError(f"is also an input ({source}); choose another output name", path)


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (through links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)
