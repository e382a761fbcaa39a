"""Output layers of the recurrent LM: full softmax and class-factored softmax, loss and gradients.

Loss is cross-entropy in nats, -log p(y | h), summed over targets (targets < 0 are padding: no loss,
no gradient); ``scale`` multiplies every gradient (1 / tokens gives the mean). Output weights are
W: [V, H] and b: [V], logits z = h W' + b (PyTorch's nn.Linear layout; with tying W is the embedding).

Full softmax: three matmuls per block of rows (logits; dh = P W; dW += P' h) with the exp/normalise
passes fused between them; blocks are as large as ``BLOCK_ELEMENTS`` allows, since BLAS efficiency,
not cache residency, decides the speed here (measurements there). For SGD the weights' gradient can
be written transposed instead (dW' = h' P, ``TransposedGradient``), which OpenBLAS runs 1.2x faster
(on a 12k vocabulary: 28 ms against 34-38 ms for a 700-token segment) and the update reads as it is.

Class-factored softmax (Mikolov et al. 2011, "Extensions of recurrent neural network LM"):
    p(w | h) = p(c(w) | h) p(w | c(w), h),  classes c = 0..C-1 with class weights Wc: [C, H], bc: [C].
Output rows are in *position* order, where each class covers a contiguous range start[c]..start[c+1];
``WordClasses.rank`` maps word ids to positions. Per token only the C class logits and the logits of
the target's class are computed: tokens are grouped by class so that each class is a small matmul.
Its weight gradient covers most rows of W at every step (on KJV 9,600 of 12,388 with exchange
classes), and the output rows' passes over memory are what a class step spends most on after the
recurrent layers: for SGD the gradient can instead stay as per-class factors (p - onehot and the
hidden rows, ``FactoredGradient``), which the update multiplies out straight into W.
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..threads import even_ranges
from .dense import HELPER, KERNEL, check, exp, fmax, gemm
from .optim import add_spans, sgd_step, squared_norm

BLOCK_ELEMENTS = 1 << 24
"""Logits per full-softmax block (64 MB in float32), at most 1024 rows. Measured on a 12k vocabulary:
bigger blocks keep BLAS nearer its peak (the 3 x (N x H x V) matmuls are ~90% of the time, the
softmax passes over the block ~10%), so a whole 35 x 20 segment is one block (session 13, with the
gradient transposed: 98.7 ms; blocks of 350 rows: 102.3 ms; 175: 113.7 ms; 88: 126.2 ms)."""
CLASS_BUDGET = 1 << 16
"""Logits per class-softmax chunk (rows x class size), 256 KB in float32: stays in L2."""


@njit(**HELPER)
def _exp_row(zi, b, t):
    """zi <- exp(zi + b - max) in place; returns (log softmax at t as float64, sum of the exps).

    zi, b: float[m]. Functions of their own, so LLVM sees plain 1-D arrays and vectorises the loops.
    """
    m = zi.shape[0]
    mx = zi[0] + b[0]
    for j in range(m):
        v = zi[j] + b[j]
        zi[j] = v
        mx = fmax(mx, v)
    zt = zi[t]
    s = zi.dtype.type(0.0)
    for j in range(m):
        e = exp(zi[j] - mx)
        zi[j] = e
        s += e
    return np.float64(zt) - np.float64(mx) - math.log(np.float64(s)), s


@njit(**HELPER)
def _gradient_row(zi, f, db):
    """zi <- zi * f (exps to scaled probabilities); db += zi. zi, db: float[m]."""
    for j in range(zi.shape[0]):
        v = zi[j] * f
        zi[j] = v
        db[j] += v


@njit(**HELPER)
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


@njit(**HELPER)
def full_softmax(hs, W, b, y, scale, block, grad, dhs, dW, db, logp, z, hb, dhb, rows, tgt, dWT):
    """Full-softmax cross-entropy of N tokens; returns the loss sum (float64).

    hs: float[N, H]; W: float[V, H]; b: float[V]; y: int32[N] targets (< 0: ignored);
    block: rows per block; grad: also backward, writing dhs: float[N, H] (zero for ignored rows) and
    accumulating dW: float[V, H], db: float[V]; logp: float64[N] written (0 for ignored rows).
    Scratch: z: float[block * V]; hb, dhb: float[block, H]; rows, tgt: int32[N].
    dWT: float[H, V] to have the weights' gradient written there transposed instead of added to dW
    (else float[0, *]): OpenBLAS makes h' P 1.2x faster than P' h on these shapes (12k words), and
    the SGD step can read it transposed (``subtract_transposed``).
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
    transposed = grad and dWT.shape[0] > 0
    if transposed and n == 0:
        dWT[:] = 0.0
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
        zk = z[:k * V].reshape((k, V))
        _block(hk, W, b, tgt[:k], scale, zk, grad, dk, dW[:0] if transposed else dW, db, lp)
        if transposed:
            gemm(True, False, 1.0, hk, zk, 0.0 if s == 0 else 1.0, dWT)
        for i in range(k):
            logp[rows[s + i]] = lp[i]
            total -= lp[i]
            if grad and not contiguous:
                dhs[rows[s + i], :] = dk[i, :]
    return total


