"""LSTM with peephole connections over a segment of T steps, forward and backward (truncated BPTT).

The gates also see the cell through diagonal (per-unit) weights p_i, p_f, p_o (Gers & Schmidhuber
2000): input and forget gates the cell entering the step, the output gate the cell it leaves.
    a_t = x_t U + h_{t-1} W + b   (blocks i, f, g, o as ``lstm``)
    i = sigmoid(a_i + p_i * c_{t-1});  f = sigmoid(a_f + p_f * c_{t-1});  g = tanh(a_g)
    c_t = f * c_{t-1} + i * g;  o = sigmoid(a_o + p_o * c_t);  h_t = o * tanh(c_t)
With p = 0 it is ``lstm``. The cell protocol (workspace, reset, forward/backward) is described in
``lmtool.kernels.lstm``, except that ``forward`` leaves the rows of ``c`` entering a reset step as
they are (reading zeros in their place): the row is c_t of the step before, which the gradient of
p_o needs.
"""

import numpy as np
from numba import njit

from .dense import (KERNEL, add_product_unmasked, check, check_grads, check_segment, gemm,
                    masked_rows, sigmoid, step_product, tanh)

GATES = 4
STATE = ("h", "c")
FORGET_BLOCK = 1


def param_shapes(I, H):
    """Weights of one layer: U: [I, 4H], W: [H, 4H], b: [4H] (blocks i, f, g, o), peep: [3H] (p_i, p_f, p_o)."""
    return {"U": (I, 4 * H), "W": (H, 4 * H), "b": (4 * H,), "peep": (3 * H,)}


def workspace(T, B, I, H, dtype):
    """Arrays for one segment: states h, c: [T+1, B, H]; gates [T, B, 4H]; tanh(c) [T, B, H]; scratch."""
    e = np.empty
    return {"h": e((T + 1, B, H), dtype), "c": e((T + 1, B, H), dtype), "gates": e((T, B, 4 * H), dtype),
            "tc": e((T, B, H), dtype), "da": e((T, B, 4 * H), dtype), "dc": e((B, H), dtype),
            "tmp": e((B, H), dtype), "hs": e((B, H), dtype)}


@njit(**KERNEL)
def _forward_row(a, b, p, cp, cn, tcn, hn):
    """One row of one step: a: float[4H] pre-activations (bias and peepholes excluded) -> gates i, f,
    g, o in place; b: float[4H]; p: float[3H] peephole weights; cp: float[H] c_{t-1}; cn, tcn, hn:
    float[H] written with c_t, tanh(c_t), h_t. A function of its own so that LLVM vectorises the loop.

    The row of ``a`` is read before ``cp``: the other way round, LLVM (22, Numba 0.68) found an
    "unsafe indirect dependence" and left the loop scalar (the forward pass 1.5x slower).
    """
    H = cp.shape[0]
    for j in range(H):
        ai = a[j] + b[j]
        af = a[H + j] + b[H + j]
        ag = a[2 * H + j] + b[2 * H + j]
        ao = a[3 * H + j] + b[3 * H + j]
        c0 = cp[j]
        ig = sigmoid(ai + p[j] * c0)
        fg = sigmoid(af + p[H + j] * c0)
        gg = tanh(ag)
        cc = fg * c0 + ig * gg
        og = sigmoid(ao + p[2 * H + j] * cc)
        th = tanh(cc)
        a[j] = ig
        a[H + j] = fg
        a[2 * H + j] = gg
        a[3 * H + j] = og
        cn[j] = cc
        tcn[j] = th
        hn[j] = og * th


@njit(**KERNEL)
def _backward_row(a, p, cp, tcn, dht, dcr, d, db, keep):
    """One row of one step backwards: gates a: float[4H]; p: float[3H]; cp, tcn: c_{t-1}, tanh(c_t);
    dht: dloss/dh_t, all float[H]; dcr: float[H] dloss/dc_t from step t+1, replaced by dloss/dc_{t-1}
    (times keep); d: float[4H] written with dloss/d pre-activations; db: float[4H] accumulated.

    The peepholes' gradient is left to ``_peephole_grad_row``: accumulated here too, it stopped LLVM
    from vectorising the loop.
    """
    H = cp.shape[0]
    one = a.dtype.type(1.0)
    for j in range(H):
        ig = a[j]
        fg = a[H + j]
        gg = a[2 * H + j]
        og = a[3 * H + j]
        th = tcn[j]
        c0 = cp[j]
        do = dht[j] * th * og * (one - og)
        dct = dcr[j] + dht[j] * og * (one - th * th) + do * p[2 * H + j]
        di = dct * gg * ig * (one - ig)
        df = dct * c0 * fg * (one - fg)
        dg = dct * ig * (one - gg * gg)
        d[j] = di
        d[H + j] = df
        d[2 * H + j] = dg
        d[3 * H + j] = do
        db[j] += di
        db[H + j] += df
        db[2 * H + j] += dg
        db[3 * H + j] += do
        dcr[j] = (dct * fg + di * p[j] + df * p[H + j]) * keep


