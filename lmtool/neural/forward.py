"""The recurrent network's forward pass in NumPy, for small inputs: no Numba, no compilation.

``NumpyNetwork`` answers what ``RecurrentNetwork`` answers for scoring and generation
(``init_state``, ``log_probs``, ``step``, ``next_distribution``) from the same flat parameter vector
and layout (``neural.layout``), with the equations of the kernels (``kernels.rnn``, ``lstm``,
``lstm_peephole``, ``lstm_coupled``, ``gru``, ``softmax``) written as NumPy array operations:
float32 matrix products through NumPy's BLAS, ``np.tanh`` and ``np.exp`` where the kernels use
their own float32 approximations, and float32 sums in another order, so results agree with the
kernels' to float32 rounding (about 1e-6 relative), not bit for bit. ``lmtool.compiled`` says when
a model takes this path.

``NumpyWindowNetwork`` does the same for the fixed-window model (``neural.window``). A cell joins
by an entry in ``CELLS``: an object with ``param_shapes(I, H)``, ``STATE`` and
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


def _lstm_run(xu, p, state, reset, update):
    """The loop the LSTM cells share: at each step a = x_t U + h_{t-1} W + b over the restarted
    state, then ``update(a, c_{t-1}, H) -> (h_t, c_t)``, the cell's own gates."""
    h, c = state
    H = h.shape[1]
    out = np.empty(xu.shape[:2] + (H,), xu.dtype)
    for t in range(xu.shape[0]):
        h, c = _start(h, reset[t]), _start(c, reset[t])
        h, c = update(xu[t] + h @ p["W"] + p["b"], c, H)
        out[t] = h
    return out, (h, c)


class LstmCell:
    """Gates i, f, g, o from x_t U + h_{t-1} W + b; c_t = f c_{t-1} + i g; h_t = o tanh(c_t) (``kernels.lstm``)."""

    STATE = ("h", "c")

    @staticmethod
    def param_shapes(I, H):
        return {"U": (I, 4 * H), "W": (H, 4 * H), "b": (4 * H,)}

    @staticmethod
    def run(xu, p, state, reset, activation=None):
        def update(a, c, H):
            c = _sigmoid(a[:, H:2 * H]) * c + _sigmoid(a[:, :H]) * np.tanh(a[:, 2 * H:3 * H])
            return _sigmoid(a[:, 3 * H:]) * np.tanh(c), c

        return _lstm_run(xu, p, state, reset, update)


class LstmPeepholeCell:
    """The LSTM with peepholes (``kernels.lstm_peephole``): i and f also see c_{t-1}, o sees c_t,
    through the diagonal weights ``peep`` = (p_i, p_f, p_o)."""

    STATE = ("h", "c")

    @staticmethod
    def param_shapes(I, H):
        return {"U": (I, 4 * H), "W": (H, 4 * H), "b": (4 * H,), "peep": (3 * H,)}

    @staticmethod
    def run(xu, p, state, reset, activation=None):
        H = state[0].shape[1]
        pi, pf, po = p["peep"][:H], p["peep"][H:2 * H], p["peep"][2 * H:]

        def update(a, c, H):
            c = _sigmoid(a[:, H:2 * H] + pf * c) * c + _sigmoid(a[:, :H] + pi * c) * np.tanh(a[:, 2 * H:3 * H])
            return _sigmoid(a[:, 3 * H:] + po * c) * np.tanh(c), c

        return _lstm_run(xu, p, state, reset, update)


class LstmCoupledCell:
    """The LSTM with coupled input and forget gates (``kernels.lstm_coupled``): gate blocks f, g, o;
    c_t = f c_{t-1} + (1 - f) g."""

    STATE = ("h", "c")

    @staticmethod
    def param_shapes(I, H):
        return {"U": (I, 3 * H), "W": (H, 3 * H), "b": (3 * H,)}

    @staticmethod
    def run(xu, p, state, reset, activation=None):
        def update(a, c, H):
            f, g = _sigmoid(a[:, :H]), np.tanh(a[:, H:2 * H])
            c = g + f * (c - g)
            return _sigmoid(a[:, 2 * H:]) * np.tanh(c), c

        return _lstm_run(xu, p, state, reset, update)


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


CELLS = {"rnn": RnnCell, "lstm": LstmCell, "gru": GruCell, "lstm-peephole": LstmPeepholeCell,
         "lstm-coupled": LstmCoupledCell}
"""The cells with a NumPy forward pass, by ``NetworkConfig.cell`` name."""


def _log_softmax_at(z, t):
    """float64[n]: log softmax of each row of z: float[n, m] at column t[i]."""
    mx = z.max(axis=1)
    s = np.exp(z - mx[:, None]).sum(axis=1)
    return (z[np.arange(len(t)), t].astype(np.float64) - mx.astype(np.float64)) - np.log(s.astype(np.float64))


