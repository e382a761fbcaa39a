"""The recurrent network's forward pass in NumPy, for small inputs: no Numba, no compilation.

``NumpyNetwork`` answers what ``RecurrentNetwork`` answers for scoring and generation
(``init_state``, ``log_probs``, ``step``, ``next_distribution``) from the same flat parameter vector
and layout (``neural.layout``), with the equations of the kernels (``kernels.rnn``, ``lstm``,
``gru``, ``softmax``) written as NumPy array operations: float32 matrix products through NumPy's
BLAS, ``np.tanh`` and ``np.exp`` where the kernels use their own float32 approximations, and
float32 sums in another order, so results agree with the kernels' to float32 rounding (about 1e-6
relative), not bit for bit. ``lmtool.compiled`` says when a model takes this path.

A cell joins by an entry in ``CELLS``: an object with ``param_shapes(I, H)``, ``STATE`` and
``run(xu, p, state, reset, activation)`` over the whole segment. Cells without one are scored by the
kernels whatever the input's size.
"""

import numpy as np

from .layout import ParameterLayout, parameter_shapes
from .state import NetworkState

BLOCK_ROWS = 256
"""Rows of full-softmax logits computed at once (256 x V floats: 12 MB on a 12k vocabulary)."""


def _sigmoid(a):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-a))


def _start(state, reset_t):
    """The state entering a step, zeroed in the rows that start a sentence."""
    return np.where(reset_t[:, None], state.dtype.type(0), state) if reset_t.any() else state


class RnnCell:
    """h_t = f(x_t U + h_{t-1} W + b), f = tanh, relu or sigmoid (``kernels.rnn``)."""

    STATE = ("h",)

    @staticmethod
    def param_shapes(I, H):
        return {"U": (I, H), "W": (H, H), "b": (H,)}

    @staticmethod
    def run(xu, p, state, reset, activation="tanh"):
        f = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, a.dtype.type(0)), "sigmoid": _sigmoid}[activation]
        (h,) = state
        out = np.empty(xu.shape, xu.dtype)
        for t in range(xu.shape[0]):
            h = f(xu[t] + _start(h, reset[t]) @ p["W"] + p["b"])
            out[t] = h
        return out, (h,)


class LstmCell:
    """Gates i, f, g, o from x_t U + h_{t-1} W + b; c_t = f c_{t-1} + i g; h_t = o tanh(c_t) (``kernels.lstm``)."""

    STATE = ("h", "c")

    @staticmethod
    def param_shapes(I, H):
        return {"U": (I, 4 * H), "W": (H, 4 * H), "b": (4 * H,)}

    @staticmethod
    def run(xu, p, state, reset, activation=None):
        h, c = state
        H = h.shape[1]
        out = np.empty(xu.shape[:2] + (H,), xu.dtype)
        for t in range(xu.shape[0]):
            h, c = _start(h, reset[t]), _start(c, reset[t])
            a = xu[t] + h @ p["W"] + p["b"]
            c = _sigmoid(a[:, H:2 * H]) * c + _sigmoid(a[:, :H]) * np.tanh(a[:, 2 * H:3 * H])
            h = _sigmoid(a[:, 3 * H:]) * np.tanh(c)
            out[t] = h
        return out, (h, c)


class GruCell:
    """PyTorch's GRU, reset gate after the hidden product (``kernels.gru``)."""

    STATE = ("h",)

    @staticmethod
    def param_shapes(I, H):
        return {"U": (I, 3 * H), "W": (H, 3 * H), "b": (3 * H,), "bn": (H,)}

    @staticmethod
    def run(xu, p, state, reset, activation=None):
        (h,) = state
        H = h.shape[1]
        out = np.empty(xu.shape[:2] + (H,), xu.dtype)
        for t in range(xu.shape[0]):
            h = _start(h, reset[t])
            gi = xu[t] + p["b"]
            gh = h @ p["W"]
            r = _sigmoid(gi[:, :H] + gh[:, :H])
            z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = np.tanh(gi[:, 2 * H:] + r * (gh[:, 2 * H:] + p["bn"]))
            h = (1 - z) * n + z * h
            out[t] = h
        return out, (h,)


CELLS = {"rnn": RnnCell, "lstm": LstmCell, "gru": GruCell}
"""The cells with a NumPy forward pass, by ``NetworkConfig.cell`` name."""


def _log_softmax_at(z, t):
    """float64[n]: log softmax of each row of z: float[n, m] at column t[i]."""
    mx = z.max(axis=1)
    s = np.exp(z - mx[:, None]).sum(axis=1)
    return (z[np.arange(len(t)), t].astype(np.float64) - mx.astype(np.float64)) - np.log(s.astype(np.float64))


