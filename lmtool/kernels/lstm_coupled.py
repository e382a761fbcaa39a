"""LSTM with coupled input and forget gates over a segment of T steps, forward and backward.

No input gate: what the forget gate lets go is filled from the candidate (the CIFG variant of
Greff et al. 2017, "LSTM: A Search Space Odyssey"), three gate blocks instead of four:
    a_t = x_t U + h_{t-1} W + b;  f, o = sigmoid(a_f, a_o);  g = tanh(a_g)
    c_t = f * c_{t-1} + (1 - f) * g;  h_t = o * tanh(c_t)
The cell protocol (workspace, reset, forward/backward) is described in ``lmtool.kernels.lstm``.
"""

import numpy as np
from numba import njit

from .dense import (KERNEL, add_product_unmasked, check, check_grads, check_segment, gemm,
                    masked_rows, sigmoid, step_product, tanh)

GATES = 3
STATE = ("h", "c")
FORGET_BLOCK = 0


def param_shapes(I, H):
    """Weights of one layer: U: [I, 3H], W: [H, 3H], b: [3H] (gate blocks f, g, o)."""
    return {"U": (I, 3 * H), "W": (H, 3 * H), "b": (3 * H,)}


def workspace(T, B, I, H, dtype):
    """Arrays for one segment: states h, c: [T+1, B, H]; gates [T, B, 3H]; tanh(c) [T, B, H]; scratch."""
    e = np.empty
    return {"h": e((T + 1, B, H), dtype), "c": e((T + 1, B, H), dtype), "gates": e((T, B, 3 * H), dtype),
            "tc": e((T, B, H), dtype), "da": e((T, B, 3 * H), dtype), "dc": e((B, H), dtype),
            "tmp": e((B, H), dtype), "hs": e((B, H), dtype)}


@njit(**KERNEL)
def _forward_row(a, b, cp, cn, tcn, hn):
    """One row of one step: a: float[3H] pre-activations (bias excluded) -> gates f, g, o in place;
    b: float[3H]; cp: float[H] c_{t-1}; cn, tcn, hn: float[H] written with c_t, tanh(c_t), h_t.
    A function of its own so that LLVM vectorises the loop.
    """
    H = cp.shape[0]
    for j in range(H):
        fg = sigmoid(a[j] + b[j])
        gg = tanh(a[H + j] + b[H + j])
        og = sigmoid(a[2 * H + j] + b[2 * H + j])
        cc = gg + fg * (cp[j] - gg)  # f c_{t-1} + (1 - f) g
        th = tanh(cc)
        a[j] = fg
        a[H + j] = gg
        a[2 * H + j] = og
        cn[j] = cc
        tcn[j] = th
        hn[j] = og * th


@njit(**KERNEL)
def _backward_row(a, cp, tcn, dht, dcr, d, db, keep):
    """One row of one step backwards: gates a: float[3H]; cp: c_{t-1}, tcn: tanh(c_t), dht: dloss/dh_t,
    all float[H]; dcr: float[H] dloss/dc_t from step t+1, replaced by dloss/dc_{t-1} (times keep);
    d: float[3H] written with dloss/d pre-activations; db: float[3H] accumulated.
    """
    H = cp.shape[0]
    one = a.dtype.type(1.0)
    for j in range(H):
        fg = a[j]
        gg = a[H + j]
        og = a[2 * H + j]
        th = tcn[j]
        dct = dcr[j] + dht[j] * og * (one - th * th)
        df = dct * (cp[j] - gg) * fg * (one - fg)
        dg = dct * (one - fg) * (one - gg * gg)
        do = dht[j] * th * og * (one - og)
        d[j] = df
        d[H + j] = dg
        d[2 * H + j] = do
        db[j] += df
        db[H + j] += dg
        db[2 * H + j] += do
        dcr[j] = dct * fg * keep


