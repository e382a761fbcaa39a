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

No pickle: a model file only ever yields arrays and JSON. Files are written through
``outputs.atomic_output``, so a failed write leaves nothing behind.
"""

import json
import mmap
import os
import stat
import struct
import zlib

import numpy as np

from . import MODEL_CLASSES, __version__
from .errors import LmtoolError
from .outputs import atomic_output

MAGIC = b"LMTOOL\x00\x1a"
FORMAT_VERSION = 2
"""The newest format version this lmtool reads. Version 2 holds quantised n-gram arrays
(``ngram.quantize``); every other file is written as version 1, which older lmtools read."""
_PREFIX = struct.Struct("<8sIII")
_ALIGN = 64


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


def write(path, kind, meta, arrays, version=1):
    """Write a model file atomically: temporary file in the same folder, then rename.

    ``meta`` is JSON-serialisable; ``arrays`` maps names to NumPy arrays (any shape, numeric dtypes)
    or ``StoredArray``s; ``version`` is the format version the file needs (see ``FORMAT_VERSION``).
    """
    if kind not in MODEL_CLASSES:
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
    prefix = _PREFIX.pack(MAGIC, version, len(header_bytes), zlib.crc32(header_bytes))
    with atomic_output(path, "wb") as out:
        out.write(prefix)
        out.write(header_bytes)
        for array in prepared.values():
            for block in _blocks(array):
                out.write(block)
            out.write(bytes(_aligned(array.nbytes) - array.nbytes))


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
            size = st.st_size
            head = f.read(_PREFIX.size)
            if size == 0:
                raise LmtoolError("empty file, expected an lmtool model", path)
            buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise LmtoolError("no such model file", path) from None
    except IsADirectoryError:
        raise LmtoolError("is a directory, expected an lmtool model file", path) from None
    except PermissionError:
        raise LmtoolError("permission denied", path) from None
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
    header_bytes = buffer[_PREFIX.size:start]
    if zlib.crc32(header_bytes) != header_crc:
        raise LmtoolError("corrupt model file (header checksum mismatch); rebuild it", path)
    header = _parse_header(header_bytes, path)
    expected = start + header["data_size"]
    if size < expected:
        raise LmtoolError(f"truncated model file ({size:,} bytes, expected {expected:,}); rebuild it", path)
    if size > expected:
        raise LmtoolError(f"damaged model file ({size - expected:,} bytes after its end); rebuild it", path)
    if verify and zlib.crc32(memoryview(buffer)[start:expected]) != header["data_crc32"]:
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
    if header["kind"] not in MODEL_CLASSES:
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
