"""Quantised n-gram models (``--quantize BITS``): codes into tables of centres, ids packed to their bits.

The log10 probabilities of each order from 2 up, and the log10 backoff weights of each order
from 2 below the highest, become BITS-bit codes into a table of 2^BITS centres of their own. The
centres come from Lloyd's algorithm (1-D k-means on the values), started from KenLM's bins
(``quantile_centres``: the sorted values cut into runs of equal length, each at its mean), so the
squared error is never above KenLM's; a backoff of exactly 0 (weight 1) keeps a code of its own,
as in KenLM. Unigrams stay float32: there are few, and every backoff ends in one. Word ids take
the bits the vocabulary needs, and child counts the width k that makes the file smallest, counts
of 2^k - 1 and more kept aside (``kernels.bitpack``).

Loading decodes the codes into the arrays an unquantised model holds (``NgramModel``), so a
quantised model scores through the same hash table at the same speed, and converts to ARPA with
the quantised values. The decoding runs in NumPy (``unpack``) unless Numba is loaded already, so
that scoring a sentence does not wait for it (``lmtool.compiled``); both give the same integers.
"""

import numpy as np

from .. import modelfile
from ..errors import LmtoolError
from ..vocab import Vocabulary

MIN_BITS, MAX_BITS = 4, 16
FORMAT_VERSION = 2
"""The model file version that holds quantised arrays (an older lmtool refuses it, naming both)."""
LLOYD_ROUNDS = 200
MAX_CHILD_BITS = 8
ARRAYS = ("unigram_prob", "unigram_backoff", "word_codes", "prob_codes", "prob_centres", "backoff_codes",
          "backoff_centres", "children_codes", "children_big_at", "children_big")
"""The arrays of a quantised file, after ``vocab`` and ``sizes``, in the order they are written."""
ZERO_CODE = 0
"""The backoff code that stands for exactly 0 (weight 1): contexts without children, blank n-grams."""


def check_bits(bits):
    """Refuse a code width outside MIN_BITS..MAX_BITS."""
    if not isinstance(bits, (int, np.integer)) or not MIN_BITS <= bits <= MAX_BITS:
        raise LmtoolError(f"--quantize takes {MIN_BITS} to {MAX_BITS} bits per value, got {bits}")
    return int(bits)


# Centres


def quantile_centres(values, levels):
    """KenLM's centres (``MakeBins``, lm/quantize.cc): the sorted values cut into ``levels`` runs of
    equal length, each represented by its mean; an empty run repeats the centre before it.
    float64[levels], ascending."""
    v = np.sort(np.asarray(values, np.float64))
    ends = (len(v) * np.arange(1, levels + 1, dtype=np.int64)) // levels
    starts = np.concatenate([[0], ends[:-1]])
    sums = np.concatenate([[0.0], np.cumsum(v)])
    centres = np.empty(levels)
    for i in range(levels):
        if ends[i] > starts[i]:
            centres[i] = (sums[ends[i]] - sums[starts[i]]) / (ends[i] - starts[i])
        else:
            centres[i] = centres[i - 1] if i else -np.inf
    return centres


def lloyd_centres(values, levels, rounds=LLOYD_ROUNDS):
    """At most ``levels`` centres (float64, ascending) that locally minimise the squared error of
    coding ``values`` by their nearest centre: Lloyd's iterations from ``quantile_centres``, with
    cells left empty (or merged) split again where the error is largest. Every step lowers the
    error, so it ends at or below KenLM's. With no more distinct values than ``levels``, the
    distinct values themselves (no error)."""
    v = np.sort(np.asarray(values, np.float64))
    distinct = np.unique(v)
    if len(distinct) <= levels:
        return distinct
    s1 = np.concatenate([[0.0], np.cumsum(v)])
    s2 = np.concatenate([[0.0], np.cumsum(v * v)])
    c = np.unique(quantile_centres(v, levels))
    c = c[np.isfinite(c)]
    for _ in range(rounds):
        edges = _cells(v, c)
        n = np.diff(edges)
        c_new = ((s1[edges[1:]] - s1[edges[:-1]]) / np.maximum(n, 1))[n > 0]
        if len(c_new) < levels:  # codes to spare: split the cells that cost most
            c_new = _split(v, c_new, levels - len(c_new), s1, s2)
        if np.array_equal(c_new, c):
            break
        c = c_new
    return c


