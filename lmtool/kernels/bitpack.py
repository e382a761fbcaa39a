"""Numba kernels that pack unsigned integers of a fixed bit width into uint64 words, and back.

Value i of width b occupies bits ``[i*b, (i+1)*b)`` of the packed stream, counted from the least
significant bit of word 0 (so a value may straddle two words). Quantised n-gram files keep word
ids, probability and backoff codes and child counts this way (``ngram.quantize``).
"""

import numpy as np
from numba import njit


def packed_words(n, bits):
    """Number of uint64 words that hold ``n`` values of ``bits`` bits."""
    return (int(n) * int(bits) + 63) // 64


@njit(cache=True, nogil=True)
def pack(values, bits, out):
    """Write values: uint32[n] (each below 2^bits, 1 <= bits <= 32) into out: uint64[packed_words(n, bits)],
    which must be zeroed."""
    for i in range(values.shape[0]):
        at = i * bits
        word = at >> 6
        shift = at & 63
        v = np.uint64(values[i])
        out[word] |= v << np.uint64(shift)
        if shift + bits > 64:
            out[word + 1] |= v >> np.uint64(64 - shift)


@njit(cache=True, nogil=True, inline="always")
def _code(packed, bits, index):
    """The bits of value ``index`` (``bits`` each, low bits first) in ``packed`` (uint64), above them
    whatever follows: the caller masks."""
    at = index * bits
    word = at >> 6
    shift = at & 63
    v = packed[word] >> np.uint64(shift)
    if shift + bits > 64:
        v |= packed[word + 1] << np.uint64(64 - shift)
    return v


@njit(cache=True, nogil=True)
def unpack(packed, bits, first, out):
    """Fill out: uint32[n] with the values ``first .. first+n-1`` of ``bits`` bits held in ``packed`` (uint64)."""
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    for i in range(out.shape[0]):
        out[i] = np.uint32(_code(packed, bits, first + i) & mask)


@njit(cache=True, nogil=True)
def unpack_lookup(packed, bits, first, table, out):
    """out[i] = table[code first+i] for the codes of ``bits`` bits in ``packed`` (uint64): decoding
    quantised values. table: float32[2^bits] centres; out: float32[n].
    """
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    for i in range(out.shape[0]):
        out[i] = table[np.int64(_code(packed, bits, first + i) & mask)]
