"""Numba kernels that split UTF-8 text into tokens and map them to ids through a hash table.

Python's ``str.split`` and ``dict`` cost about 250 ns per token; these kernels work on the raw
bytes at a few ns per token. Word tokens are separated by space, tab, CR and LF (KenLM's
separators); a line feed also ends a sentence. The vocabulary lives in a byte pool with an
open-addressing table of int32 slots (-1 empty) keyed by a 64-bit FNV-1a hash of the bytes.
"""

import numpy as np
from numba import njit

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

NEED_SPACE = 1


@njit(cache=True, inline="always")
def _is_separator(b):
    return b == 32 or b == 9 or b == 10 or b == 13


@njit(cache=True)
def hash_bytes(data, start, end):
    """64-bit FNV-1a hash of data[start:end] (uint8)."""
    h = _FNV_OFFSET
    for i in range(start, end):
        h = (h ^ np.uint64(data[i])) * _FNV_PRIME
    return h


@njit(cache=True)
def hash_tokens(pool, offsets, n_tokens, out):
    """out[i] = hash_bytes of token i (pool[offsets[i]:offsets[i+1]]) for i < n_tokens."""
    for i in range(n_tokens):
        out[i] = hash_bytes(pool, offsets[i], offsets[i + 1])


@njit(cache=True)
def _find(data, start, end, h, slots, pool, offsets, hashes, shift, mask):
    """Slot index holding the token data[start:end], or the empty slot where it would go."""
    s = np.int64((h * _GOLDEN) >> shift)
    n = end - start
    while True:
        i = slots[s]
        if i < 0:
            return s
        if hashes[i] == h and offsets[i + 1] - offsets[i] == n:
            base = offsets[i]
            same = True
            for k in range(n):
                if pool[base + k] != data[start + k]:
                    same = False
                    break
            if same:
                return s
        s = (s + 1) & mask


@njit(cache=True)
def insert_all(slots, pool, offsets, hashes, n_tokens):
    """(Re)build ``slots`` (int32[2^b], all -1) for tokens 0..n_tokens-1 already in the pool."""
    size = slots.shape[0]
    bits = 0
    while (1 << bits) < size:
        bits += 1
    shift = np.uint64(64 - bits)
    mask = size - 1
    for i in range(n_tokens):
        s = np.int64((hashes[i] * _GOLDEN) >> shift)
        while slots[s] >= 0:
            s = (s + 1) & mask
        slots[s] = i


@njit(cache=True, nogil=True)
def encode_words(data, pos, slots, pool, offsets, hashes, n_tokens, grow, skip_a, skip_b, unk,
                 out_ids, out_lengths, n_ids, n_lines):
    """Split data[pos:] into lines of words and write their ids.

    data: uint8[L], whole lines (the last may lack its line feed). slots/pool/offsets/hashes: the
    table (int32[2^b], uint8[cap], int64[cap_tokens+1], uint64[cap_tokens]) holding ``n_tokens``
    tokens. With ``grow``, unseen tokens are added; without, they map to ``unk``. Tokens with id
    ``skip_a`` or ``skip_b`` (``<s>``, ``</s>``) are dropped. Writes ids to out_ids[n_ids:] and words
    per line to out_lengths[n_lines:].
    Returns (status, pos, n_ids, n_lines, n_tokens, pool_used): status NEED_SPACE means the table
    would pass half full or the pool, offsets or hashes are full; grow them and call again from
    ``pos`` (a line start) with the returned counts.
    """
    size = slots.shape[0]
    bits = 0
    while (1 << bits) < size:
        bits += 1
    shift = np.uint64(64 - bits)
    mask = size - 1
    L = data.shape[0]
    pool_used = offsets[n_tokens]
    line_start = pos
    line_ids = n_ids
    i = pos
    while i < L:
        # one line
        line_start = i
        line_ids = n_ids
        while i < L and data[i] != 10:
            while i < L and (data[i] == 32 or data[i] == 9 or data[i] == 13):
                i += 1
            if i >= L or data[i] == 10:
                break
            start = i
            h = _FNV_OFFSET  # hash_bytes(data, start, i), taken while the token is scanned
            while i < L and not _is_separator(data[i]):
                h = (h ^ np.uint64(data[i])) * _FNV_PRIME
                i += 1
            s = _find(data, start, i, h, slots, pool, offsets, hashes, shift, mask)
            t = slots[s]
            if t < 0:
                if not grow:
                    t = unk
                else:
                    if (2 * (n_tokens + 1) > size or n_tokens + 1 >= hashes.shape[0]
                            or pool_used + (i - start) > pool.shape[0]):
                        return NEED_SPACE, line_start, line_ids, n_lines, n_tokens, pool_used
                    for k in range(start, i):
                        pool[pool_used] = data[k]
                        pool_used += 1
                    hashes[n_tokens] = h
                    offsets[n_tokens + 1] = pool_used
                    slots[s] = n_tokens
                    t = n_tokens
                    n_tokens += 1
            if t != skip_a and t != skip_b:
                out_ids[n_ids] = t
                n_ids += 1
        out_lengths[n_lines] = n_ids - line_ids
        n_lines += 1
        i += 1  # past the line feed
    return 0, L, n_ids, n_lines, n_tokens, pool_used


@njit(cache=True, nogil=True)
def encode_chars(codes, table, grow, next_id, unk, out_ids, out_lengths):
    """Map code points to ids, one token per character; a line feed (10) ends a line.

    codes: uint32[L]; table: int32[0x110000] id of each code point, -1 if none. With ``grow``,
    unseen code points get ids ``next_id, next_id+1, ...``; without, they map to ``unk``.
    Returns (n_ids, n_lines, next_id); ids in out_ids, characters per line in out_lengths.
    """
    n_ids = 0
    n_lines = 0
    line_ids = 0
    L = codes.shape[0]
    for i in range(L):
        c = codes[i]
        if c == 10:
            out_lengths[n_lines] = n_ids - line_ids
            n_lines += 1
            line_ids = n_ids
            continue
        t = table[c]
        if t < 0:
            if grow:
                t = next_id
                table[c] = t
                next_id += 1
            else:
                t = unk
        out_ids[n_ids] = t
        n_ids += 1
    if L > 0 and codes[L - 1] != 10:
        out_lengths[n_lines] = n_ids - line_ids
        n_lines += 1
    return n_ids, n_lines, next_id