def _cells(v, c):
    """Edges of each centre's cell in the sorted values ``v`` (nearest centre, ``c`` ascending)."""
    mids = (c[1:] + c[:-1]) / 2
    return np.concatenate([[0], np.searchsorted(v, mids, "right"), [len(v)]])


def _split(v, c, spare, s1, s2):
    """``c`` with up to ``spare`` of its cells of largest squared error split in two at their centre."""
    edges = _cells(v, c)
    lo, hi = edges[:-1], edges[1:]
    n = hi - lo
    sse = (s2[hi] - s2[lo]) - (s1[hi] - s1[lo]) ** 2 / np.maximum(n, 1)
    sse[n < 2] = 0.0
    worst = np.argsort(-sse, kind="stable")[:spare]
    worst = worst[sse[worst] > 0]
    mid = np.searchsorted(v, c[worst], "right")
    ok = (mid > lo[worst]) & (mid < hi[worst])
    worst, mid = worst[ok], mid[ok]
    if len(worst) == 0:
        return c
    left = (s1[mid] - s1[lo[worst]]) / (mid - lo[worst])
    right = (s1[hi[worst]] - s1[mid]) / (hi[worst] - mid)
    kept = np.ones(len(c), bool)
    kept[worst] = False
    return np.unique(np.concatenate([c[kept], left, right]))


def encode(values, centres):
    """uint32 code of each value: the index of its nearest centre (``centres`` ascending)."""
    centres = np.asarray(centres, np.float64)
    mids = (centres[1:] + centres[:-1]) / 2
    return np.searchsorted(mids, np.asarray(values, np.float64), "left").astype(np.uint32)


def squared_error(values, centres):
    """Mean squared error of coding ``values`` by their nearest of ``centres`` (ascending)."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return 0.0
    return float(np.mean((values - np.asarray(centres, np.float64)[encode(values, centres)]) ** 2))


def _table(centres, levels, reserve_zero=False):
    """float32[levels]: the centres (after code 0 = exactly 0 when ``reserve_zero``), padded with the last."""
    table = np.zeros(levels, np.float32)
    first = 1 if reserve_zero else 0
    centres = np.asarray(centres, np.float32)
    table[first:first + len(centres)] = centres
    if len(centres):
        table[first + len(centres):] = centres[-1]
    return table


def kenlm_centres(values, levels):
    """KenLM's centres as its encoder uses them: ``quantile_centres``, repeats and empty runs dropped."""
    centres = quantile_centres(values, levels) if len(values) else np.zeros(0)
    return np.unique(centres[np.isfinite(centres)])


def _codes(values, bits, reserve_zero=False, centres_of=lloyd_centres):
    """(codes: uint32[len(values)], table: float32[2^bits]) for one order's probabilities or backoffs."""
    levels = 1 << bits
    values = np.asarray(values, np.float32)
    zero = values == 0 if reserve_zero else np.zeros(len(values), bool)
    centres = np.asarray(centres_of(values[~zero], levels - reserve_zero), np.float32)
    table = _table(centres, levels, reserve_zero)
    codes = np.full(len(values), ZERO_CODE, np.uint32)
    if len(centres):
        codes[~zero] = encode(values[~zero], centres.astype(np.float64)) + reserve_zero
    return codes, table


def _pack(values, bits):
    from ..kernels.bitpack import pack, packed_words

    out = np.zeros(packed_words(len(values), bits), np.uint64)
    pack(np.ascontiguousarray(values, np.uint32), bits, out)
    return out


def _child_bits(children):
    """The width k of packed child counts that makes them smallest (counts from 2^k - 1 kept aside,
    16 bytes each)."""
    best = None
    for k in range(1, MAX_CHILD_BITS + 1):
        cost = len(children) * k / 8 + 16 * int(np.count_nonzero(children >= (1 << k) - 1))
        if best is None or cost < best[0]:
            best = (cost, k)
    return best[1]


