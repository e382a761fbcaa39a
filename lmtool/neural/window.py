"""The fixed-window neural language model (Bengio et al. 2003): its network, forward and backward.

    p(w_t | w_{t-N} .. w_{t-1}) = softmax(out(h)),  h = tanh(x U + d),  x = [C(w_{t-N}) .. C(w_{t-1})]

The N previous words (``<s>`` where the window reaches past the sentence start) are looked up in
the embedding C and concatenated; one tanh hidden layer follows, then the output layers of the
recurrent models (full or class softmax, ``lmtool.neural.output``). With direct connections the
output layer reads [h, x] instead of h: the paper's y = b + W x + V tanh(d + H x).

Each target is predicted from its window alone, so training takes minibatches of windows drawn in
a shuffled order, with no state between them and no backpropagation through time.

Parameter names: ``embed`` [V, E]; ``hidden.U`` [N*E, H], ``hidden.b`` [H]; ``output.W`` [V, H] or,
with direct connections, [V, H + N*E] (the hidden units' columns first, then the window's);
``output.b`` [V], and for a class softmax ``output.Wc``, ``output.bc`` as wide. With a class
softmax, embedding and output rows are in class position order, as in ``RecurrentNetwork``.

``WindowNetwork`` shares ``RecurrentNetwork``'s bookkeeping of the flat parameter and gradient
vectors (gradient support, an SGD step's deferred output gradient, norms) by inheritance; what
differs is the layout, the initialisation and the forward and backward passes. The configuration,
the layout and the input stream are in ``neural.window_config``, which opening a model file needs
without the kernels; the NumPy forward pass for small inputs is ``neural.forward.NumpyWindowNetwork``.
"""

import numpy as np

from ..kernels import window as kernels
from ..vocab import BOS
from .network import RecurrentNetwork, draw_masks
from .window_config import WindowConfig, parameter_shapes, windowed

__all__ = ["WindowConfig", "WindowNetwork", "contexts", "initialise", "parameter_shapes", "windowed"]


def initialise(config, layout, flat, seed):
    """Fill flat with initial values drawn from ``seed`` (same seed, same bytes).

    Embedding and output weights ~ U(-init_range, init_range), the embedding ~ U(-embed_range,
    embed_range) where that is set, output biases 0 (as the recurrent models); the hidden layer's
    weights and bias ~ U(-1/sqrt(N*E), 1/sqrt(N*E)), PyTorch's ``nn.Linear``.
    """
    rng = np.random.default_rng(seed)
    flat[:] = 0
    k = 1.0 / np.sqrt(config.window * config.embed)
    for name, v in layout.views(flat).items():
        if name in ("embed", "output.W", "output.Wc"):
            r = config.embed_range if name == "embed" and config.embed_range is not None else config.init_range
            v[...] = rng.uniform(-r, r, v.shape)
        elif name.startswith("hidden."):
            v[...] = rng.uniform(-k, k, v.shape)


def contexts(x, offset, rows, window):
    """int32[B, window]: the word ids of the windows ending at stream positions ``rows``."""
    return kernels.contexts(x, offset, rows, window, BOS)


