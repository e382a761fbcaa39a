"""Optimisers over one flat parameter vector: SGD and Adam, with gradient-norm clipping.

The state (Adam's moments and step count) is a dict of arrays and numbers, saved in checkpoints so
that a resumed run continues exactly where it stopped.
"""

import math

import numpy as np

from .choices import OPTIMIZERS


def clip_scale(grad, max_norm, spans=None):
    """The factor that brings ``grad``'s L2 norm down to ``max_norm`` (1 if already below, or if
    ``max_norm`` <= 0), and the norm; the optimiser applies it, so the gradient is read only once.
    ``spans``: the gradient's support (``neural.spans``) if known, to read only there."""
    from ..kernels.param_update import squared_norm, squared_norm_spans

    return scale_for_norm(math.sqrt(squared_norm(grad) if spans is None else squared_norm_spans(grad, spans)),
                          max_norm)


def scale_for_norm(norm, max_norm):
    """``clip_scale`` for a gradient whose norm is already known: (factor, norm)."""
    if max_norm > 0 and norm > max_norm:
        return max_norm / (norm + 1e-6), norm
    return 1.0, norm


class Optimizer:
    """``step(params, grad, lr)`` updates params in place; ``state``/``load_state`` for checkpoints."""

    def __init__(self, kind, size, beta1=0.9, beta2=0.999, eps=1e-8):
        if kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {kind!r}; expected one of {OPTIMIZERS}")
        self.kind = kind
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.steps = 0
        self.m = np.zeros(size, np.float32) if kind == "adam" else None
        self.v = np.zeros(size, np.float32) if kind == "adam" else None

    def step(self, params, grad, lr, scale=1.0, map_spans=None, support=None, clear=False):
        """Update ``params`` with the gradient ``scale * grad`` at learning rate ``lr``.

        ``map_spans(fn)``, if given, calls ``fn((a, b))`` for spans covering the vector, and
        ``map_spans(fn, support)`` ``fn(spans)`` for parts of ``support`` (on several threads, see
        ``neural.parallel``); the update is elementwise, so the result is the same.
        ``support``: spans outside which grad is zero (``neural.spans``); SGD then updates only
        there, with the same result. Adam updates everywhere (its moments move without a gradient).
        ``clear``: SGD over a support may zero grad in the same pass; returns whether it did.
        """
        self.steps += 1
        if support is not None and self.kind == "sgd":
            from ..kernels.param_update import sgd_step_spans

            rate = np.float32(lr * scale)
            if map_spans is None:
                sgd_step_spans(params, grad, rate, support, clear)
            else:
                map_spans(lambda part: sgd_step_spans(params, grad, rate, part, clear), support)
            return clear
        if map_spans is None:
            self._update(params, grad, lr, scale, (0, params.size))
        else:
            map_spans(lambda span: self._update(params, grad, lr, scale, span))
        return False

    def _update(self, params, grad, lr, scale, span):
        from ..kernels.param_update import adam_step, sgd_step

        a, b = span
        if self.kind == "sgd":
            sgd_step(params[a:b], grad[a:b], np.float32(lr * scale))
        else:
            adam_step(params[a:b], grad[a:b], scale, self.m[a:b], self.v[a:b], lr, self.beta1, self.beta2,
                      self.eps, self.steps)

    def state(self):
        arrays = {} if self.kind == "sgd" else {"adam_m": self.m, "adam_v": self.v}
        return arrays, {"kind": self.kind, "steps": self.steps}

    def load_state(self, arrays, info):
        self.steps = int(info["steps"])
        if self.kind == "adam":
            self.m[:] = arrays["adam_m"]
            self.v[:] = arrays["adam_v"]