# Models


def quantize(model, bits, centres_of=lloyd_centres):
    """``model`` (a normalised or not ``NgramModel``) with its probabilities and backoffs quantised to
    ``bits`` bits: a new ``NgramModel`` holding the decoded values, which ``save`` writes in the
    quantised form. ``centres_of(values, levels)`` picks the centres (``kenlm_centres`` for KenLM's,
    which the benchmark compares)."""
    from .model import NgramModel

    bits = check_bits(bits)
    V, order, sizes = len(model.vocab), model.order, model.sizes
    prob = np.array(model.prob, np.float32)
    backoff = np.array(model.backoff, np.float32)
    arrays = {"unigram_prob": prob[:V].copy(), "unigram_backoff": backoff[:V].copy() if order > 1 else
              np.zeros(0, np.float32)}
    prob_codes, prob_tables, backoff_codes, backoff_tables = [], [], [], []
    for n in range(2, order + 1):
        codes, table = _codes(prob[model.level(n)], bits, centres_of=centres_of)
        prob[model.level(n)] = table[codes]
        prob_codes.append(codes)
        prob_tables.append(table)
        if n < order:
            codes, table = _codes(backoff[model.level(n)], bits, reserve_zero=True, centres_of=centres_of)
            backoff[model.level(n)] = table[codes]
            backoff_codes.append(codes)
            backoff_tables.append(table)
    word_bits = max(1, int(V - 1).bit_length())
    children = model.children
    child_bits = _child_bits(children)
    cap = (1 << child_bits) - 1
    big = np.flatnonzero(children >= cap)
    join = (lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype))
    arrays.update({
        "word_codes": _pack(np.asarray(model.word[V:], np.uint32), word_bits),
        "prob_codes": _pack(join(prob_codes, np.uint32), bits),
        "prob_centres": join(prob_tables, np.float32),
        "backoff_codes": _pack(join(backoff_codes, np.uint32), bits),
        "backoff_centres": join(backoff_tables, np.float32),
        "children_codes": _pack(np.minimum(children, cap).astype(np.uint32), child_bits),
        "children_big_at": big.astype(np.int64),
        "children_big": children[big].astype(np.int64),
    })
    layout = {"bits": bits, "word_bits": word_bits, "children_bits": child_bits,
              "centres": getattr(centres_of, "__name__", "given").replace("_centres", "")}
    meta = dict(model.meta, quantized=layout)
    quantized = NgramModel(model.vocab, sizes, model.word, prob, backoff, children, meta)
    quantized.quantized = arrays
    return quantized


def save(model, path):
    """Write a model made by ``quantize`` (or loaded from a quantised file) in the quantised form."""
    arrays = {"vocab": np.frombuffer(model.vocab.to_bytes(), np.uint8), "sizes": np.asarray(model.sizes, np.int64),
              **model.quantized}
    modelfile.write(path, model.kind, dict(model.meta, level=model.vocab.level), arrays, version=FORMAT_VERSION)