@njit(**KERNEL)
def class_softmax(hs, Wc, bc, W, b, start, word_class, y, scale, budget, grad, dhs, dWc, dbc, dW, db,
                  logp, z, hb, dhb, rows, tgt, yc, factors, factors_at, tokens_at):
    """Class-factored softmax cross-entropy of N tokens; returns the loss sum (float64) and a norm.

    hs: float[N, H]; Wc: float[C, H]; bc: float[C]; W: float[V, H]; b: float[V] (rows in position
    order); start: int32[C+1] class ranges; word_class: int32[V] class of each position;
    y: int32[N] target positions (< 0: ignored). budget: logits per chunk of a class.
    grad: also backward, writing dhs: float[N, H] and accumulating dWc, dbc, dW, db.
    logp: float64[N] written with log p(c(y)) + log p(y | c(y)) (0 for ignored rows).
    Scratch: z: float[max(budget, N * C, largest class * H)]; hb, dhb: float[N, H]; rows, tgt, yc: int32[N].
    hb ends up holding the hidden rows grouped by class: rows tokens_at[c]:tokens_at[c+1] are class c's
    (tokens_at: int64[C+1], written).

    Deferred gradient: with ``factors`` of at least sum over tokens of their class's size (else pass
    float[0]), dW is not touched. Class c's gradient is left as the product of its factors instead:
        dW[start[c]:start[c+1]] = Z_c' hb[tokens_at[c]:tokens_at[c+1]]
    where Z_c = factors[factors_at[c]:factors_at[c+1]] reshaped [k_c, m_c] is scale * (p - onehot)
    (factors_at: int64[C+1], written). ``apply_factors`` then updates W with them: an SGD step
    that reads and writes W's rows once, where the gradient rows would make four more passes over
    memory (accumulate, norm, update, clear).

    Also returns the squared norm (float64) of the rows of dW and db it wrote (or that the factors
    stand for), as they stand after this call (0 without grad): taken class by class while the rows
    are in cache, it spares the gradient clipping a pass over them.
    """
    N, H = hs.shape
    C = Wc.shape[0]
    for i in range(N):
        yc[i] = word_class[y[i]] if y[i] >= 0 else -1
    total = full_softmax(hs, Wc, bc, yc, scale, N, grad, dhs, dWc, dbc, logp, z, hb, dhb, rows, tgt, dWc[:0])
    # Group the valid tokens by class (counting sort): rows[offset[c]:offset[c+1]] are class c's.
    offset = tokens_at
    offset[:] = 0
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
    defer = grad and factors.shape[0] > 0
    lp = np.empty(N, np.float64)
    written = 0.0
    at = 0
    for c in range(C):
        s, e = start[c], start[c + 1]
        m = e - s
        factors_at[c] = at
        if m == 1 or offset[c] == offset[c + 1]:
            continue  # p(w | c) = 1: no loss, no gradient; or no token of this class
        per = max(1, min(N, budget // m))
        for r0 in range(offset[c], offset[c + 1], per):
            k = min(offset[c + 1], r0 + per) - r0
            for i in range(k):
                tgt[i] = y[rows[r0 + i]] - s
                hb[r0 + i, :] = hs[rows[r0 + i], :]
            if defer:
                zk = factors[at:at + k * m].reshape((k, m))
                at += k * m
                dWk = dW[s:s]  # no rows: the weights' gradient stays in the factors
            else:
                zk = z[:k * m].reshape((k, m))
                dWk = dW[s:e]
            _block(hb[r0:r0 + k], W[s:e], b[s:e], tgt[:k], scale, zk, grad, dhb[:k], dWk, db[s:e], lp[:k])
            for i in range(k):
                logp[rows[r0 + i]] += lp[i]
                total -= lp[i]
                if grad:
                    dhs[rows[r0 + i], :] += dhb[i, :]
        if defer:
            written += squared_norm(db[s:e]) + _product_norm(
                factors[factors_at[c]:at].reshape((offset[c + 1] - offset[c], m)), hb[offset[c]:offset[c + 1]], z)
        elif grad:
            written += squared_norm(db[s:e]) + squared_norm(dW.reshape(dW.size)[s * H:e * H])
    factors_at[C] = at
    return total, written


@njit(**HELPER)
def _product_norm(a, b, scratch):
    """Squared Frobenius norm (float64) of a' b for a: float[k, m], b: float[k, H], written out in
    scratch: float[>= m * H] when k is large, else from dot products: ||a' b||^2 = sum over i, j of
    (a_i . a_j)(b_i . b_j)."""
    k, m = a.shape
    H = b.shape[1]
    if k * (m + H) >= m * H:
        d = scratch[:m * H]
        gemm(True, False, 1.0, a, b, 0.0, d.reshape((m, H)))
        return squared_norm(d)
    total = 0.0
    for i in range(k):
        total += np.float64(_dot(a[i], a[i])) * np.float64(_dot(b[i], b[i]))
        for j in range(i):
            total += 2.0 * np.float64(_dot(a[i], a[j])) * np.float64(_dot(b[i], b[j]))
    return total


@njit(**HELPER)
def _dot(u, v):
    s = u.dtype.type(0.0)
    for i in range(u.shape[0]):
        s += u[i] * v[i]
    return s


@njit(**KERNEL)
def apply_factors(W, start, factors, factors_at, hb, tokens_at, rate, c0, c1):
    """W[start[c]:start[c+1]] -= rate * Z_c' hb_c for the classes c0 <= c < c1 with tokens: the SGD
    step of a deferred class-softmax gradient (see ``class_softmax``), one product per class."""
    for c in range(c0, c1):
        if factors_at[c + 1] == factors_at[c]:
            continue  # no token, or a one-word class
        s, e = start[c], start[c + 1]
        z = factors[factors_at[c]:factors_at[c + 1]].reshape((tokens_at[c + 1] - tokens_at[c], e - s))
        gemm(True, False, -rate, z, hb[tokens_at[c]:tokens_at[c + 1]], 1.0, W[s:e])


@njit(**KERNEL)
def subtract_transposed(W, gT, rate, r0, r1):
    """W[r] -= rate * gT[:, r] for r0 <= r < r1: the SGD step of a gradient kept transposed (gT:
    float[H, V]). Each block of 16 rows is gathered from gT into a tile in L1, then subtracted from
    W a row at a time (vectorised): 2.9 ms for a 12k x 200 W, against 5.2 ms written in place."""
    H = W.shape[1]
    a = W.dtype.type(rate)
    tile = np.empty((16, H), W.dtype)
    for v0 in range(r0, r1, 16):
        n = min(r1, v0 + 16) - v0
        for j in range(H):
            row = gT[j]
            for v in range(n):
                tile[v, j] = row[v0 + v]
        for v in range(n):
            sgd_step(W[v0 + v], tile[v], a)


@njit(**KERNEL)
def transposed_norm(gT, r0, r1):
    """Squared norm (float64) of gT[:, r0:r1]."""
    total = 0.0
    for j in range(gT.shape[0]):
        total += squared_norm(gT[j, r0:r1])
    return total


@njit(**KERNEL)
def factors_norm(start, factors, factors_at, hb, tokens_at, c0, c1):
    """Squared norm (float64) of the deferred gradient's rows of the classes c0 <= c < c1."""
    total = 0.0
    scratch = np.empty(0, hb.dtype)
    for c in range(c0, c1):
        if factors_at[c + 1] > factors_at[c]:
            m = start[c + 1] - start[c]
            if scratch.shape[0] < m * hb.shape[1]:
                scratch = np.empty(m * hb.shape[1], hb.dtype)
            total += _product_norm(factors[factors_at[c]:factors_at[c + 1]].reshape(
                (tokens_at[c + 1] - tokens_at[c], m)), hb[tokens_at[c]:tokens_at[c + 1]], scratch)
    return total


@njit(**KERNEL)
def join_factors(factors, factors_at, hb, tokens_at, out_factors, out_factors_at, out_hb, out_tokens_at, c0, c1):
    """Deferred gradients of S shards (tuples ``factors`` and ``hb`` of their arrays, with their
    int64[S, C+1] offsets) summed into one, in shard order, for the classes c0 <= c < c1: each
    class's factors and hidden rows are the shards' one after the other (Z' H = sum of Z_s' H_s), at
    ``out_factors_at`` and ``out_tokens_at``, the sums of the shards' offsets. Threads may join
    disjoint ranges of classes at once."""
    S = factors_at.shape[0]
    for c in range(c0, c1):
        at = out_factors_at[c]
        row = out_tokens_at[c]
        for s in range(S):
            a, b = factors_at[s, c], factors_at[s, c + 1]
            if b == a:
                continue  # no token of this class in shard s, or a one-word class (no factors)
            out_factors[at:at + b - a] = factors[s][a:b]
            at += b - a
            for r in range(tokens_at[s, c], tokens_at[s, c + 1]):
                out_hb[row, :] = hb[s][r, :]
                row += 1


@njit(**HELPER)
def _normalise_rows(z, lo, hi, weight):
    """z[:, lo:hi] = softmax(z[:, lo:hi]) * weight[:] (in place). z: float[n, m]; weight: float[n]."""
    for i in range(z.shape[0]):
        _normalise_row(z[i, lo:hi], weight[i])


@njit(**HELPER)
def _normalise_row(zi, weight):
    """zi <- softmax(zi) * weight in place. zi: float[m]."""
    mx = zi[0]
    for j in range(zi.shape[0]):
        mx = fmax(mx, zi[j])
    s = zi.dtype.type(0.0)
    for j in range(zi.shape[0]):
        e = exp(zi[j] - mx)
        zi[j] = e
        s += e
    f = zi.dtype.type(weight / s)
    for j in range(zi.shape[0]):
        zi[j] *= f


@njit(**HELPER)
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


@dataclass(frozen=True, eq=False)
class FactoredGradient:
    """A class softmax's gradient of W left as factors (``ClassSoftmax.loss(..., defer=True)``): class
    c's rows are Z_c' H_c (see ``class_softmax``), where Z_c are the class's scaled p - onehot and H_c
    its tokens' hidden rows. Methods take an optional range of classes (c0, c1), so that threads can
    share the work (``split``) on disjoint rows."""

    start: np.ndarray
    factors: np.ndarray
    factors_at: np.ndarray
    hidden: np.ndarray
    tokens_at: np.ndarray

    def _range(self, classes):
        return classes if classes is not None else (0, len(self.start) - 1)

    def apply(self, W, rate, classes=None):
        """W -= rate * gradient, on the rows of the classes it covers (an SGD step)."""
        apply_factors(W, self.start, self.factors, self.factors_at, self.hidden, self.tokens_at, rate,
                      *self._range(classes))

    def squared_norm(self, classes=None):
        """The gradient's squared norm (float64)."""
        return factors_norm(self.start, self.factors, self.factors_at, self.hidden, self.tokens_at,
                            *self._range(classes))

    def split(self, parts):
        """``parts`` ranges of classes (c0, c1) with near-equal shares of the factors (of the work)."""
        C = len(self.start) - 1
        cuts = np.searchsorted(self.factors_at, self.factors_at[-1] * np.arange(1, parts) / parts)
        edges = [0, *np.minimum(cuts, C).tolist(), C]
        return [(a, b) for a, b in zip(edges[:-1], edges[1:])]

    @classmethod
    def join_normed(cls, parts, map_fn=map, shares=1):
        """The sum of deferred gradients (shards of one batch) as one, class by class in the parts'
        order, and its squared norm: ``map_fn(fn, ranges)`` may share the classes out to threads
        (``shares`` ranges), each joining its classes and norming them while they are in cache."""
        if len(parts) == 1:
            return parts[0], sum(map_fn(parts[0].squared_norm, parts[0].split(shares)))
        factors, hidden = tuple(p.factors for p in parts), tuple(p.hidden for p in parts)
        factors_at = np.stack([p.factors_at for p in parts])
        tokens_at = np.stack([p.tokens_at for p in parts])
        out = cls(parts[0].start, np.empty(sum(len(f) for f in factors), factors[0].dtype), factors_at.sum(axis=0),
                  np.empty((sum(len(h) for h in hidden), hidden[0].shape[1]), hidden[0].dtype), tokens_at.sum(axis=0))

        def join(classes):
            join_factors(factors, factors_at, hidden, tokens_at, out.factors, out.factors_at, out.hidden,
                         out.tokens_at, *classes)
            return out.squared_norm(classes)

        return out, sum(map_fn(join, out.split(shares)))


@dataclass(frozen=True, eq=False)
class TransposedGradient:
    """A full softmax's gradient of W, kept transposed (``FullSoftmax.loss(..., defer=True)``; valid
    until that output layer's next ``loss``). Methods take an optional range of rows of W (r0, r1)."""

    transposed: np.ndarray

    def _range(self, rows):
        return rows if rows is not None else (0, self.transposed.shape[1])

    def apply(self, W, rate, rows=None):
        """W -= rate * gradient (an SGD step)."""
        subtract_transposed(W, self.transposed, rate, *self._range(rows))

    def squared_norm(self, rows=None):
        """The gradient's squared norm (float64)."""
        return transposed_norm(self.transposed, *self._range(rows))

    def split(self, parts):
        """``parts`` near-equal ranges of rows of W."""
        return even_ranges(self.transposed.shape[1], parts)

    @classmethod
    def join_normed(cls, parts, map_fn=map, shares=1):
        """The sum of deferred gradients (shards of one batch), added in the parts' order into the
        first one's array, and its squared norm, taken in the same pass; ``map_fn(fn, ranges)`` may
        share the additions out to threads (``shares`` ranges)."""
        if len(parts) == 1:
            return parts[0], sum(map_fn(parts[0].squared_norm, parts[0].split(shares)))
        total = parts[0].transposed.reshape(-1)
        V = parts[0].transposed.shape[1]

        def add(rows):
            spans = np.array([[rows[0] * V, rows[1] * V]], np.int64)
            for part in parts[1:]:
                norm2 = add_spans(total, part.transposed.reshape(-1), spans)
            return norm2
        return parts[0], sum(map_fn(add, even_ranges(parts[0].transposed.shape[0], shares)))


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
        self.deferred = None
        """After ``loss`` with ``defer``: the deferred gradient (else None)."""
        self._written = None  # (deferred, db) of the last loss with defer, for written_norm2

    @property
    def written_norm2(self):
        """After ``loss`` with ``defer``: the squared norm of the gradient of W (deferred) and b as they
        stand (else None: the norm of a written gradient is left to the caller). Taken when first
        asked for, so that shards of a batch, whose gradients are normed once joined, skip it."""
        if self._written is None:
            return None
        if not isinstance(self._written, float):
            deferred, db = self._written
            self._written = deferred.squared_norm() + squared_norm(db)
        return self._written

    def param_shapes(self):
        return {"W": (self.V, self.H), "b": (self.V,)}

    def _run(self, hs, p, y, scale, grad, dhs, g, dWT=None):
        N = hs.shape[0]
        blk = max(1, -(-N // -(-N // self.block)))  # equal blocks of at most self.block rows
        dt, s = hs.dtype, self.scratch
        logp = np.empty(N, np.float64)
        loss = full_softmax(hs, p["W"], p["b"], y, scale, blk, grad, dhs, g["W"], g["b"], logp,
                            s.get("z", blk * self.V, dt), s.get("hb", blk * self.H, dt).reshape(blk, self.H),
                            s.get("dhb", blk * self.H, dt).reshape(blk, self.H),
                            s.get("rows", N, np.int32), s.get("tgt", N, np.int32),
                            np.empty((0, self.V), dt) if dWT is None else dWT)
        return loss, logp

    def loss(self, hs, p, y, scale, dhs, g, defer=False):
        """Loss sum over targets y: int32[N] (positions; < 0 ignored); writes dhs, accumulates g.

        ``defer``: leave g["W"] alone and keep this call's gradient of W, transposed, in ``deferred``
        (a ``TransposedGradient``, whose ``apply`` makes the SGD step), else ``deferred`` is None.
        """
        _check_rows(hs, y, self.H)
        check("dhs", dhs, hs.shape, hs.dtype)
        self._written = self.deferred = None
        if not defer:
            return self._run(hs, p, y, scale, True, dhs, g)[0]
        dWT = self.scratch.get("dWT", self.H * self.V, hs.dtype).reshape(self.H, self.V)
        loss = self._run(hs, p, y, scale, True, dhs, g, dWT)[0]
        self.deferred = TransposedGradient(dWT)
        self._written = (self.deferred, g["b"])
        return loss

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
        self.sizes = np.diff(classes.start)
        self.largest = int(self.sizes.max())
        self.scratch = _Scratch()
        self.written_norm2 = self.deferred = None
        """After ``loss``: the squared norm of g["W"] (or of the deferred gradient) and g["b"] over
        ``touched_rows(y)`` as they stood after that call (taken in the kernel while the rows were in
        cache); the deferred gradient or None."""

    def param_shapes(self):
        C = self.classes.n_classes
        return {"W": (self.V, self.H), "b": (self.V,), "Wc": (C, self.H), "bc": (C,)}

    def _run(self, hs, p, y, scale, grad, dhs, g, defer=False):
        N, H = hs.shape
        C = self.classes.n_classes
        dt, s = hs.dtype, self.scratch
        logp = np.empty(N, np.float64)
        zsize = max(self.budget, N * C, self.largest * (H if defer else 1))
        cl = self.classes
        if defer:  # arrays of their own: they outlive this call
            factors = np.empty(int(self.sizes[cl.word_class[y[y >= 0]]].sum()), dt)
            hidden = np.empty((N, H), dt)
        else:
            factors, hidden = np.empty(0, dt), s.get("hb", N * H, dt).reshape(N, H)
        factors_at, tokens_at = np.empty(C + 1, np.int64), np.empty(C + 1, np.int64)
        loss, written = class_softmax(hs, p["Wc"], p["bc"], p["W"], p["b"], cl.start, cl.word_class, y,
                                      scale, self.budget, grad, dhs, g["Wc"], g["bc"], g["W"], g["b"], logp,
                                      s.get("z", zsize, dt), hidden, s.get("dhb", N * H, dt).reshape(N, H),
                                      s.get("rows", N, np.int32), s.get("tgt", N, np.int32),
                                      s.get("yc", N, np.int32), factors, factors_at, tokens_at)
        deferred = FactoredGradient(cl.start, factors, factors_at, hidden, tokens_at) if defer else None
        return loss, logp, written, deferred

    def loss(self, hs, p, y, scale, dhs, g, defer=False):
        """Loss sum over targets y: int32[N] (positions; < 0 ignored); writes dhs, accumulates g.

        ``defer``: leave g["W"] alone and keep its gradient as factors in ``deferred`` (a
        ``FactoredGradient``, whose ``apply`` makes the SGD step), else ``deferred`` is None.
        """
        _check_rows(hs, y, self.H)
        check("dhs", dhs, hs.shape, hs.dtype)
        loss, _, self.written_norm2, self.deferred = self._run(hs, p, y, scale, True, dhs, g, defer)
        return loss

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
