"""Kernels of the fixed-window neural LM (Bengio et al. 2003): windows, embedding gather and scatter,
the tanh hidden layer forward and backward.

For a target w_t and its window of N previous words (``<s>`` where the window reaches past the
sentence start), the model computes
    x = [C(w_{t-N}), ..., C(w_{t-1})]          (concatenated embeddings, float[N*E])
    h = tanh(x U + d)                           (U: [N*E, H], d: [H])
then a softmax over [h] or, with direct connections, over [h, x] (``lmtool.kernels.softmax``):
the paper's y = b + W x + V tanh(d + H x), with the output layer reading the concatenation.

Arrays may be column slices of wider ones (a window's x and h side by side in one [B, H + N*E]
buffer that the output layer reads whole): the kernels take any row stride with unit stride along
the last axis. The wrappers below check that, the shapes and the dtypes before calling them.
"""

import numpy as np
from numba import njit

from .dense import FLOATS, KERNEL, gemm, tanh


@njit(cache=True, nogil=True)
def window_contexts(x, offset, rows, pad, ctx):
    """ctx[b] = the N inputs up to and including x[rows[b]], ``pad`` where they lie before the sentence.

    x: int32[n] the input stream (``<s> w1 .. wk`` per sentence); offset: int32[n] the position of
    each input in its sentence (0 at its ``<s>``); rows: int64[B] stream positions; pad: the id put
    before a sentence start (``<s>``); ctx: int32[B, N] written, oldest word first.
    """
    N = ctx.shape[1]
    for b in range(rows.shape[0]):
        p = rows[b]
        seen = offset[p]
        for j in range(N):  # j words back from the newest
            ctx[b, N - 1 - j] = x[p - j] if j <= seen else pad


@njit(**KERNEL)
def gather_windows(table, ctx, x):
    """x[b, k*E:(k+1)*E] = table[ctx[b, k]]: a window's embeddings, concatenated.

    table: float[V, E]; ctx: int32[B, N] rows of ``table``; x: float[B, N*E] written.
    """
    E = table.shape[1]
    for b in range(ctx.shape[0]):
        for k in range(ctx.shape[1]):
            x[b, k * E:(k + 1) * E] = table[ctx[b, k]]


@njit(**KERNEL)
def scatter_windows(dx, ctx, grad_table):
    """grad_table[ctx[b, k]] += dx[b, k*E:(k+1)*E]: ``gather_windows``' backward pass.

    dx: float[B, N*E]; ctx: int32[B, N]; grad_table: float[V, E] (accumulated, row after row in order,
    so a word seen twice gets the same sum every run).
    """
    E = grad_table.shape[1]
    for b in range(ctx.shape[0]):
        for k in range(ctx.shape[1]):
            _add_row(grad_table[ctx[b, k]], dx[b, k * E:(k + 1) * E])


@njit(**KERNEL)
def _add_row(out, a):
    for j in range(out.shape[0]):
        out[j] += a[j]


@njit(**KERNEL)
def _tanh_row(h, d):
    """h = tanh(h + d) in place for one row (a function of its own so that it vectorises)."""
    for j in range(h.shape[0]):
        h[j] = tanh(h[j] + d[j])


@njit(**KERNEL)
def hidden_forward(x, U, d, h):
    """h = tanh(x U + d).  x: float[B, I]; U: float[I, H]; d: float[H]; h: float[B, H] written."""
    gemm(False, False, 1.0, x, U, 0.0, h)
    for b in range(h.shape[0]):
        _tanh_row(h[b], d)


@njit(**KERNEL)
def _da_row(dh, h, dd):
    """dh <- dh (1 - h^2) (the gradient at the pre-activation); dd += it. Rows of float[H]."""
    one = dh.dtype.type(1.0)
    for j in range(dh.shape[0]):
        v = dh[j] * (one - h[j] * h[j])
        dh[j] = v
        dd[j] += v


@njit(**KERNEL)
def hidden_backward(x, U, h, dh, dU, dd, dx, beta):
    """Backward of ``hidden_forward``, from dh = dloss/dh (overwritten with dloss/da):
        da = dh (1 - h^2);  dU += x' da;  dd += sum over rows of da;  dx = da U' + beta dx
    x: float[B, I]; U: float[I, H]; h, dh: float[B, H]; dU: float[I, H], dd: float[H] (accumulated);
    dx: float[B, I] (beta 1 adds to what it holds: the direct connections' share of the gradient).
    """
    for b in range(h.shape[0]):
        _da_row(dh[b], h[b], dd)
    gemm(True, False, 1.0, x, dh, 1.0, dU)
    gemm(False, True, 1.0, dh, U, beta, dx)