def from_file(opened):
    """An ``NgramModel`` from an opened quantised model file, its codes decoded (``kernels.bitpack``
    where Numba is loaded, else ``unpack``)."""
    from .. import compiled
    from .model import NgramModel

    if compiled.numba_loaded():
        from ..kernels.bitpack import unpack, unpack_lookup
    else:
        unpack, unpack_lookup = _unpack_into, _unpack_lookup

    meta = opened.meta
    layout = meta["quantized"]
    bits, word_bits, child_bits = int(layout["bits"]), int(layout["word_bits"]), int(layout["children_bits"])
    vocab = Vocabulary.from_bytes(opened["vocab"], meta.get("level", "word"))
    sizes = [int(s) for s in opened["sizes"]]
    V, order, total = sizes[0], len(sizes), sum(sizes)
    contexts = total - sizes[-1]
    levels = 1 << bits
    if not (1 <= bits <= 32 and 1 <= word_bits <= 32 and 1 <= child_bits <= 32) or V != len(vocab):
        raise ValueError("bad quantised layout")
    _check_length(opened["word_codes"], total - V, word_bits)
    _check_length(opened["prob_codes"], total - V, bits)
    _check_length(opened["backoff_codes"], contexts - V if order > 1 else 0, bits)
    _check_length(opened["children_codes"], contexts, child_bits)
    prob_tables = opened["prob_centres"].reshape(-1, levels)
    backoff_tables = opened["backoff_centres"].reshape(-1, levels)
    if len(prob_tables) != order - 1 or len(backoff_tables) != max(order - 2, 0):
        raise ValueError("centre tables do not match the orders")
    codes = np.empty(total - V, np.uint32)
    unpack(opened["word_codes"], word_bits, 0, codes)
    if len(codes) and codes.max() >= V:
        raise ValueError("a word id outside the vocabulary")
    word = np.concatenate([np.arange(V), codes]).astype(np.uint16 if V <= 1 << 16 else np.uint32)
    prob = np.empty(total, np.float32)
    prob[:V] = opened["unigram_prob"]
    backoff = np.empty(contexts, np.float32)
    backoff[:V] = opened["unigram_backoff"] if order > 1 else backoff[:0]
    at = V
    for n in range(2, order + 1):
        size = sizes[n - 1]
        unpack_lookup(opened["prob_codes"], bits, at - V, np.ascontiguousarray(prob_tables[n - 2]), prob[at:at + size])
        if n < order:
            unpack_lookup(opened["backoff_codes"], bits, at - V, np.ascontiguousarray(backoff_tables[n - 2]),
                          backoff[at:at + size])
        at += size
    if child_bits > MAX_CHILD_BITS:
        raise ValueError("child counts wider than a byte")
    small = np.empty(contexts, np.uint32)
    unpack(opened["children_codes"], child_bits, 0, small)
    big_at = opened["children_big_at"]
    if big_at.size and (big_at.min() < 0 or big_at.max() >= contexts):
        raise IndexError("children_big_at out of range")
    # as the unquantised file keeps them: one byte each, the counts from the escape code on kept aside
    children = (small.astype(np.uint8), big_at, opened["children_big"])
    model = NgramModel(vocab, sizes, word, prob, backoff, children, meta)
    model.quantized = {name: opened[name] for name in ARRAYS}
    return model


def _check_length(packed, n, bits):
    if len(packed) != (int(n) * int(bits) + 63) // 64:  # kernels.bitpack.packed_words
        raise ValueError("packed codes of the wrong length")


def unpack(packed, bits, first, n):
    """uint32[n]: the values ``first .. first+n-1`` of ``bits`` bits (1..32) in ``packed`` (uint64),
    as ``kernels.bitpack.unpack`` reads them, in NumPy.

    The layout repeats every ``bits / g`` words (g = gcd(bits, 64)), which hold ``64 / g`` values at
    the same offsets each time: the words are viewed as rows of one period, and each value's column
    is cut from them with one fixed shift, array-wide.
    """
    from math import gcd

    per, words = 64 // gcd(bits, 64), bits // gcd(bits, 64)
    p0, p1 = first // per, -(-(first + n) // per)
    held = packed[p0 * words:p1 * words]
    rows = np.zeros((p1 - p0) * words, np.uint64)  # the last period filled up with zeros
    rows[:len(held)] = held
    rows = rows.reshape(-1, words)  # a value never reaches past its period's last word
    out = np.empty((p1 - p0, per), np.uint32)
    mask = np.uint64((1 << bits) - 1)
    for j in range(per):
        word, shift = divmod(j * bits, 64)
        v = rows[:, word] >> np.uint64(shift)
        if shift + bits > 64:
            v |= rows[:, word + 1] << np.uint64(64 - shift)
        out[:, j] = v & mask
    return out.reshape(-1)[first - p0 * per:first - p0 * per + n]


def _unpack_into(packed, bits, first, out):
    out[:] = unpack(packed, bits, first, len(out))


def _unpack_lookup(packed, bits, first, table, out):
    out[:] = table[unpack(packed, bits, first, len(out))]


def file_bytes(model):
    """Bytes of the arrays the quantised form of ``model`` stores (for reports)."""
    return sum(int(a.nbytes) for a in model.quantized.values())