@njit(**KERNEL)
def _peephole_grad_row(d, cp, cn, dp):
    """dp += (d_i c_{t-1}, d_f c_{t-1}, d_o c_t) for one row: d: float[4H] dloss/d pre-activations;
    cp, cn: float[H] c_{t-1}, c_t; dp: float[3H] accumulated. Reads before writes, which LLVM vectorises."""
    H = cp.shape[0]
    for j in range(H):
        di = d[j]
        df = d[H + j]
        do = d[3 * H + j]
        c0 = cp[j]
        c1 = cn[j]
        dp[j] += di * c0
        dp[H + j] += df * c0
        dp[2 * H + j] += do * c1


@njit(**KERNEL)
def lstm_peephole_forward(x, U, W, b, peep, h, c, gates, tc, reset, hs):
    """Run the peephole LSTM over T steps (equations in the module docstring).

    x: float[T, B, I]; U: float[I, 4H]; W: float[H, 4H]; b: float[4H]; peep: float[3H] (p_i, p_f, p_o);
    h, c: float[T+1, B, H] (index 0 given, 1..T written; c[t] rows with reset[t] read as zeros);
    gates: float[T, B, 4H] written with i, f, g, o after their nonlinearities;
    tc: float[T, B, H] written with tanh(c[t+1]); reset: bool[T, B]; hs: float[B, H] scratch.
    """
    T, B, I = x.shape
    H = W.shape[0]
    zeros = np.zeros(H, c.dtype)
    gemm(False, False, 1.0, x.reshape((T * B, I)), U, 0.0, gates.reshape((T * B, 4 * H)))
    for t in range(T):
        step_product(masked_rows(h[t], reset[t], hs), W, 1.0, gates[t])
        for r in range(B):
            _forward_row(gates[t, r], b, peep, zeros if reset[t, r] else c[t, r], c[t + 1, r], tc[t, r],
                         h[t + 1, r])


@njit(**KERNEL)
def lstm_peephole_backward(x, U, W, peep, h, c, gates, tc, reset, dh, dx, dU, dW, db, dpeep, da, dc, tmp):
    """Backpropagate through the T steps of ``lstm_peephole_forward``; weight gradients are accumulated.

    Inputs as left by lstm_peephole_forward (h rows entering a reset step are zeroed here, in place).
    dh: float[T, B, H] dloss/dh[t+1] from above; the recurrent part is added in place.
    dx: float[T, B, I] written with dloss/dx. dU: float[I, 4H], dW: float[H, 4H], db: float[4H],
    dpeep: float[3H] (+=). da: float[T, B, 4H] scratch (dloss/d pre-activations); dc, tmp: float[B, H].
        da_o = dh_t tanh(c_t) o(1-o);  dc_t += dh_t o (1 - tanh^2 c_t) + da_o p_o;
        da_i = dc_t g i(1-i);  da_f = dc_t c_{t-1} f(1-f);  da_g = dc_t i (1-g^2);
        dp_i += da_i c_{t-1};  dp_f += da_f c_{t-1};  dp_o += da_o c_t;
        dc_{t-1} = dc_t f + da_i p_i + da_f p_f;  dh_{t-1} += da_t W'
    """
    T, B, I = x.shape
    H = W.shape[0]
    Wt = np.ascontiguousarray(W.T)
    one = W.dtype.type(1.0)
    zero = W.dtype.type(0.0)
    zeros = np.zeros(H, c.dtype)
    for t in range(T):
        for r in range(B):
            if reset[t, r]:
                h[t, r, :] = 0.0
    dc[:] = 0.0
    for t in range(T - 1, -1, -1):
        for r in range(B):
            cp = zeros if reset[t, r] else c[t, r]
            _backward_row(gates[t, r], peep, cp, tc[t, r], dh[t, r], dc[r], da[t, r], db, zero if reset[t, r] else one)
            _peephole_grad_row(da[t, r], cp, c[t + 1, r], dpeep)
        if t > 0:
            add_product_unmasked(dh[t - 1], da[t], Wt, reset[t], tmp)
    da2 = da.reshape((T * B, 4 * H))
    gemm(True, False, 1.0, h.reshape(((T + 1) * B, H))[:T * B], da2, 1.0, dW)
    gemm(True, False, 1.0, x.reshape((T * B, I)), da2, 1.0, dU)
    gemm(False, True, 1.0, da2, U, 0.0, dx.reshape((T * B, I)))


def forward(x, p, ws, reset, activation=None):
    """Fill ws["h"][1:], ws["c"][1:] (and the saved gates) from x and ws["h"][0], ws["c"][0]."""
    T, B, I, H, dtype = check_segment(x, p, ws, reset, param_shapes)
    check("c", ws["c"], (T + 1, B, H), dtype)
    lstm_peephole_forward(x, p["U"], p["W"], p["b"], p["peep"], ws["h"], ws["c"], ws["gates"], ws["tc"], reset,
                          ws["hs"])


def backward(x, p, ws, reset, dh, dx, g, activation=None):
    """Accumulate weight gradients into g (same keys as p), write dx; dh is consumed as work."""
    T, B, I, H, dtype = check_segment(x, p, ws, reset, param_shapes)
    check_grads(p, g, dh, dx, T, B, I, H, dtype)
    lstm_peephole_backward(x, p["U"], p["W"], p["peep"], ws["h"], ws["c"], ws["gates"], ws["tc"], reset, dh, dx,
                           g["U"], g["W"], g["b"], g["peep"], ws["da"], ws["dc"], ws["tmp"])
