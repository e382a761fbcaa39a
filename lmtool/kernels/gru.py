"""GRU layer over a segment of T steps, forward and backward (truncated BPTT), for a minibatch of B.

PyTorch's formulation (Cho et al. 2014, reset gate applied after the hidden matmul), gates r, z, n:
    r = sigmoid(x W_ir + b_ir + h W_hr + b_hr);   z = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn));  h_t = (1 - z) * n + z * h_{t-1}
Weights: U = [W_ir | W_iz | W_in]: [I, 3H], W = [W_hr | W_hz | W_hn]: [H, 3H],
b = (b_ir + b_hr, b_iz + b_hz, b_in): [3H], bn = b_hn: [H]. The cell protocol (workspace, reset,
forward/backward) is described in ``lmtool.kernels.lstm``.
"""

import numpy as np
from numba import njit

from .dense import (KERNEL, add_product_unmasked, check_grads, check_segment, gemm,
                    masked_rows, sigmoid, step_product, tanh)

GATES = 3
STATE = ("h",)
PROJECTION, PROJECTION_GRAD = "gates", "dgi"


def param_shapes(I, H):
    """Weights of one layer: U: [I, 3H], W: [H, 3H], b: [3H] (blocks r, z, n), bn: [H]."""
    return {"U": (I, 3 * H), "W": (H, 3 * H), "b": (3 * H,), "bn": (H,)}


def workspace(T, B, I, H, dtype):
    """Arrays for one segment: h: [T+1, B, H]; gates r, z, n: [T, B, 3H]; h W_hn + b_hn: [T, B, H]."""
    e = np.empty
    return {"h": e((T + 1, B, H), dtype), "gates": e((T, B, 3 * H), dtype), "hn": e((T, B, H), dtype),
            "dgi": e((T, B, 3 * H), dtype), "dgh": e((T, B, 3 * H), dtype), "hw": e((B, 3 * H), dtype),
            "tmp": e((B, H), dtype), "hs": e((B, H), dtype)}


@njit(**KERNEL)
def _forward_row(a, w, b, bn, hp, hnr, hr):
    """One row of one step: a: float[3H] input-side pre-activations -> r, z, n in place; w: float[3H]
    h_{t-1} W; hp: float[H] h_{t-1}; hnr, hr: float[H] written with h_{t-1} W_hn + b_hn and h_t.

    A function of its own so that LLVM sees plain 1-D arrays and vectorises the loop.
    """
    H = hp.shape[0]
    one = a.dtype.type(1.0)
    for j in range(H):
        rg = sigmoid(a[j] + b[j] + w[j])
        zg = sigmoid(a[H + j] + b[H + j] + w[H + j])
        hv = w[2 * H + j] + bn[j]
        ng = tanh(a[2 * H + j] + b[2 * H + j] + rg * hv)
        a[j] = rg
        a[H + j] = zg
        a[2 * H + j] = ng
        hnr[j] = hv
        hr[j] = (one - zg) * ng + zg * hp[j]


@njit(**KERNEL)
def _backward_row(a, hp, hnr, dht, gi, gh, db, dbn):
    """One row of one step backwards: gates a: float[3H]; hp, hnr, dht: float[H] h_{t-1},
    h_{t-1} W_hn + b_hn, dloss/dh_t; gi, gh: float[3H] written; db: float[3H], dbn: float[H] (+=).
    """
    H = hp.shape[0]
    one = a.dtype.type(1.0)
    for j in range(H):
        rg = a[j]
        zg = a[H + j]
        ng = a[2 * H + j]
        dn = dht[j] * (one - zg)
        dz = dht[j] * (hp[j] - ng)
        dan = dn * (one - ng * ng)
        dar = dan * hnr[j] * rg * (one - rg)
        daz = dz * zg * (one - zg)
        gi[j] = dar
        gi[H + j] = daz
        gi[2 * H + j] = dan
        gh[j] = dar
        gh[H + j] = daz
        gh[2 * H + j] = dan * rg
        db[j] += dar
        db[H + j] += daz
        db[2 * H + j] += dan
        dbn[j] += dan * rg


@njit(**KERNEL)
def _add_scaled_by_gate(dprev, dht, a):
    """dprev += dht * z, the direct path h_{t-1} -> h_t. dprev, dht: float[H]; a: float[3H] (r, z, n)."""
    H = dprev.shape[0]
    for j in range(H):
        dprev[j] += dht[j] * a[H + j]