@njit(**KERNEL)
def multiply_rows(a, mask, out):
    """out = a * mask elementwise (dropout). a, mask, out: float[B, n] (out may alias a)."""
    for b in range(a.shape[0]):
        _multiply_row(a[b], mask[b], out[b])


@njit(**KERNEL)
def _multiply_row(a, m, out):
    for j in range(a.shape[0]):
        out[j] = a[j] * m[j]


# ---------------------------------------------------------------------------------------------------
# Validating wrappers.

def _rows(name, a, shape, dtype):
    """Raise ValueError unless ``a`` is an ndarray of ``shape`` and ``dtype`` with unit stride along
    its last axis (a column slice of a wider C-contiguous array is fine)."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, found {type(a).__name__}")
    if a.shape != tuple(shape) or a.dtype != dtype:
        raise ValueError(f"{name}: expected {np.dtype(dtype).name}{list(shape)}, found {a.dtype.name}{list(a.shape)}")
    if a.ndim and a.shape[-1] > 1 and a.strides[-1] != a.itemsize:
        raise ValueError(f"{name}: expected unit stride along the last axis; pass np.ascontiguousarray({name})")
    if a.ndim == 2 and a.shape[0] > 1 and a.strides[0] < a.shape[1] * a.itemsize:
        raise ValueError(f"{name}: rows overlap (row stride {a.strides[0]} bytes)")


def _ids(name, ids, shape, limit):
    _rows(name, ids, shape, np.int32)
    if ids.size and (ids.min() < 0 or ids.max() >= limit):
        raise ValueError(f"{name}: expected ids in [0, {limit}), found {ids.min()}..{ids.max()}")


def contexts(x, offset, rows, window, pad):
    """int32[B, window]: the windows of history of the stream positions ``rows`` (see ``window_contexts``)."""
    _rows("x", x, x.shape, np.int32)
    _rows("offset", offset, x.shape, np.int32)
    rows = np.ascontiguousarray(rows, np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= len(x))):
        raise ValueError(f"rows: expected positions in [0, {len(x)})")
    if window < 1:
        raise ValueError(f"window: expected a positive number of words, found {window}")
    ctx = np.empty((len(rows), window), np.int32)
    window_contexts(x, offset, rows, np.int32(pad), ctx)
    return ctx


def gather(table, ctx, x):
    """``gather_windows`` after checking: x = the concatenated embeddings of the windows ``ctx``."""
    _check_windows("table", table, ctx, "x", x)
    gather_windows(table, ctx, x)


def scatter(dx, ctx, grad_table):
    """``scatter_windows`` after checking: grad_table's rows += their share of dx."""
    _check_windows("grad_table", grad_table, ctx, "dx", dx)
    scatter_windows(dx, ctx, grad_table)


def _check_windows(table_name, table, ctx, rows_name, rows):
    """A table float[V, E], windows int32[B, N] of its rows, and rows float[B, N*E] of its dtype."""
    V, E = table.shape
    B, N = ctx.shape
    _rows(table_name, table, (V, E), table.dtype)
    _ids("ctx", ctx, (B, N), V)
    _rows(rows_name, rows, (B, N * E), table.dtype)


def _hidden_args(x, U, d, h):
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype not in FLOATS:
        raise ValueError(f"x: expected float32 or float64 [B, I], found {getattr(x, 'dtype', type(x))}"
                         f"{list(getattr(x, 'shape', ()))}")
    (B, I), H = x.shape, d.shape[0]
    for name, a, shape in (("x", x, (B, I)), ("U", U, (I, H)), ("d", d, (H,)), ("h", h, (B, H))):
        _rows(name, a, shape, x.dtype)
    return B, I, H


def forward(x, U, d, h):
    """h = tanh(x U + d) (``hidden_forward``) after checking shapes and dtypes."""
    _hidden_args(x, U, d, h)
    hidden_forward(x, U, d, h)


def backward(x, U, h, dh, dU, dd, dx, accumulate=False):
    """``hidden_backward`` after checking: dh is consumed, dU and dd accumulated, dx written (or
    added to, with ``accumulate``)."""
    B, I, H = _hidden_args(x, U, dd, h)
    for name, a, shape in (("dh", dh, (B, H)), ("dU", dU, (I, H)), ("dx", dx, (B, I))):
        _rows(name, a, shape, x.dtype)
    hidden_backward(x, U, h, dh, dU, dd, dx, 1.0 if accumulate else 0.0)


def dropout(a, mask, out):
    """out = a * mask (``multiply_rows``) after checking."""
    _rows("a", a, a.shape, a.dtype)
    _rows("mask", mask, a.shape, a.dtype)
    _rows("out", out, a.shape, a.dtype)
    multiply_rows(a, mask, out)