class NumpyNetwork:
    """The forward pass of a recurrent network in NumPy, over the flat vector ``params``.

    config: NetworkConfig (its cell in ``CELLS``); classes: WordClasses for a class softmax.
    Holds no scratch space: one object serves any number of threads.
    """

    def __init__(self, config, classes, params):
        self.config = config
        self.classes = classes if config.softmax == "class" else None
        self.cell = CELLS[config.cell]
        self.dtype = np.dtype(config.dtype)
        self.p = ParameterLayout(parameter_shapes(config, self.cell)).views(params)
        self.layers = [{n.split(".", 1)[1]: v for n, v in self.p.items() if n.startswith(f"layer{l}.")}
                       for l in range(config.layers)]
        self.out_W = self.p["embed"] if config.tie else self.p["output.W"]

    def init_state(self, batch):
        L, H = self.config.layers, self.config.hidden
        c = np.zeros((L, batch, H), self.dtype) if "c" in self.cell.STATE else None
        return NetworkState(np.zeros((L, batch, H), self.dtype), c)

    def _positions(self, ids):
        ids = np.asarray(ids)
        if self.classes is None:
            return ids.astype(np.int64)
        return np.where(ids >= 0, self.classes.rank[np.maximum(ids, 0)], -1).astype(np.int64)

    def _forward(self, pos, state, reset):
        """Top-layer outputs float[T, B, H] and the state after the segment."""
        T, B = pos.shape
        if reset is None:
            reset = np.zeros((T, B), bool)
        x = np.where((pos >= 0)[..., None], self.p["embed"][np.maximum(pos, 0)], self.dtype.type(0))
        hs, cs = [], []
        for l, p in enumerate(self.layers):
            xu = (x.reshape(T * B, -1) @ p["U"]).reshape(T, B, -1)
            carried = (state.h[l],) if state.c is None else (state.h[l], state.c[l])
            x, final = self.cell.run(xu, p, carried, reset, self.config.activation)
            hs.append(final[0])
            if state.c is not None:
                cs.append(final[1])
        return x, NetworkState(np.stack(hs), np.stack(cs) if cs else None)

    def log_probs(self, x_ids, y_ids, state, reset=None):
        """As ``RecurrentNetwork.log_probs``: (float64[T, B] log p(y | history), 0 where y < 0; the state after)."""
        pos, tgt = self._positions(x_ids), self._positions(y_ids)
        T, B = pos.shape
        top, after = self._forward(pos, state, reset)
        hs, tgt = top.reshape(T * B, -1), tgt.reshape(-1)
        logp = np.zeros(T * B, np.float64)
        rows = np.flatnonzero(tgt >= 0)
        if self.classes is None:
            for r in range(0, len(rows), BLOCK_ROWS):
                at = rows[r:r + BLOCK_ROWS]
                logp[at] = _log_softmax_at(hs[at] @ self.out_W.T + self.p["output.b"], tgt[at])
        else:
            logp[rows] = self._class_log_probs(hs[rows], tgt[rows])
        return logp.reshape(T, B), after

    def _class_log_probs(self, hs, tgt):
        """log p(class | h) + log p(word | class, h) of target positions ``tgt``, class by class."""
        cl = self.classes
        word_class = cl.word_class[tgt]
        out = _log_softmax_at(hs @ self.p["output.Wc"].T + self.p["output.bc"], word_class)
        for c in np.unique(word_class):
            at = np.flatnonzero(word_class == c)
            s, e = cl.start[c], cl.start[c + 1]
            out[at] += _log_softmax_at(hs[at] @ self.out_W[s:e].T + self.p["output.b"][s:e], tgt[at] - s)
        return out

    def step(self, ids, state):
        """Feed one token per stream (ids: int[B]); returns the new state."""
        pos = self._positions(np.asarray(ids).reshape(1, -1))
        return self._forward(pos, state, None)[1]

    def next_distribution(self, state):
        """float[B, V] p(next word | state) over word ids, from the top layer's state."""
        h = state.h[-1]
        with np.errstate(over="ignore"):
            if self.classes is None:
                z = h @ self.out_W.T + self.p["output.b"]
                e = np.exp(z - z.max(axis=1, keepdims=True))
                return e / e.sum(axis=1, keepdims=True)
            cl = self.classes
            zc = h @ self.p["output.Wc"].T + self.p["output.bc"]
            pc = np.exp(zc - zc.max(axis=1, keepdims=True))
            pc /= pc.sum(axis=1, keepdims=True)
            z = h @ self.out_W.T + self.p["output.b"]
            starts = cl.start[:-1]
            e = np.exp(z - np.repeat(np.maximum.reduceat(z, starts, axis=1), np.diff(cl.start), axis=1))
            e /= np.repeat(np.add.reduceat(e, starts, axis=1), np.diff(cl.start), axis=1)
            probs = e * np.repeat(pc, np.diff(cl.start), axis=1)
            return probs[:, cl.rank]
