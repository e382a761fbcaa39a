"""Read plain-text corpora: one sentence per line, checked for the usual ways input goes wrong.

Files may be plain UTF-8 or gzip/bzip2/xz compressed (recognised by their first bytes, so a
compressed stream on stdin works too); ``-`` is stdin. Lines are read in chunks so that memory
stays flat however large the file is. Tokens are separated by spaces, tabs and carriage returns
(KenLM's and SRILM's convention); at ``level="char"`` every character, spaces included, is a token.
``<s>`` and ``</s>`` inside the text are markers the models add themselves, so they are dropped;
where training text holds them, ``MarkerWatch`` says so once (lmplz refuses such text).
A ``ByteRange`` stands for part of a large plain file wherever a path is read, so that several
workers can share one file (``byte_ranges`` cuts it).
"""

import io
import os
import re
import sys
from dataclasses import dataclass

from .errors import LmtoolError

LEVELS = ("word", "char")
MAX_LINE_BYTES = 500_000
CHUNK_BYTES = 1 << 22
MARKERS = frozenset(("<s>", "</s>"))

_SEPARATORS = re.compile("[ \t\r\n]+")
_MARKER_WORD = re.compile(rb"(?<![^ \t\r\n])(</?s>)(?![^ \t\r\n])")


def _gzip(f):
    import gzip

    return gzip.GzipFile(fileobj=f)


def _bz2(f):
    import bz2

    return bz2.BZ2File(f)


def _xz(f):
    import lzma

    return lzma.LZMAFile(f)


_MAGIC = ((b"\x1f\x8b", _gzip), (b"BZh", _bz2), (b"\xfd7zXZ\x00", _xz))
"""Compressed formats by their first bytes, and how to open each (its module imported when first met)."""


@dataclass
class Chunk:
    """Whole lines of one file as validated UTF-8 bytes (CR LF turned into LF).

    ``first_line`` is the 1-based number of the first line, ``n_lines`` how many lines it holds.
    """

    path: str
    data: bytes
    first_line: int
    n_lines: int


@dataclass(frozen=True)
class ByteRange:
    """The lines of a plain-text file whose first byte lies in ``[start, end)``: one shard of it.

    Cuts may fall anywhere, inside a line or a character: each line belongs to the range holding
    its first byte, so ranges that tile ``[0, size]`` read every line exactly once. Line numbers in
    messages count from the range's first line, so its name gives the byte range.
    """

    path: str
    start: int
    end: int

    def __post_init__(self):
        if not 0 <= self.start <= self.end:
            raise ValueError(f"ByteRange needs 0 <= start <= end, got {self.start}-{self.end}")

    def __str__(self):
        return f"{self.path} (bytes {self.start}-{self.end})"


