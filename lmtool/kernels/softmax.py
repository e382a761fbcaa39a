"""Output layers of the recurrent LM: full softmax and class-factored softmax, loss and gradients.

Loss is cross-entropy in nats, -log p(y | h), summed over targets (targets < 0 are padding: no loss,
no gradient); ``scale`` multiplies every gradient (1 / tokens gives the mean). Output weights are
W: [V, H] and b: [V], logits z = h W' + b (PyTorch's nn.Linear layout; with tying W is the embedding).

Full softmax: three matmuls per block of rows (logits; dh = P W; dW += P' h) with the exp/normalise
passes fused between them; blocks are as large as ``BLOCK_ELEMENTS`` allows, since BLAS efficiency,
not cache residency, decides the speed here (measurements there).

Class-factored softmax (Mikolov et al. 2011, "Extensions of recurrent neural network LM"):
    p(w | h) = p(c(w) | h) p(w | c(w), h),  classes c = 0..C-1 with class weights Wc: [C, H], bc: [C].
Output rows are in *position* order, where each class covers a contiguous range start[c]..start[c+1];
``WordClasses.rank`` maps word ids to positions. Per token only the C class logits and the logits of
the target's class are computed: tokens are grouped by class so that each class is a small matmul.
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .dense import KERNEL, check, exp, gemm

BLOCK_ELEMENTS = 1 << 24
"""Logits per full-softmax block (64 MB in float32), at most 1024 rows. Measured on a 12k vocabulary:
bigger blocks keep BLAS nearer its peak (3 x (N x H x V) matmuls are ~98% of the time; the softmax
passes over the block ~1.5%), so a whole 35 x 20 segment is one block (129 ms; 256-row blocks that
stay in L3: 136 ms; 64 rows: 161 ms)."""
CLASS_BUDGET = 1 << 16
"""Logits per class-softmax chunk (rows x class size), 256 KB in float32: stays in L2."""


@njit(**KERNEL)
def _exp_row(zi, b, t):
    """zi <- exp(zi + b - max) in place; returns (log softmax at t as float64, sum of the exps).

    zi, b: float[m]. Functions of their own, so LLVM sees plain 1-D arrays and vectorises the loops.
    """
    m = zi.shape[0]
    mx = zi[0] + b[0]
    for j in range(m):
        v = zi[j] + b[j]
        zi[j] = v
        mx = max(mx, v)
    zt = zi[t]
    s = zi.dtype.type(0.0)
    for j in range(m):
        e = exp(zi[j] - mx)
        zi[j] = e
        s += e
    return np.float64(zt) - np.float64(mx) - math.log(np.float64(s)), s


@njit(**KERNEL)
def _gradient_row(zi, f, db):
    """zi <- zi * f (exps to scaled probabilities); db += zi. zi, db: float[m]."""
    for j in range(zi.shape[0]):
        v = zi[j] * f
        zi[j] = v
        db[j] += v


@njit(**KERNEL)
def _block(hb, W, b, tgt, scale, z, grad, dhb, dW, db, logp):
    """Softmax cross-entropy of n rows over m outputs, and its gradients.

    hb: float[n, H] hidden rows; W: float[m, H]; b: float[m]; tgt: int32[n] in [0, m);
    z: float[n, m] scratch (logits, then scale * (p - onehot)); grad: whether to do the backward;
    dhb: float[n, H] written with dloss/dhb; dW: float[m, H], db: float[m] accumulated;
    logp: float64[n] written with log p(tgt) = z_tgt - max - log(sum exp(z - max)).
    """
    n, m = z.shape
    gemm(False, True, 1.0, hb, W, 0.0, z)
    for i in range(n):
        t = tgt[i]
        logp[i], s = _exp_row(z[i], b, t)
        if grad:
            _gradient_row(z[i], z.dtype.type(scale / s), db)
            z[i, t] -= scale
            db[t] -= scale
    if grad:
        gemm(False, False, 1.0, z, W, 0.0, dhb)
        gemm(True, False, 1.0, z, hb, 1.0, dW)


@njit(**KERNEL)
def full_softmax(hs, W, b, y, scale, block, grad, dhs, dW, db, logp, z, hb, dhb, rows, tgt):
    """Full-softmax cross-entropy of N tokens; returns the loss sum (float64).

    hs: float[N, H]; W: float[V, H]; b: float[V]; y: int32[N] targets (< 0: ignored);
    block: rows per block; grad: also backward, writing dhs: float[N, H] (zero for ignored rows) and
    accumulating dW: float[V, H], db: float[V]; logp: float64[N] written (0 for ignored rows).
    Scratch: z: float[block * V]; hb, dhb: float[block, H]; rows, tgt: int32[N].
    """
    N, H = hs.shape
    V = W.shape[0]
    n = 0
    for i in range(N):
        logp[i] = 0.0
        if y[i] >= 0:
            rows[n] = i
            n += 1
        elif grad:
            dhs[i, :] = 0.0
    contiguous = n == N
    total = 0.0
    for s in range(0, n, block):
        k = min(n, s + block) - s
        for i in range(k):
            tgt[i] = y[rows[s + i]]
        if contiguous:
            hk = hs[s:s + k]
            dk = dhs[s:s + k] if grad else dhb[:k]
        else:
            hk = hb[:k]
            dk = dhb[:k]
            for i in range(k):
                hk[i, :] = hs[rows[s + i], :]
        lp = np.empty(k, np.float64)
        _block(hk, W, b, tgt[:k], scale, z[:k * V].reshape((k, V)), grad, dk, dW, db, lp)
        for i in range(k):
            logp[rows[s + i]] = lp[i]
            total -= lp[i]
            if grad and not contiguous:
                dhs[rows[s + i], :] = dk[i, :]
    return total


@njit(**KERNEL)
def class_softmax(hs, Wc, bc, W, b, start, word_class, y, scale, budget, grad, dhs, dWc, dbc, dW, db,
                  logp, z, hb, dhb, rows, tgt, yc):
    """Class-factored softmax cross-entropy of N tokens; returns the loss sum (float64).

    hs: float[N, H]; Wc: float[C, H]; bc: float[C]; W: float[V, H]; b: float[V] (rows in position
    order); start: int32[C+1] class ranges; word_class: int32[V] class of each position;
    y: int32[N] target positions (< 0: ignored). budget: logits per chunk of a class.
    grad: also backward, writing dhs: float[N, H] and accumulating dWc, dbc, dW, db.
    logp: float64[N] written with log p(c(y)) + log p(y | c(y)) (0 for ignored rows).
    Scratch: z: float[max(budget, N * C, largest class)]; hb, dhb: float[N, H]; rows, tgt, yc: int32[N].
    """
    N, H = hs.shape
    C = Wc.shape[0]
    for i in range(N):
        yc[i] = word_class[y[i]] if y[i] >= 0 else -1
    total = full_softmax(hs, Wc, bc, yc, scale, N, grad, dhs, dWc, dbc, logp, z, hb, dhb, rows, tgt)
    # Group the valid tokens by class (counting sort): rows[offset[c]:offset[c+1]] are class c's.
    offset = np.zeros(C + 1, np.int64)
    for i in range(N):
        if yc[i] >= 0:
            offset[yc[i] + 1] += 1
    for c in range(C):
        offset[c + 1] += offset[c]
    fill = offset[:C].copy()
    for i in range(N):
        if yc[i] >= 0:
            rows[fill[yc[i]]] = i
            fill[yc[i]] += 1
    lp = np.empty(N, np.float64)
    for c in range(C):
        s, e = start[c], start[c + 1]
        m = e - s
        if m == 1:
            continue  # p(w | c) = 1: no loss, no gradient
        per = max(1, min(N, budget // m))
        for r0 in range(offset[c], offset[c + 1], per):
            k = min(offset[c + 1], r0 + per) - r0
            for i in range(k):
                tgt[i] = y[rows[r0 + i]] - s
                hb[i, :] = hs[rows[r0 + i], :]
            _block(hb[:k], W[s:e], b[s:e], tgt[:k], scale, z[:k * m].reshape((k, m)), grad, dhb[:k],
                   dW[s:e], db[s:e], lp[:k])
            for i in range(k):
                logp[rows[r0 + i]] += lp[i]
                total -= lp[i]
                if grad:
                    dhs[rows[r0 + i], :] += dhb[i, :]
    return total


@njit(**KERNEL)
def _normalise_rows(z, lo, hi, weight):
    """z[:, lo:hi] = softmax(z[:, lo:hi]) * weight[:] (in place). z: float[n, m]; weight: float[n]."""
    for i in range(z.shape[0]):
        _normalise_row(z[i, lo:hi], weight[i])


@njit(**KERNEL)
def _normalise_row(zi, weight):
    """zi <- softmax(zi) * weight in place. zi: float[m]."""
    mx = zi[0]
    for j in range(zi.shape[0]):
        mx = max(mx, zi[j])
    s = zi.dtype.type(0.0)
    for j in range(zi.shape[0]):
        e = exp(zi[j] - mx)
        zi[j] = e
        s += e
    f = zi.dtype.type(weight / s)
    for j in range(zi.shape[0]):
        zi[j] *= f


@njit(**KERNEL)
def full_distribution(hs, W, b, out):
    """out = softmax(hs W' + b) row by row. hs: float[n, H]; W: float[V, H]; b: float[V]; out: float[n, V]."""
    gemm(False, True, 1.0, hs, W, 0.0, out)
    for i in range(out.shape[0]):
        out[i, :] += b
    _normalise_rows(out, 0, out.shape[1], np.ones(out.shape[0], out.dtype))


@njit(**KERNEL)
def class_distribution(hs, Wc, bc, W, b, start, zc, out):
    """out[:, w] = p(c(w) | h) p(w | c(w), h) over all V positions. zc: float[n, C] scratch.

    hs: float[n, H]; Wc: float[C, H]; bc: float[C]; W: float[V, H]; b: float[V]; start: int32[C+1];
    out: float[n, V] (position order).
    """
    full_distribution(hs, Wc, bc, zc)
    gemm(False, True, 1.0, hs, W, 0.0, out)
    for i in range(out.shape[0]):
        out[i, :] += b
    for c in range(zc.shape[1]):
        _normalise_rows(out, start[c], start[c + 1], np.ascontiguousarray(zc[:, c]))


# ---------------------------------------------------------------------------------------------------
# Word classes.

@dataclass(frozen=True, eq=False)
class WordClasses:
    """Words binned into frequency classes, with word <-> output-position maps.

    order: int32[V], the word id at each output position (positions sorted by falling frequency);
    rank: int32[V], the position of each word id (inverse of order);
    start: int32[C+1], class c holds positions start[c] .. start[c+1]-1;
    word_class: int32[V], the class of each position.
    """

    order: np.ndarray
    rank: np.ndarray
    start: np.ndarray
    word_class: np.ndarray

    @property
    def n_classes(self):
        return len(self.start) - 1

    @classmethod
    def from_arrays(cls, order, start):
        """Rebuild from ``order`` and ``start`` (what a model file stores)."""
        order = np.ascontiguousarray(order, np.int32)
        start = np.ascontiguousarray(start, np.int32)
        V = len(order)
        if start[0] != 0 or start[-1] != V or np.any(np.diff(start) <= 0):
            raise ValueError(f"class starts must rise strictly from 0 to {V}, found {start[:5]}...")
        rank = np.empty(V, np.int32)
        rank[order] = np.arange(V, dtype=np.int32)
        if not np.array_equal(order[rank], np.arange(V)):
            raise ValueError("class order is not a permutation of the word ids")
        word_class = np.repeat(np.arange(len(start) - 1, dtype=np.int32), np.diff(start))
        return cls(order, rank, start, word_class)

    def arrays(self):
        """{name: int32 array} to save; ``from_arrays(**arrays())`` rebuilds the classes."""
        return {"order": self.order, "start": self.start}


def make_classes(counts, n_classes=None, method="sqrt"):
    """Bin words into about ``n_classes`` (default round(sqrt(V))) frequency classes.

    counts: int[V] unigram counts by word id. Words are sorted by falling count (ties by id) and cut
    into consecutive classes of about equal mass, where a word weighs sqrt(count) (``"sqrt"``, the
    default, as in Mikolov's RNNLM) or its count (``"mass"``: equal probability per class, RNNLM's
    -old-classes). A word goes to the class containing the midpoint of its mass; classes left empty by
    very frequent words are dropped, so the result may have fewer classes than asked for.

    Cost per token is C + the size of the target's class. On KJV (V = 12,388, C = 111): "sqrt" gives
    131 logits per token (largest class 391 words); "mass" gives 194, because equal-probability classes
    of rare words are huge (5,802 words). With "sqrt", 60 classes would give 97 logits per token.
    """
    counts = np.asarray(counts, np.float64)
    V = len(counts)
    if counts.ndim != 1 or V == 0 or np.any(counts < 0):
        raise ValueError(f"counts: expected non-negative counts per word, found shape {counts.shape}")
    C = int(round(math.sqrt(V))) if n_classes is None else int(n_classes)
    if not 1 <= C <= V:
        raise ValueError(f"n_classes: expected 1..{V} (the vocabulary size), found {C}")
    if method not in ("sqrt", "mass"):
        raise ValueError(f"method: expected 'sqrt' or 'mass', found {method!r}")
    order = np.argsort(-counts, kind="stable").astype(np.int32)
    weight = counts[order] if method == "mass" else np.sqrt(counts[order])
    total = weight.sum()
    if total == 0:
        weight, total = np.ones(V), float(V)
    mid = np.cumsum(weight) - weight / 2
    cls = np.minimum((mid * C / total).astype(np.int64), C - 1)
    firsts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
    start = np.r_[firsts, V].astype(np.int32)
    return WordClasses.from_arrays(order, start)


# ---------------------------------------------------------------------------------------------------
# Output layers: one object per kind, behind the same interface (see ``OUTPUTS``).

class _Scratch:
    """Reusable scratch arrays, grown on demand (avoids re-faulting 10 MB buffers every segment)."""

    def __init__(self):
        self.arrays = {}

    def get(self, name, size, dtype):
        a = self.arrays.get(name)
        if a is None or a.size < size or a.dtype != dtype:
            a = self.arrays[name] = np.empty(max(size, 1), dtype)
        return a[:size]


def _check_rows(hs, y, H):
    if not isinstance(hs, np.ndarray) or hs.ndim != 2 or hs.shape[1] != H:
        raise ValueError(f"hs: expected float[N, {H}], found {getattr(hs, 'shape', type(hs))}")
    check("hs", hs, hs.shape, hs.dtype)
    if y is not None:
        check("y", y, (hs.shape[0],), np.int32)


class FullSoftmax:
    """Softmax over all V words: parameters W: [V, H], b: [V]."""

    def __init__(self, V, H, block_rows=None):
        self.V, self.H = V, H
        self.block = block_rows or max(64, min(1024, BLOCK_ELEMENTS // V))
        self.scratch = _Scratch()

    def param_shapes(self):
        return {"W": (self.V, self.H), "b": (self.V,)}

    def _run(self, hs, p, y, scale, grad, dhs, g):
        N = hs.shape[0]
        blk = max(1, -(-N // -(-N // self.block)))  # equal blocks of at most self.block rows
        dt, s = hs.dtype, self.scratch
        logp = np.empty(N, np.float64)
        loss = full_softmax(hs, p["W"], p["b"], y, scale, blk, grad, dhs, g["W"], g["b"], logp,
                            s.get("z", blk * self.V, dt), s.get("hb", blk * self.H, dt).reshape(blk, self.H),
                            s.get("dhb", blk * self.H, dt).reshape(blk, self.H),
                            s.get("rows", N, np.int32), s.get("tgt", N, np.int32))
        return loss, logp

    def loss(self, hs, p, y, scale, dhs, g):
        """Loss sum over targets y: int32[N] (positions; < 0 ignored); writes dhs, accumulates g."""
        _check_rows(hs, y, self.H)
        check("dhs", dhs, hs.shape, hs.dtype)
        return self._run(hs, p, y, scale, True, dhs, g)[0]

    def log_probs(self, hs, p, y):
        """float64[N] natural-log probabilities of targets y (0 where y < 0)."""
        _check_rows(hs, y, self.H)
        e2, e1 = np.empty((0, self.H), hs.dtype), np.empty(0, hs.dtype)
        return self._run(hs, p, y, 0.0, False, e2, {"W": e2, "b": e1})[1]

    def touched_rows(self, y):
        """Row ranges (starts, ends) of W and b that ``loss`` writes for targets y: all of them."""
        return np.array([0]), np.array([self.V])

    def distribution(self, hs, p):
        """float[n, V] next-position distributions for hidden rows hs: float[n, H]."""
        _check_rows(hs, None, self.H)
        out = np.empty((hs.shape[0], self.V), hs.dtype)
        full_distribution(hs, p["W"], p["b"], out)
        return out


class ClassSoftmax:
    """Class-factored softmax: parameters W: [V, H], b: [V] (position order), Wc: [C, H], bc: [C]."""

    def __init__(self, V, H, classes, budget=CLASS_BUDGET):
        if len(classes.order) != V:
            raise ValueError(f"classes cover {len(classes.order)} words, the vocabulary has {V}")
        self.V, self.H, self.classes, self.budget = V, H, classes, budget
        self.largest = int(np.diff(classes.start).max())
        self.scratch = _Scratch()

    def param_shapes(self):
        C = self.classes.n_classes
        return {"W": (self.V, self.H), "b": (self.V,), "Wc": (C, self.H), "bc": (C,)}

    def _run(self, hs, p, y, scale, grad, dhs, g):
        N, H = hs.shape
        C = self.classes.n_classes
        dt, s = hs.dtype, self.scratch
        logp = np.empty(N, np.float64)
        zsize = max(self.budget, N * C, self.largest)
        cl = self.classes
        loss = class_softmax(hs, p["Wc"], p["bc"], p["W"], p["b"], cl.start, cl.word_class, y, scale,
                             self.budget, grad, dhs, g["Wc"], g["bc"], g["W"], g["b"], logp,
                             s.get("z", zsize, dt), s.get("hb", N * H, dt).reshape(N, H),
                             s.get("dhb", N * H, dt).reshape(N, H), s.get("rows", N, np.int32),
                             s.get("tgt", N, np.int32), s.get("yc", N, np.int32))
        return loss, logp

    def loss(self, hs, p, y, scale, dhs, g):
        """Loss sum over targets y: int32[N] (positions; < 0 ignored); writes dhs, accumulates g."""
        _check_rows(hs, y, self.H)
        check("dhs", dhs, hs.shape, hs.dtype)
        return self._run(hs, p, y, scale, True, dhs, g)[0]

    def log_probs(self, hs, p, y):
        """float64[N] natural-log probabilities of targets y (0 where y < 0)."""
        _check_rows(hs, y, self.H)
        e2, e1 = np.empty((0, self.H), hs.dtype), np.empty(0, hs.dtype)
        return self._run(hs, p, y, 0.0, False, e2, {"W": e2, "b": e1, "Wc": e2, "bc": e1})[1]

    def touched_rows(self, y):
        """Row ranges (starts, ends) of W and b that ``loss`` writes for target positions y (< 0
        ignored): the classes of the targets, except one-word classes (p(w | c) = 1, no gradient)."""
        cl = self.classes
        c = np.unique(cl.word_class[y[y >= 0]])
        c = c[cl.start[c + 1] - cl.start[c] > 1]
        return cl.start[c], cl.start[c + 1]

    def distribution(self, hs, p):
        """float[n, V] next-position distributions for hidden rows hs: float[n, H]."""
        _check_rows(hs, None, self.H)
        out = np.empty((hs.shape[0], self.V), hs.dtype)
        zc = np.empty((hs.shape[0], self.classes.n_classes), hs.dtype)
        class_distribution(hs, p["Wc"], p["bc"], p["W"], p["b"], self.classes.start, zc, out)
        return out


OUTPUTS = {"full": FullSoftmax, "class": ClassSoftmax}
