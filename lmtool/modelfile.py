"""One container for every model kind: magic, format version, JSON header, aligned arrays, checksum.

Layout (little-endian)::

    0   8 bytes   magic b"LMTOOL\\x00\\x1a"
    8   uint32    format version
    12  uint32    header length H
    16  uint32    CRC-32 of the header
    20  H bytes   header, UTF-8 JSON: kind, lmtool version, metadata, and for each array its
                  dtype, shape, offset and size
    ..  arrays, each starting on a 64-byte boundary (so they can be memory-mapped in place);
                  the header holds the CRC-32 of this data region

No pickle: a model file only ever yields arrays and JSON. Files are written to a temporary name
beside the target and renamed into place, so a failed write leaves nothing behind.
"""

import json
import mmap
import os
import shutil
import signal
import stat
import struct
import tempfile
import threading
import zlib
from contextlib import contextmanager

import numpy as np

from . import __version__
from .errors import LmtoolError

MAGIC = b"LMTOOL\x00\x1a"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIII")
_ALIGN = 64
KINDS = ("ngram", "recurrent", "mixture")


class ModelFile:
    """A model file's header (``kind``, ``meta``) and its named arrays (read-only, memory-mapped)."""

    def __init__(self, kind, meta, arrays, path=None):
        self.kind = kind
        self.meta = meta
        self.arrays = arrays
        self.path = path

    def __getitem__(self, name):
        return self.arrays[name]


def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class StoredArray:
    """A 1-D little-endian array held in a raw file, which ``write`` copies into a model file in
    blocks rather than loading it (how models larger than a memory budget are written)."""

    BLOCK = 1 << 24

    def __init__(self, path, dtype, length):
        self.path = path
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.shape = (int(length),)
        self.nbytes = self.shape[0] * self.dtype.itemsize

    def blocks(self):
        """The file's bytes, in blocks of at most ``BLOCK``."""
        with open(self.path, "rb") as f:
            while block := f.read(self.BLOCK):
                yield block


def _blocks(array):
    return array.blocks() if isinstance(array, StoredArray) else [memoryview(array).cast("B")]