class WindowNetwork(RecurrentNetwork):
    """An embedding -> tanh layer -> softmax LM over a window of words, on flat parameter and gradient
    vectors (``network.params``, ``network.grad``; named views ``network.p``, ``network.g``).

    Batches are windows: ``ctx``: int[B, N] the word ids of each window (oldest first), ``y``: int[B]
    the targets (< 0: padding, no loss). config: WindowConfig; classes: WordClasses for a class
    softmax; seed: initialisation seed; params: a flat vector to adopt instead of initialising. Not
    thread-safe (workspaces are reused between calls): one network object per thread.
    """

    def __init__(self, config, classes=None, seed=0, params=None):
        self._bind(config, parameter_shapes(config), initialise, classes, seed, params, width=config.width)
        self._cache = {}

    def init_state(self, batch):
        """Nothing is carried from one batch of windows to the next."""
        return None

    def dropout_masks(self, B, rng):
        """The masks ``forward_backward`` would draw from ``rng`` for B windows: float[B, N*E] for the
        window's embeddings, float[B, H] for the hidden layer's output (None without dropout)."""
        c = self.config
        return draw_masks(rng, c.dropout, [(B, c.window * c.embed), (B, c.hidden)], self.dtype)

    def _workspace(self, B):
        """Arrays for B windows: z: [B, width] what the output layer reads (h, then x with direct
        connections) and dz its gradient; x, dx: [B, N*E] the window (views into z and dz with
        direct connections); h: [B, H] the hidden layer before dropout (without masks to apply,
        ``_activations`` writes it in z's first columns instead). Allocated for the largest B seen, so
        that minibatches of a few sizes share them."""
        if self._cache.get("rows", 0) < B:
            c, e = self.config, np.empty
            z, dz = e((B, c.width), self.dtype), e((B, c.width), self.dtype)
            self._cache = {"rows": B, "z": z, "dz": dz, "h": e((B, c.hidden), self.dtype) if c.dropout else None,
                           "x": None if c.direct else e((B, c.window * c.embed), self.dtype),
                           "dx": None if c.direct else e((B, c.window * c.embed), self.dtype)}
        H = self.config.hidden
        ws = {name: a[:B] for name, a in self._cache.items() if name != "rows" and a is not None}
        if self.config.direct:
            ws.update(x=ws["z"][:, H:], dx=ws["dz"][:, H:])
        return ws

    def _activations(self, pos, masks):
        """Embedding, dropout and hidden layer for window positions pos: int32[B, N]; the workspace."""
        if pos.ndim != 2 or pos.shape[1] != self.config.window:
            raise ValueError(f"ctx: expected int[B, {self.config.window}] windows, found shape {pos.shape}")
        ws = self._workspace(pos.shape[0])
        kernels.gather(self.p["embed"], pos, ws["x"])
        if masks is not None:
            kernels.dropout(ws["x"], masks[0], ws["x"])
        top = ws["z"][:, :self.config.hidden]
        if masks is None:
            ws["h"] = top
        kernels.forward(ws["x"], self.p["hidden.U"], self.p["hidden.b"], ws["h"])
        if masks is not None:
            kernels.dropout(ws["h"], masks[1], top)
        return ws

    def forward_backward(self, ctx, y, dropout_rng=None, masks=None, normaliser=None, defer_output=False):
        """Loss and gradient of the mean cross-entropy of B windows.

        ctx: int[B, N] window word ids; y: int[B] targets (< 0 ignored); dropout_rng: numpy Generator
        drawing the dropout masks (None: no dropout). Overwrites ``grad`` with the gradient of
        loss_sum / n_tokens and returns (loss_sum in nats, n_tokens). A shard of a bigger batch passes
        its rows of the batch's ``masks`` (``dropout_masks``) and the batch's token count as
        ``normaliser``. ``defer_output``: as ``RecurrentNetwork.forward_backward``.
        """
        pos, tgt = self._positions(ctx), self._positions(y)
        if tgt.shape != pos.shape[:1]:
            raise ValueError(f"y: expected int[{pos.shape[0]}], one target per window, found shape {tgt.shape}")
        B = len(tgt)
        if masks is None:
            masks = self.dropout_masks(B, dropout_rng)
        ws = self._activations(pos, masks)
        n_tokens = int(np.count_nonzero(tgt >= 0))
        self.clear_grad()
        defer = defer_output and not self.config.tie
        rest, self.grad_support = self._support(pos, tgt, weights=not defer)
        self._dirty = self.grad_support
        scale = 1.0 / max(n_tokens if normaliser is None else normaliser, 1)
        loss = self.output.loss(ws["z"], self._out_p, tgt, scale, ws["dz"], self._out_g, defer)
        self.deferred = self.output.deferred
        H = self.config.hidden
        dh = ws["dz"][:, :H]
        if masks is not None:
            kernels.dropout(dh, masks[1], dh)
        kernels.backward(ws["x"], self.p["hidden.U"], ws["h"], dh, self.g["hidden.U"], self.g["hidden.b"],
                         ws["dx"], accumulate=self.config.direct)
        if masks is not None:
            kernels.dropout(ws["dx"], masks[0], ws["dx"])
        kernels.scatter(ws["dx"], pos, self.g["embed"])
        if not self.config.tie:  # the output layer may know its rows' norm: see grad_norm
            self._norm_parts = (self.output, rest)
        return float(loss), n_tokens

    def log_probs(self, ctx, y):
        """float64[B]: natural-log probabilities of the targets y after the windows ctx (0 where y < 0)."""
        pos, tgt = self._positions(ctx), self._positions(y)
        ws = self._activations(pos, None)
        return self.output.log_probs(ws["z"], self._out_p, tgt)

    def next_distribution(self, ctx):
        """float[B, V]: p(next word | window) over word ids, for windows ctx: int[B, N]."""
        ws = self._activations(self._positions(ctx), None)
        probs = self.output.distribution(ws["z"], self._out_p)
        return probs if self.classes is None else probs[:, self.classes.rank]