@njit(**KERNEL)
def lstm_coupled_forward(x, U, W, b, h, c, gates, tc, reset, hs):
    """Run the coupled-gate LSTM over T steps (equations in the module docstring).

    x: float[T, B, I]; U: float[I, 3H]; W: float[H, 3H]; b: float[3H];
    h, c: float[T+1, B, H] (index 0 given, 1..T written; c[t] rows with reset[t] zeroed in place);
    gates: float[T, B, 3H] written with f, g, o after their nonlinearities;
    tc: float[T, B, H] written with tanh(c[t+1]); reset: bool[T, B]; hs: float[B, H] scratch.
    """
    T, B, I = x.shape
    H = W.shape[0]
    gemm(False, False, 1.0, x.reshape((T * B, I)), U, 0.0, gates.reshape((T * B, 3 * H)))
    for t in range(T):
        for r in range(B):
            if reset[t, r]:
                c[t, r, :] = 0.0
        step_product(masked_rows(h[t], reset[t], hs), W, 1.0, gates[t])
        for r in range(B):
            _forward_row(gates[t, r], b, c[t, r], c[t + 1, r], tc[t, r], h[t + 1, r])


@njit(**KERNEL)
def lstm_coupled_backward(x, U, W, h, c, gates, tc, reset, dh, dx, dU, dW, db, da, dc, tmp):
    """Backpropagate through the T steps of ``lstm_coupled_forward``; weight gradients are accumulated.

    Inputs as left by lstm_coupled_forward (h rows entering a reset step are zeroed here, in place).
    dh: float[T, B, H] dloss/dh[t+1] from above; the recurrent part is added in place.
    dx: float[T, B, I] written with dloss/dx. dU: float[I, 3H], dW: float[H, 3H], db: float[3H] (+=).
    da: float[T, B, 3H] scratch (dloss/d pre-activations); dc, tmp: float[B, H] scratch.
        dc_t += dh_t o (1 - tanh^2 c_t);  da_f = dc_t (c_{t-1} - g) f(1-f);  da_g = dc_t (1-f)(1-g^2);
        da_o = dh_t tanh(c_t) o(1-o);  dc_{t-1} = dc_t f;  dh_{t-1} += da_t W'
    """
    T, B, I = x.shape
    H = W.shape[0]
    Wt = np.ascontiguousarray(W.T)
    one = W.dtype.type(1.0)
    zero = W.dtype.type(0.0)
    for t in range(T):
        for r in range(B):
            if reset[t, r]:
                h[t, r, :] = 0.0
    dc[:] = 0.0
    for t in range(T - 1, -1, -1):
        for r in range(B):
            _backward_row(gates[t, r], c[t, r], tc[t, r], dh[t, r], dc[r], da[t, r], db,
                          zero if reset[t, r] else one)
        if t > 0:
            add_product_unmasked(dh[t - 1], da[t], Wt, reset[t], tmp)
    da2 = da.reshape((T * B, 3 * H))
    gemm(True, False, 1.0, h.reshape(((T + 1) * B, H))[:T * B], da2, 1.0, dW)
    gemm(True, False, 1.0, x.reshape((T * B, I)), da2, 1.0, dU)
    gemm(False, True, 1.0, da2, U, 0.0, dx.reshape((T * B, I)))


def forward(x, p, ws, reset, activation=None):
    """Fill ws["h"][1:], ws["c"][1:] (and the saved gates) from x and ws["h"][0], ws["c"][0]."""
    T, B, I, H, dtype = check_segment(x, p, ws, reset, param_shapes)
    check("c", ws["c"], (T + 1, B, H), dtype)
    lstm_coupled_forward(x, p["U"], p["W"], p["b"], ws["h"], ws["c"], ws["gates"], ws["tc"], reset, ws["hs"])


def backward(x, p, ws, reset, dh, dx, g, activation=None):
    """Accumulate weight gradients into g (same keys as p), write dx; dh is consumed as work."""
    T, B, I, H, dtype = check_segment(x, p, ws, reset, param_shapes)
    check_grads(p, g, dh, dx, T, B, I, H, dtype)
    lstm_coupled_backward(x, p["U"], p["W"], ws["h"], ws["c"], ws["gates"], ws["tc"], reset, dh, dx,
                          g["U"], g["W"], g["b"], ws["da"], ws["dc"], ws["tmp"])