def byte_ranges(path, shard_bytes):
    """``path`` cut into ``ByteRange``s of about ``shard_bytes`` bytes, for readers working in parallel.

    A compressed file cannot be entered midway, so it stays whole (``[path]``), as do stdin and
    files of at most ``shard_bytes``. A missing or unreadable file is an ``LmtoolError`` naming it.
    """
    if str(path) == "-":
        return [path]
    raw = _open_raw(path)
    try:
        head, size = raw.read(6), os.fstat(raw.fileno()).st_size
    finally:
        raw.close()
    if size <= shard_bytes or any(head.startswith(magic) for magic, _ in _MAGIC):
        return [path]
    n = -(-size // shard_bytes)
    cuts = [size * i // n for i in range(n + 1)]
    return [ByteRange(str(path), a, b) for a, b in zip(cuts, cuts[1:])]


def chunk_cuts(path, chunk_bytes=CHUNK_BYTES, max_line=MAX_LINE_BYTES):
    """Offsets in the plain file ``path`` where ``read_chunks(..., chunk_bytes)`` ends its chunks
    (each just past a line feed), the file's size last: ``ByteRange``s between two of them read as
    those chunks, byte for byte, so that work shared out by ranges can be joined in order as if one
    process had read the file. Lines longer than ``max_line`` are left to the readers to report.
    """
    raw = _open_raw(path)
    try:
        size = os.fstat(raw.fileno()).st_size
        cuts, last = [], 0
        for grid in range(chunk_bytes, size, chunk_bytes):  # a chunk ends at the last line feed before a block's end
            at = grid
            while at > last:
                low = max(last, at - (1 << 16))
                raw.seek(low)
                found = raw.read(at - low).rfind(b"\n")
                if found >= 0:
                    last = low + found + 1
                    cuts.append(last)
                    break
                at = low
        return cuts + [size] if not cuts or cuts[-1] != size else cuts
    finally:
        raw.close()


def display_name(path):
    """The name used in messages: ``<stdin>`` for ``-``, ``FILE (bytes START-END)`` for a ``ByteRange``."""
    return "<stdin>" if str(path) == "-" else str(path)


def input_size(paths):
    """Total size in bytes of the files (compressed size where compressed), or None if one is stdin."""
    total = 0
    for path in paths:
        if str(path) == "-":
            return None
        if isinstance(path, ByteRange):
            total += path.end - path.start
            continue
        try:
            total += os.path.getsize(path)
        except OSError:
            return None
    return total


def _open_raw(path):
    if str(path) == "-":
        return sys.stdin.buffer
    try:
        if os.path.isdir(path):
            raise LmtoolError("is a directory, expected a text file", path)
        return open(path, "rb")
    except FileNotFoundError:
        raise LmtoolError("no such file", path) from None
    except PermissionError:
        raise LmtoolError("permission denied", path) from None
    except OSError as err:
        raise LmtoolError(f"cannot open: {err.strerror}", path) from None


def _decompressing(raw):
    """Wrap a binary stream in the decompressor its first bytes call for."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    head = buffered.peek(6)[:6]
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return opener(buffered)
    return buffered


UTF8_BOM = b"\xef\xbb\xbf"


def read_chunks(paths, *, chunk_bytes=CHUNK_BYTES, max_line=MAX_LINE_BYTES, progress=None, hasher=None):
    """Yield ``Chunk``s of decoded lines from each path in turn.

    ``progress(n)`` is called with the number of (compressed) bytes consumed since the last call;
    ``hasher`` (a hashlib object) is updated with the decompressed bytes, to fingerprint the data.
    Raises ``LmtoolError`` naming the file for a missing, empty, binary or non-UTF-8 file, a corrupt
    compressed stream, or a line longer than ``max_line`` bytes.
    """
    for path in paths:
        yield from _read_one(path, chunk_bytes, max_line, progress, hasher)


class _Window:
    """The bytes of a ``ByteRange``'s lines, read like a file, from an open file ``raw``."""

    def __init__(self, raw, span, max_line):
        begin, stop = _line_start(raw, span.start, max_line), _line_start(raw, span.end, max_line)
        raw.seek(begin)
        self.raw, self.begin, self.left = raw, begin, max(stop - begin, 0)

    def read(self, n):
        block = self.raw.read(min(n, self.left))
        self.left -= len(block)
        return block


def _line_start(raw, offset, max_line):
    """Offset of the first line that starts at or after ``offset`` in the seekable file ``raw``.

    That is ``offset`` when byte ``offset - 1`` is a newline, else just past the next newline (or
    the end of the file). The search stops after ``max_line`` bytes, inside a line too long to read:
    the range holding that line's start then reports it, and both neighbours agree on the cut.
    """
    if offset <= 0:
        return 0
    raw.seek(offset - 1)
    line = raw.readline(max_line + 1)
    return offset - 1 + len(line) if line else offset


def _first_line(span, max_line):
    """File offset where a ``ByteRange``'s first line starts, so messages give true offsets."""
    raw = _open_raw(span.path)
    try:
        return _line_start(raw, span.start, max_line)
    finally:
        raw.close()


def _blocks(path, chunk_bytes, progress=None, max_line=MAX_LINE_BYTES):
    """Yield the decompressed bytes of one input (or a ``ByteRange``'s lines) in blocks, ending with
    one empty block.

    ``progress(n)`` gets the compressed bytes consumed; a corrupt stream is an ``LmtoolError``
    naming the file. The file is closed however the iteration ends.
    """
    span = path if isinstance(path, ByteRange) else None
    raw = _open_raw(span.path if span else path)
    try:
        stream = _Window(raw, span, max_line) if span else _decompressing(raw)
        position = _position(raw)
        # a range's blocks end where the whole file's would, so its chunks are the whole file's (chunk_cuts)
        size = chunk_bytes - stream.begin % chunk_bytes if span else chunk_bytes
        while True:
            try:
                block = stream.read(size)
                size = chunk_bytes
            except (OSError, EOFError, ValueError, *_decompression_errors()) as err:
                raise LmtoolError(f"corrupt or truncated compressed data ({err})", display_name(path)) from None
            if progress is not None:
                now = _position(raw)
                progress(now - position)
                position = now
            yield block
            if not block:
                return
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def _decompression_errors():
    """The exception classes of the decompressors imported so far (an error can only come from those)."""
    return tuple(error for module, name in (("lzma", "LZMAError"), ("zlib", "error"))
                 if (error := getattr(sys.modules.get(module), name, None)) is not None)


def _read_one(path, chunk_bytes, max_line, progress, hasher):
    name = display_name(path)
    span = path if isinstance(path, ByteRange) else None
    offset = _first_line(span, max_line) if span else 0
    line_no, pending, seen = 1, b"", False
    for block in _blocks(path, chunk_bytes, progress, max_line):
        if block:
            seen = True
            if hasher is not None:
                hasher.update(block)
        data = pending + block
        if not block:
            if not data:
                break
            cut = len(data)
        else:
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if len(data) > max_line:
                    raise LmtoolError(
                        f"line {line_no} is longer than {max_line:,} bytes; "
                        "expected one sentence per line", name)
                pending = data
                continue
        text, pending = data[:cut], data[cut:]
        _check(text, name, offset, line_no, max_line)
        if offset == 0 and text.startswith(UTF8_BOM):  # Windows tools write one; it is not part of a word
            text = text[len(UTF8_BOM):]
        offset += cut
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n")
        n_lines = text.count(b"\n") + (not text.endswith(b"\n"))
        yield Chunk(name, text, line_no, n_lines)
        line_no += n_lines
    if not seen and span is None:  # a range may hold no line; its file is not empty
        raise LmtoolError("empty file, expected text with one sentence per line", name)


def _check(data, name, offset, line_no, max_line):
    """Refuse binary data, invalid UTF-8 and overlong lines, naming the line."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise LmtoolError(f"binary file (NUL byte at offset {offset + nul:,}); expected UTF-8 text", name)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        bad_line = line_no + data.count(b"\n", 0, err.start)
        raise LmtoolError(
            f"not UTF-8 text: invalid byte 0x{data[err.start]:02x} on line {bad_line} "
            f"(offset {offset + err.start:,}); convert it with iconv -t UTF-8", name) from None
    if len(data) > max_line:
        import numpy as np

        breaks = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        edges = np.concatenate([[-1], breaks, [len(data)]])
        gaps = np.diff(edges) - 1
        at = int(np.argmax(gaps))
        if gaps[at] > max_line:
            raise LmtoolError(
                f"line {line_no + at} has {int(gaps[at]):,} bytes, more than the limit of "
                f"{max_line:,}; expected one sentence per line", name)


def _position(raw):
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0


def line_tokens(line, level="word"):
    """Tokens of one line of text, split exactly as the encoding kernels split them.

    For display (``score --per-token``) and small inputs; bulk text goes through
    ``Vocabulary.encode_bytes``.
    """
    if level == "char":
        return list(line.rstrip("\n"))
    return [t for t in _SEPARATORS.split(line) if t and t not in MARKERS]


def first_marker(chunk):
    """``(line, marker)``: the first ``<s>`` or ``</s>`` written as a word in ``chunk``'s text, or None."""
    data = chunk.data
    if b"<s>" not in data and b"</s>" not in data:  # the common case, at memchr speed
        return None
    found = _MARKER_WORD.search(data)
    if found is None:
        return None
    return chunk.first_line + data.count(b"\n", 0, found.start(1)), found.group(1).decode()


class MarkerWatch:
    """Passes chunks through, noting the first ``<s>`` or ``</s>`` written in word-level text as
    ``found`` (file, line, marker) and, with ``say``, warning about it once: the models add these
    markers around every line, so those in the text are dropped, where lmplz refuses the text."""

    def __init__(self, level="word", say=True):
        self.active, self.say, self.found = level == "word", say, None

    def __call__(self, chunk):
        if self.active and self.found is None:
            hit = first_marker(chunk)
            if hit is not None:
                self.found = (chunk.path, *hit)
                if self.say:
                    warn_marker(*self.found)
        return chunk


def warn_marker(path, line, marker):
    """The one-line warning of ``MarkerWatch``."""
    import warnings

    from .errors import LmtoolWarning

    warnings.warn(f"{path}: line {line} has {marker} in its text; <s> and </s> are added around every line, so "
                  "those written in the text are dropped, here and further on (lmplz refuses such text)",
                  LmtoolWarning, stacklevel=2)


def data_hasher():
    """The hash object used to fingerprint training data (BLAKE2b, 128-bit digest)."""
    import hashlib

    return hashlib.blake2b(digest_size=16)


def fingerprint(paths, chunk_bytes=CHUNK_BYTES):
    """The ``data_hasher`` hex digest that ``read_chunks(paths, hasher=...)`` leaves: the decompressed
    bytes of every file in order. For a process that hashes while others parse (``ngram.distributed``)."""
    hasher = data_hasher()
    for path in paths:
        for block in _blocks(path, chunk_bytes):
            hasher.update(block)
    return hasher.hexdigest()