def write(path, kind, meta, arrays):
    """Write a model file atomically: temporary file in the same folder, then rename.

    ``meta`` is JSON-serialisable; ``arrays`` maps names to NumPy arrays (any shape, numeric dtypes)
    or ``StoredArray``s.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    table, offset = {}, 0
    prepared = {}
    for name, array in arrays.items():
        if not isinstance(array, StoredArray):
            array = np.ascontiguousarray(array)
            if array.dtype.kind not in "biuf":
                raise ValueError(f"array {name!r} has unsupported dtype {array.dtype}")
            array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        prepared[name] = array
        table[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset,
                       "nbytes": int(array.nbytes)}
        offset = _aligned(offset + array.nbytes)
    crc = 0
    for name, array in prepared.items():
        for block in _blocks(array):
            crc = zlib.crc32(block, crc)
        crc = zlib.crc32(bytes(_aligned(array.nbytes) - array.nbytes), crc)
    header = {"kind": kind, "lmtool_version": __version__, "meta": meta, "arrays": table,
              "data_size": offset, "data_crc32": crc}
    header_bytes = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    start = _aligned(_PREFIX.size + len(header_bytes))
    header_bytes += b" " * (start - _PREFIX.size - len(header_bytes))
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), zlib.crc32(header_bytes))
    with atomic_output(path, "wb") as out:
        out.write(prefix)
        out.write(header_bytes)
        for array in prepared.values():
            for block in _blocks(array):
                out.write(block)
            out.write(bytes(_aligned(array.nbytes) - array.nbytes))


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


def read(path, verify=True):
    """Open a model file; arrays are memory-mapped read-only views. Raises ``LmtoolError`` for a
    missing, foreign, truncated, corrupt or newer-version file, with what to do about it."""
    path = os.fspath(path)
    if path == "-":
        raise LmtoolError("stdin cannot hold a model: models are memory-mapped, give the file itself", path)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise LmtoolError("a pipe or device, not a model file: models are memory-mapped, give the "
                                  "file itself", path)
            if st.st_size == 0:
                raise LmtoolError("empty file, expected an lmtool model", path)
            buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise LmtoolError("no such model file", path) from None
    except IsADirectoryError:
        raise LmtoolError("is a directory, expected an lmtool model file", path) from None
    except PermissionError:
        raise LmtoolError("permission denied", path) from None
    return read_buffer(buffer, path, verify)


def read_buffer(buffer, path, verify=True):
    """A model file held in ``buffer`` (an mmap, or a uint8 array such as a mixture's embedded
    member), its arrays views into it; ``path`` names it in messages. Checks as ``read`` does."""
    buffer = memoryview(buffer).cast("B")
    size = len(buffer)
    head = bytes(buffer[:_PREFIX.size])
    if size == 0:
        raise LmtoolError("empty file, expected an lmtool model", path)
    if len(head) < _PREFIX.size or not head.startswith(MAGIC):
        hint = ""
        if head.lstrip().startswith(b"\\data\\") or head.startswith(b"\n\\data\\"):
            hint = f"; it looks like an ARPA file: run 'lmtool convert {path} MODEL.lm' first"
        elif head.startswith(b"mmap lm"):
            hint = "; it looks like a KenLM binary: convert its ARPA file with 'lmtool convert'"
        raise LmtoolError(f"not an lmtool model file{hint}", path)
    _, version, header_len, header_crc = _PREFIX.unpack(head)
    if version > FORMAT_VERSION:
        raise LmtoolError(f"model format version {version} is newer than this lmtool {__version__} reads "
                          f"(up to {FORMAT_VERSION}); upgrade lmtool", path)
    if version < 1:
        raise LmtoolError(f"corrupt model file (format version {version}, which no lmtool writes); rebuild it", path)
    start = _PREFIX.size + header_len
    if size < start:
        raise LmtoolError(f"truncated model file ({size:,} bytes, its header alone needs {start:,}); "
                          "rebuild it", path)
    header_bytes = bytes(buffer[_PREFIX.size:start])
    if zlib.crc32(header_bytes) != header_crc:
        raise LmtoolError("corrupt model file (header checksum mismatch); rebuild it", path)
    header = _parse_header(header_bytes, path)
    expected = start + header["data_size"]
    if size < expected:
        raise LmtoolError(f"truncated model file ({size:,} bytes, expected {expected:,}); rebuild it", path)
    if size > expected:
        raise LmtoolError(f"damaged model file ({size - expected:,} bytes after its end); rebuild it", path)
    if verify and zlib.crc32(buffer[start:expected]) != header["data_crc32"]:
        raise LmtoolError("corrupt model file (data checksum mismatch); rebuild it", path)
    arrays = {}
    try:
        for name, spec in header["arrays"].items():
            dtype = np.dtype(spec["dtype"])
            count = int(np.prod(spec["shape"], dtype=np.int64))
            if spec["offset"] < 0 or spec["offset"] + count * dtype.itemsize > header["data_size"]:
                raise ValueError(f"array {name!r} lies outside the data")
            arrays[name] = np.frombuffer(buffer, dtype, count, start + spec["offset"]).reshape(spec["shape"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise LmtoolError(f"damaged model file (bad array table: {err}); rebuild it", path) from None
    if header["kind"] not in KINDS:
        raise LmtoolError(f"unknown model kind {header['kind']!r}; upgrade lmtool", path)
    return ModelFile(header["kind"], header["meta"], arrays, path)


_HEADER_FIELDS = {"kind": str, "meta": dict, "arrays": dict, "data_size": int, "data_crc32": int}


def _parse_header(header_bytes, path):
    """The JSON header, checked for the fields ``read`` relies on (a damaged file says so, no traceback)."""
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, ValueError):
        raise LmtoolError("damaged model file (its header is not valid JSON); rebuild it", path) from None
    if not isinstance(header, dict):
        raise LmtoolError("damaged model file (its header is not a JSON object); rebuild it", path)
    for field, kind in _HEADER_FIELDS.items():
        if not isinstance(header.get(field), kind) or (kind is int and header[field] < 0):
            raise LmtoolError(f"damaged model file (header field {field!r} missing or invalid); rebuild it", path)
    return header


def is_model_file(path):
    """Whether ``path`` starts with the lmtool magic (False for a missing or short file too)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False
