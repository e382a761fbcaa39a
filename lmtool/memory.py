"""Memory budgets written as lmplz writes them (``-S``): ``500M``, ``2G``, ``50%`` of physical RAM.

Suffixes are binary (K = 1024 bytes) and case-insensitive; ``b`` means bytes and, as in lmplz, a
number without a suffix means KiB.
"""

import ctypes
import ctypes.util
import os
import re

from .errors import LmtoolError

MIN_BUDGET = 64 << 10
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "": 1 << 10}


def physical_memory():
    """Bytes of physical RAM (None where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def parse_memory(text, option="--memory"):
    """Bytes in a size like ``500M``, ``2G``, ``1.5g``, ``64K`` or ``50%``; refuses sizes below 64K."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([bkmgt%]?)\s*", str(text).lower())
    if not match:
        raise LmtoolError(f"{option}: expected a size like 500M, 2G or 50% (of physical RAM), got {text!r}")
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%":
        if not 0 < number <= 100:
            raise LmtoolError(f"{option}: a percentage of physical RAM must be in (0, 100], got {text!r}")
        ram = physical_memory()
        if ram is None:
            raise LmtoolError(f"{option}: cannot tell the physical RAM here; give a size like 2G")
        size = int(ram * number / 100)
    else:
        size = int(number * _UNITS[unit])
    if size < MIN_BUDGET:
        raise LmtoolError(f"{option} {text} is below the smallest budget, 64K")
    return size


def format_size(size):
    """A size in bytes as a short human string (``1.5G``, ``300M``)."""
    for unit, scale in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g}{unit}"
    return f"{size}B"


def release_free_memory():
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    NumPy's temporaries below glibc's mmap threshold (which grows to 32 MB as large blocks are
    freed) come from per-thread heaps that keep their free pages; after a phase of counting or
    merging those pages would otherwise stay in the resident set, eating into ``--memory``.
    """
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc = None
