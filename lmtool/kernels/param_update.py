"""Numba kernels for the optimisers: one fused, vectorised pass over the flat parameter vectors."""

import numpy as np
from numba import njit

from .dense import HELPER, KERNEL


@njit(**HELPER)
def squared_norm(g):
    """sum(g**2), accumulated in float64; g: float32[P]."""
    total = 0.0
    for i in range(g.shape[0]):
        v = np.float64(g[i])
        total += v * v
    return total


@njit(**HELPER)
def sgd_step(params, grad, lr):
    """params -= lr * grad (params, grad: float32[P]); plain SGD as in Zaremba et al. and RNNLM.

    Gradient clipping is folded into ``lr`` by the caller.
    """
    for i in range(params.shape[0]):
        params[i] -= lr * grad[i]


@njit(**KERNEL)
def adam_step(params, grad, scale, m, v, lr, beta1, beta2, eps, step):
    """One Adam update (Kingma & Ba 2015, Algorithm 1) on the gradient ``scale * grad`` (clipping),
    with bias correction at ``step`` (1-based). params, grad, m, v: float32[P]; m and v (the moment
    estimates) are updated in place. 1 - beta is formed in float64 before rounding, as PyTorch does:
    rounded first, 1 - 0.999 in float32 is 1.3e-5 off, and the bias correction would not match it."""
    c1 = 1.0 - beta1 ** step
    c2 = 1.0 - beta2 ** step
    a = np.float32(lr * np.sqrt(c2) / c1)
    e = np.float32(eps * np.sqrt(c2))
    b1 = np.float32(beta1)
    b2 = np.float32(beta2)
    k1 = np.float32(1.0 - beta1)
    k2 = np.float32(1.0 - beta2)
    s = np.float32(scale)
    for i in range(params.shape[0]):
        gi = grad[i] * s
        mi = b1 * m[i] + k1 * gi
        vi = b2 * v[i] + k2 * gi * gi
        m[i] = mi
        v[i] = vi
        params[i] -= a * mi / (np.sqrt(vi) + e)


# Over spans: int64[k, 2] rows [a, b) of the flat vector (``neural.spans``), values elsewhere zero.
# Each span is handed to the whole-vector kernel as a 1-D slice, so the inner loop still vectorises.

@njit(**KERNEL)
def squared_norm_spans(g, spans):
    """``squared_norm`` of g where it is nonzero only inside ``spans``."""
    total = 0.0
    for k in range(spans.shape[0]):
        total += squared_norm(g[spans[k, 0]:spans[k, 1]])
    return total


@njit(**KERNEL)
def sgd_step_spans(params, grad, lr, spans, clear=False):
    """``sgd_step`` where grad is nonzero only inside ``spans``; with ``clear``, grad is zeroed there
    in the same pass (the next step then has nothing to clear)."""
    for k in range(spans.shape[0]):
        a, b = spans[k, 0], spans[k, 1]
        if clear:
            _sgd_step_clear(params[a:b], grad[a:b], lr)
        else:
            sgd_step(params[a:b], grad[a:b], lr)


@njit(**HELPER)
def _sgd_step_clear(params, grad, lr):
    for i in range(params.shape[0]):
        params[i] -= lr * grad[i]
        grad[i] = 0.0


@njit(**KERNEL)
def zero_spans(g, spans):
    """g[a:b] = 0 for each span."""
    for k in range(spans.shape[0]):
        g[spans[k, 0]:spans[k, 1]] = 0.0


@njit(**KERNEL)
def add_spans(total, part, spans):
    """total[a:b] += part[a:b] for each span; returns ``squared_norm`` of the sums there, taken in
    the same pass."""
    norm = 0.0
    for k in range(spans.shape[0]):
        norm += _add(total[spans[k, 0]:spans[k, 1]], part[spans[k, 0]:spans[k, 1]])
    return norm


@njit(**HELPER)
def _add(out, x):
    norm = 0.0
    for i in range(out.shape[0]):
        v = out[i] + x[i]
        out[i] = v
        norm += np.float64(v) * np.float64(v)
    return norm