@njit(**KERNEL)
def gru_forward(x, U, W, b, bn, h, gates, hn, reset, hs, hw, projected=False):
    """Run the GRU over T steps (equations in the module docstring).

    x: float[T, B, I]; U: float[I, 3H]; W: float[H, 3H]; b: float[3H]; bn: float[H];
    h: float[T+1, B, H] (h[0] given, 1..T written); gates: float[T, B, 3H] written with r, z, n;
    hn: float[T, B, H] written with h_{t-1} W_hn + b_hn; reset: bool[T, B];
    hs: float[B, H], hw: float[B, 3H] scratch. ``projected``: gates holds x U already.
    """
    T, B, I = x.shape
    H = W.shape[0]
    if not projected:
        gemm(False, False, 1.0, x.reshape((T * B, I)), U, 0.0, gates.reshape((T * B, 3 * H)))
    for t in range(T):
        hp_all = masked_rows(h[t], reset[t], hs)
        step_product(hp_all, W, 0.0, hw)
        for r in range(B):
            _forward_row(gates[t, r], hw[r], b, bn, hp_all[r], hn[t, r], h[t + 1, r])


@njit(**KERNEL)
def gru_backward(x, U, W, h, gates, hn, reset, dh, dx, dU, dW, db, dbn, dgi, dgh, tmp, projected=False):
    """Backpropagate through the T steps of ``gru_forward``; weight gradients are accumulated.

    Inputs as left by gru_forward (h rows entering a reset step are zeroed here, in place).
    dh: float[T, B, H] dloss/dh[t+1] from above; the recurrent part is added in place.
    dx: float[T, B, I] written. dU: [I, 3H], dW: [H, 3H], db: [3H], dbn: [H] (+=).
    dgi, dgh: float[T, B, 3H] written: dloss/d(input-side and hidden-side pre-activations). With
    ``projected``, dU's share from x and dx are left to the caller (from dgi).
        dn = dh (1-z); dz = dh (h_{t-1} - n); da_n = dn (1-n^2); da_r = da_n hn r(1-r);
        da_z = dz z(1-z); dh_{t-1} += dh z + [da_r, da_z, da_n r] W'
    """
    T, B, I = x.shape
    H = W.shape[0]
    Wt = np.ascontiguousarray(W.T)
    for t in range(T):
        for r in range(B):
            if reset[t, r]:
                h[t, r, :] = 0.0
    for t in range(T - 1, -1, -1):
        for r in range(B):
            _backward_row(gates[t, r], h[t, r], hn[t, r], dh[t, r], dgi[t, r], dgh[t, r], db, dbn)
            if t > 0 and not reset[t, r]:
                _add_scaled_by_gate(dh[t - 1, r], dh[t, r], gates[t, r])
        if t > 0:
            add_product_unmasked(dh[t - 1], dgh[t], Wt, reset[t], tmp)
    gi2 = dgi.reshape((T * B, 3 * H))
    gemm(True, False, 1.0, h.reshape(((T + 1) * B, H))[:T * B], dgh.reshape((T * B, 3 * H)), 1.0, dW)
    if not projected:
        gemm(True, False, 1.0, x.reshape((T * B, I)), gi2, 1.0, dU)
        gemm(False, True, 1.0, gi2, U, 0.0, dx.reshape((T * B, I)))


def forward(x, p, ws, reset, activation=None, projected=False):
    """Fill ws["h"][1:] (and the saved gates) from x and ws["h"][0]."""
    check_segment(x, p, ws, reset, param_shapes)
    gru_forward(x, p["U"], p["W"], p["b"], p["bn"], ws["h"], ws["gates"], ws["hn"], reset, ws["hs"],
                ws["hw"], projected)


def backward(x, p, ws, reset, dh, dx, g, activation=None, projected=False):
    """Accumulate weight gradients into g (same keys as p), write dx; dh is consumed as work."""
    T, B, I, H, dtype = check_segment(x, p, ws, reset, param_shapes)
    check_grads(p, g, dh, dx, T, B, I, H, dtype)
    gru_backward(x, p["U"], p["W"], ws["h"], ws["gates"], ws["hn"], reset, dh, dx, g["U"], g["W"],
                 g["b"], g["bn"], ws["dgi"], ws["dgh"], ws["tmp"], projected)
