"""Numba kernels that write and parse the lines of ARPA n-gram sections.

Python's float formatting and string joins cost about 2 us per ARPA line; these kernels work on
bytes. Numbers are written in fixed point with up to 8 decimals (trailing zeros dropped), which
is within 5e-9 of the float32 value; parsing accepts any decimal float with an optional exponent.
"""

import numpy as np
from numba import njit

from .tokenize import _find, hash_bytes

_DIGITS = 8
_SCALE = 10 ** _DIGITS


@njit(cache=True)
def _put_number(out, at, value):
    """Write ``value`` at out[at:] in fixed point; return the new position."""
    q = np.int64(np.round(abs(np.float64(value)) * _SCALE))
    if q == 0:
        out[at] = 48
        return at + 1
    if value < 0:
        out[at] = 45
        at += 1
    whole = q // _SCALE
    frac = q % _SCALE
    power = np.int64(1)
    while power * 10 <= whole:
        power *= 10
    while power > 0:
        out[at] = 48 + (whole // power) % 10
        at += 1
        power //= 10
    if frac:
        out[at] = 46
        at += 1
        width = _DIGITS
        while frac % 10 == 0:
            frac //= 10
            width -= 1
        for j in range(width - 1, -1, -1):
            out[at + j] = 48 + frac % 10
            frac //= 10
        at += width
    return at


@njit(cache=True)
def format_lines(rows, prob, backoff, with_backoff, pool, offsets, out):
    """ARPA lines ``prob<TAB>w1 .. wn[<TAB>backoff]\\n`` for each row; returns bytes written.

    rows: int32[M, n] word ids; prob, backoff: float32[M]; pool/offsets: the vocabulary's UTF-8
    bytes (uint8[...]) and token boundaries (int64[V+1]); out: uint8[...] large enough.
    """
    at = 0
    M, n = rows.shape
    for i in range(M):
        at = _put_number(out, at, prob[i])
        out[at] = 9
        at += 1
        for k in range(n):
            if k:
                out[at] = 32
                at += 1
            w = rows[i, k]
            for b in range(offsets[w], offsets[w + 1]):
                out[at] = pool[b]
                at += 1
        if with_backoff:
            out[at] = 9
            at += 1
            at = _put_number(out, at, backoff[i])
        out[at] = 10
        at += 1
    return at


@njit(cache=True)
def _parse_number(data, i, end):
    """Parse a decimal float at data[i:end]; return (value, next position, ok)."""
    sign = 1.0
    if i < end and (data[i] == 45 or data[i] == 43):
        if data[i] == 45:
            sign = -1.0
        i += 1
    mantissa = 0.0
    scale = 0
    digits = 0
    while i < end and 48 <= data[i] <= 57:
        mantissa = mantissa * 10.0 + (data[i] - 48)
        i += 1
        digits += 1
    if i < end and data[i] == 46:
        i += 1
        while i < end and 48 <= data[i] <= 57:
            mantissa = mantissa * 10.0 + (data[i] - 48)
            scale -= 1
            i += 1
            digits += 1
    if digits == 0:
        return 0.0, i, False
    if i < end and (data[i] == 101 or data[i] == 69):
        i += 1
        esign = 1
        if i < end and (data[i] == 45 or data[i] == 43):
            if data[i] == 45:
                esign = -1
            i += 1
        e = 0
        edigits = 0
        while i < end and 48 <= data[i] <= 57:
            e = e * 10 + (data[i] - 48)
            i += 1
            edigits += 1
        if edigits == 0:
            return 0.0, i, False
        scale += esign * e
    return sign * mantissa * 10.0 ** scale, i, True


@njit(cache=True)
def parse_lines(data, n, with_backoff, slots, pool, offsets, hashes, out_prob, out_backoff, out_rows):
    """Parse ARPA lines ``prob w1 .. wn [backoff]`` (fields separated by spaces or tabs).

    Words are looked up in the token table (as in ``tokenize``). Blank lines are skipped.
    Returns (lines parsed, index of the first bad line or -1, what was wrong: 1 wrong number of
    fields, 2 a word that is not a unigram, 3 more lines than ``out_prob`` holds, 4 a bad number).
    """
    size = slots.shape[0]
    bits = 0
    while (1 << bits) < size:
        bits += 1
    shift = np.uint64(64 - bits)
    mask = size - 1
    L = data.shape[0]
    i = 0
    row = 0
    line = 0
    starts = np.empty(n + 2, np.int64)
    stops = np.empty(n + 2, np.int64)
    while i < L:
        end = i
        while end < L and data[end] != 10:
            end += 1
        nf = 0
        j = i
        while j < end:
            while j < end and (data[j] == 32 or data[j] == 9 or data[j] == 13):
                j += 1
            if j >= end:
                break
            if nf == n + 2:
                return row, line, 1
            starts[nf] = j
            while j < end and not (data[j] == 32 or data[j] == 9 or data[j] == 13):
                j += 1
            stops[nf] = j
            nf += 1
        if nf > 0:
            if row == out_prob.shape[0]:
                return row, line, 3
            if nf != n + 1 and not (with_backoff and nf == n + 2):
                return row, line, 1
            value, stop, ok = _parse_number(data, starts[0], stops[0])
            if not ok or stop != stops[0]:
                return row, line, 4
            out_prob[row] = value
            out_backoff[row] = 0.0
            if nf == n + 2:
                value, stop, ok = _parse_number(data, starts[n + 1], stops[n + 1])
                if not ok or stop != stops[n + 1]:
                    return row, line, 4
                out_backoff[row] = value
            for k in range(n):
                h = hash_bytes(data, starts[k + 1], stops[k + 1])
                s = _find(data, starts[k + 1], stops[k + 1], h, slots, pool, offsets, hashes, shift, mask)
                if slots[s] < 0:
                    return row, line, 2
                out_rows[row, k] = slots[s]
            row += 1
        line += 1
        i = end + 1
    return row, -1, 0
