"""Softmax kernels of the recurrent LM's output layers: loss, gradients, distributions.

Loss is cross-entropy in nats, -log p(y | h), summed over targets (targets < 0 are padding: no loss,
no gradient); ``scale`` multiplies every gradient (1 / tokens gives the mean). Output weights are
W: [V, H] and b: [V], logits z = h W' + b (PyTorch's nn.Linear layout; with tying W is the embedding).

Full softmax (``full_softmax``): three matmuls per block of rows (logits; dh = P W; dW += P' h) with
the exp/normalise passes fused between them. For SGD the weights' gradient can be written transposed
instead (dW' = h' P), which OpenBLAS runs about 1.2x faster on a 12k vocabulary, and applied by
``subtract_transposed``.

Class-factored softmax (``class_softmax``; Mikolov et al. 2011, "Extensions of recurrent neural
network LM"):
    p(w | h) = p(c(w) | h) p(w | c(w), h),  classes c = 0..C-1 with class weights Wc: [C, H], bc: [C].
Output rows are in *position* order, where each class covers a contiguous range start[c]..start[c+1].
Per token only the C class logits and the logits of the target's class are computed: tokens are
grouped by class so that each class is a small matmul. For SGD the weights' gradient can stay as
per-class factors (p - onehot and the hidden rows), which ``apply_factors`` multiplies out straight
into W. The objects that drive these kernels are in ``lmtool.neural.output``.
"""

import math

import numpy as np
from numba import njit

from .dense import HELPER, KERNEL, exp, fmax, gemm
from .param_update import sgd_step, squared_norm

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