class _NumpyOutput:
    """What both NumPy networks share: word ids to embedding and output rows (class positions for a
    class softmax), and the output layer, full or class-factored (``kernels.softmax``)."""

    def _bind(self, config, classes, p):
        self.config = config
        self.classes = classes if config.softmax == "class" else None
        self.dtype = np.dtype(config.dtype)
        self.p = p
        self.out_W = p["embed"] if config.tie else p["output.W"]

    def _positions(self, ids):
        ids = np.asarray(ids)
        if self.classes is None:
            return ids.astype(np.int64)
        return np.where(ids >= 0, self.classes.rank[np.maximum(ids, 0)], -1).astype(np.int64)

    def _output_log_probs(self, hs, tgt):
        """float64[n]: log p(target | row) of rows hs: float[n, W] at positions tgt: int[n] (0 where < 0)."""
        logp = np.zeros(len(tgt), np.float64)
        rows = np.flatnonzero(tgt >= 0)
        if self.classes is None:
            for r in range(0, len(rows), BLOCK_ROWS):
                at = rows[r:r + BLOCK_ROWS]
                logp[at] = _log_softmax_at(hs[at] @ self.out_W.T + self.p["output.b"], tgt[at])
        else:
            logp[rows] = self._class_log_probs(hs[rows], tgt[rows])
        return logp

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

    def _distribution(self, h):
        """float[B, V] p(next word) over word ids for output-layer inputs h: float[B, W]."""
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


class NumpyNetwork(_NumpyOutput):
    """The forward pass of a recurrent network in NumPy, over the flat vector ``params``.

    config: NetworkConfig (its cell in ``CELLS``); classes: WordClasses for a class softmax.
    Holds no scratch space: one object serves any number of threads.
    """

    def __init__(self, config, classes, params):
        self.cell = CELLS[config.cell]
        self._bind(config, classes, ParameterLayout(parameter_shapes(config, self.cell)).views(params))
        self.layers = [{n.split(".", 1)[1]: v for n, v in self.p.items() if n.startswith(f"layer{l}.")}
                       for l in range(config.layers)]

    def init_state(self, batch):
        L, H = self.config.layers, self.config.hidden
        c = np.zeros((L, batch, H), self.dtype) if "c" in self.cell.STATE else None
        return NetworkState(np.zeros((L, batch, H), self.dtype), c)

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
        return self._output_log_probs(top.reshape(T * B, -1), tgt.reshape(-1)).reshape(T, B), after

    def step(self, ids, state):
        """Feed one token per stream (ids: int[B]); returns the new state."""
        pos = self._positions(np.asarray(ids).reshape(1, -1))
        return self._forward(pos, state, None)[1]

    def next_distribution(self, state):
        """float[B, V] p(next word | state) over word ids, from the top layer's state."""
        return self._distribution(state.h[-1])


class NumpyWindowNetwork(_NumpyOutput):
    """The fixed-window network's forward pass (``neural.window.WindowNetwork``, ``kernels.window``)
    in NumPy: h = tanh(x U + d) over the window's concatenated embeddings x, the output layer
    reading [h, x] with direct connections. config: WindowConfig; the rest as ``NumpyNetwork``."""

    def __init__(self, config, classes, params):
        from .window_config import parameter_shapes as window_shapes

        self._bind(config, classes, ParameterLayout(window_shapes(config)).views(params))

    def _inputs(self, ctx):
        """What the output layer reads for windows ctx: int[B, N] (word ids, oldest first): float[B, width]."""
        pos = self._positions(ctx)
        x = self.p["embed"][pos].reshape(len(pos), -1)
        h = np.tanh(x @ self.p["hidden.U"] + self.p["hidden.b"])
        return np.concatenate([h, x], axis=1) if self.config.direct else h

    def log_probs(self, ctx, y):
        """As ``WindowNetwork.log_probs``: float64[B] log p(y | window), 0 where y < 0."""
        return self._output_log_probs(self._inputs(ctx), self._positions(y))

    def next_distribution(self, ctx):
        """float[B, V] p(next word | window) over word ids, for windows ctx: int[B, N]."""
        return self._distribution(self._inputs(ctx))


def window_contexts(x, offset, rows, window, pad):
    """``kernels.window.contexts`` in NumPy: int32[B, window], the inputs up to and including
    x[rows[b]] (``pad`` where they lie before the sentence's start), oldest first."""
    rows = np.asarray(rows, np.int64)
    back = np.arange(window - 1, -1, -1)  # words back from the newest, oldest first
    at = rows[:, None] - back
    return np.where(back <= offset[rows][:, None], x[np.maximum(at, 0)], pad).astype(np.int32)
