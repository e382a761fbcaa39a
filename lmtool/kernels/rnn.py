"""Vanilla (Elman) RNN layer over a segment of T steps, forward and backward (truncated BPTT).

    h_t = f(x_t U + h_{t-1} W + b),  f in {tanh, relu, sigmoid}                        (Elman 1990)
With relu and W = identity, b = 0 this is Le et al.'s IRNN (2015). The derivative of f is taken from
its output (1 - h^2, [h > 0], h (1 - h)). The cell protocol (workspace, reset, forward/backward) is
described in ``lmtool.kernels.lstm``.
"""

import numpy as np
from numba import njit

from .dense import (KERNEL, add_product_unmasked, check_grads, check_segment, gemm,
                    masked_rows, sigmoid, step_product, tanh)

GATES = 1
STATE = ("h",)
PROJECTION, PROJECTION_GRAD = "a", "a"
ACTIVATIONS = {"tanh": 0, "relu": 1, "sigmoid": 2}


def param_shapes(I, H):
    """Weights of one layer: U: [I, H], W: [H, H], b: [H]."""
    return {"U": (I, H), "W": (H, H), "b": (H,)}


def workspace(T, B, I, H, dtype):
    """Arrays for one segment: h: [T+1, B, H]; pre-activations (then their gradients) a: [T, B, H]."""
    e = np.empty
    return {"h": e((T + 1, B, H), dtype), "a": e((T, B, H), dtype), "tmp": e((B, H), dtype),
            "hs": e((B, H), dtype)}


@njit(**KERNEL)
def _forward_row(at, b, hr, act):
    """hr = f(at + b) for one row: at, b, hr: float[H]. A function of its own so that it vectorises."""
    zero = at.dtype.type(0.0)
    if act == 0:
        for j in range(hr.shape[0]):
            hr[j] = tanh(at[j] + b[j])
    elif act == 1:
        for j in range(hr.shape[0]):
            hr[j] = max(at[j] + b[j], zero)
    else:
        for j in range(hr.shape[0]):
            hr[j] = sigmoid(at[j] + b[j])


@njit(**KERNEL)
def _backward_row(d, hr, dht, db, act):
    """d = dht * f'(a), f' from the output hr, for one row; db += d. d, hr, dht, db: float[H]."""
    one = d.dtype.type(1.0)
    zero = d.dtype.type(0.0)
    if act == 0:
        for j in range(d.shape[0]):
            d[j] = dht[j] * (one - hr[j] * hr[j])
    elif act == 1:
        for j in range(d.shape[0]):
            d[j] = dht[j] if hr[j] > zero else zero
    else:
        for j in range(d.shape[0]):
            d[j] = dht[j] * hr[j] * (one - hr[j])
    for j in range(d.shape[0]):
        db[j] += d[j]


@njit(**KERNEL)
def rnn_forward(x, U, W, b, h, a, reset, hs, act, projected=False):
    """Run the RNN over T steps: h[t+1] = f(x[t] U + h[t] W + b).

    x: float[T, B, I]; U: float[I, H]; W: float[H, H]; b: float[H]; h: float[T+1, B, H] (h[0] given);
    a: float[T, B, H] written with x U + h W (bias excluded); reset: bool[T, B]; hs: float[B, H]
    scratch; act: 0 tanh, 1 relu, 2 sigmoid; ``projected``: a holds x U already.
    """
    T, B, I = x.shape
    H = W.shape[0]
    if not projected:
        gemm(False, False, 1.0, x.reshape((T * B, I)), U, 0.0, a.reshape((T * B, H)))
    for t in range(T):
        step_product(masked_rows(h[t], reset[t], hs), W, 1.0, a[t])
        for r in range(B):
            _forward_row(a[t, r], b, h[t + 1, r], act)


@njit(**KERNEL)
def rnn_backward(x, U, W, h, a, reset, dh, dx, dU, dW, db, tmp, act, projected=False):
    """Backpropagate through the T steps of ``rnn_forward``; weight gradients are accumulated.

    Inputs as left by rnn_forward (h rows entering a reset step are zeroed here, in place; a is
    overwritten with dloss/da). dh: float[T, B, H] dloss/dh[t+1] from above, recurrent part added in
    place; dx: float[T, B, I] written; dU: [I, H], dW: [H, H], db: [H] (+=); tmp: float[B, H] scratch.
    With ``projected``, dU's share from x and dx are left to the caller (from a).
        da_t = dh_t f'(a_t);  dh_{t-1} += da_t W'
    """
    T, B, I = x.shape
    H = W.shape[0]
    Wt = np.ascontiguousarray(W.T)
    for t in range(T - 1, -1, -1):
        for r in range(B):
            _backward_row(a[t, r], h[t + 1, r], dh[t, r], db, act)
        if t > 0:
            add_product_unmasked(dh[t - 1], a[t], Wt, reset[t], tmp)
    for t in range(T):  # only now: f' above reads the outputs h[t+1] unmasked
        for r in range(B):
            if reset[t, r]:
                h[t, r, :] = 0.0
    a2 = a.reshape((T * B, H))
    gemm(True, False, 1.0, h.reshape(((T + 1) * B, H))[:T * B], a2, 1.0, dW)
    if not projected:
        gemm(True, False, 1.0, x.reshape((T * B, I)), a2, 1.0, dU)
        gemm(False, True, 1.0, a2, U, 0.0, dx.reshape((T * B, I)))


def _code(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, found {activation!r}")
    return ACTIVATIONS[activation]


def forward(x, p, ws, reset, activation="tanh", projected=False):
    """Fill ws["h"][1:] from x and ws["h"][0]."""
    check_segment(x, p, ws, reset, param_shapes)
    rnn_forward(x, p["U"], p["W"], p["b"], ws["h"], ws["a"], reset, ws["hs"], _code(activation), projected)


def backward(x, p, ws, reset, dh, dx, g, activation="tanh", projected=False):
    """Accumulate weight gradients into g (same keys as p), write dx; dh is consumed as work."""
    T, B, I, H, dtype = check_segment(x, p, ws, reset, param_shapes)
    check_grads(p, g, dh, dx, T, B, I, H, dtype)
    rnn_backward(x, p["U"], p["W"], ws["h"], ws["a"], reset, dh, dx, g["U"], g["W"], g["b"],
                 ws["tmp"], _code(activation), projected)
