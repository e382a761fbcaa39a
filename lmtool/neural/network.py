"""RecurrentNetwork: embedding -> L recurrent layers -> softmax, trained by truncated BPTT.

All parameters live in one flat vector (``network.params``) and the gradient in another of the same
layout (``network.grad``), so optimisers, clipping and saving handle one array each; ``network.p`` and
``network.g`` are dicts of named views into them (layout: ``ParameterLayout``, names below).

Data is time-major: ``x_ids, y_ids: int32[T, B]`` (column b is one stream). Targets < 0 are padding:
no loss, no gradient, log-prob 0; inputs < 0 give a zero input vector. ``reset: bool[T, B]`` (optional)
zeroes the state entering step t of stream b (a sentence start), cutting the gradient there too; the
state handed between segments carries on otherwise (truncated BPTT: no gradient across segments).

Parameter names: ``embed`` [V, E]; per layer l ``layer{l}.U`` [I, G*H], ``layer{l}.W`` [H, G*H],
``layer{l}.b`` [G*H] (and ``layer{l}.bn`` [H] for GRU, ``layer{l}.peep`` [3H] for lstm-peephole),
gate blocks in PyTorch's order (lstm-coupled: f, g, o);
``output.W`` [V, H] (absent when tied: the embedding is used), ``output.b`` [V], and for the class
softmax ``output.Wc`` [C, H], ``output.bc`` [C]. With a class softmax, embedding and output rows are in
class *position* order: row k belongs to word ``classes.order[k]``.

Where a training segment reads few distinct tokens (characters: about a hundred, against thousands of
tokens in a batch), the first layer's input projection x U is computed once per distinct token, as a
table (embedding rows @ U), and looked up, and its gradient is summed per distinct token before it
goes back to U and the embedding (``_input_table``): the same function and gradient, for a quarter
less of a two-layer LSTM's work. Scoring and generation compute x U token by token, as always.
"""

import math

import numpy as np

from ..kernels.dense import dropout_mask, gather_rows, multiply, scatter_add_rows
from ..kernels.param_update import squared_norm, squared_norm_spans, zero_spans
from .choices import CELLS, OUTPUTS
from .layout import ParameterLayout, parameter_shapes
from .spans import merge_spans, range_spans, row_spans
from .state import NetworkState

TABLE_SHARE = 4
"""Training looks layer 0's x U up in a table when a segment has at most 1/4 as many distinct inputs as
tokens (characters; words, with hundreds of distinct words in 700 tokens, are projected token by token)."""


def initialise(config, layout, flat, seed):
    """Fill flat with initial values drawn from ``seed`` (same seed, same bytes).

    Embedding and output weights ~ U(-init_range, init_range), output biases 0 (PyTorch's
    word_language_model), the embedding ~ U(-embed_range, embed_range) where that is set; recurrent
    weights and biases ~ U(-1/sqrt(H), 1/sqrt(H)) as PyTorch's cells, a summed bias (b_ih + b_hh)
    drawn as two such terms; the LSTMs' forget-gate bias 1 (a cell's ``FORGET_BLOCK``);
    init="identity": W = I, b = 0. Peephole weights start at 0 and draw nothing, so an lstm-peephole
    network starts as the lstm network of the same seed and a comparison of the two sees the peepholes
    alone. They learn from the first step all the same: their gradient is the gate's times the cell,
    and zeros tie no units together, each unit having its own weight fed by its own cell.
    """
    rng = np.random.default_rng(seed)
    views = layout.views(flat)
    flat[:] = 0
    H = config.hidden
    k = 1.0 / np.sqrt(H)
    for name, v in views.items():
        kind = name.split(".")[-1]
        if name == "embed" or name in ("output.W", "output.Wc"):
            r = config.embed_range if name == "embed" and config.embed_range is not None else config.init_range
            v[...] = rng.uniform(-r, r, v.shape)
        elif name.startswith("output."):
            v[...] = 0
        elif kind == "b":
            first = rng.uniform(-k, k, v.shape)
            v[...] = first + rng.uniform(-k, k, v.shape)
            forget = getattr(CELLS[config.cell], "FORGET_BLOCK", None)
            if forget is not None:
                v[forget * H:(forget + 1) * H] = 1.0
            elif config.cell == "gru":
                v[2 * H:] = first[2 * H:]  # b_in alone: b_hn is the separate bn
        elif kind == "peep":
            v[...] = 0
        else:
            v[...] = rng.uniform(-k, k, v.shape)
        if config.init == "identity" and kind in ("W", "b") and name.startswith("layer"):
            v[...] = np.eye(H) if kind == "W" else 0


def draw_masks(rng, p, shapes, dtype):
    """Inverted-dropout masks of ``shapes``, each dropping with its probability in ``p`` (one for all,
    or one per shape): a list with None where that probability is 0, or None when ``rng`` is None or
    every probability is 0.

    Drawn as 16-bit numbers from rng's bit generator (4 per 64-bit draw, 3x faster than floats),
    mask after mask: the probability is rounded to a multiple of 2^-16.
    """
    ps = [p] * len(shapes) if np.ndim(p) == 0 else list(p)
    if rng is None or not any(ps):
        return None
    total = sum(int(np.prod(shape)) for shape, q in zip(shapes, ps) if q)
    bits = rng.bit_generator.random_raw(-(-total // 4)).view(np.uint16)
    masks, start = [], 0
    for shape, q in zip(shapes, ps):
        if not q:
            masks.append(None)
            continue
        mask = np.empty(shape, dtype)
        dropout_mask(bits[start:start + mask.size], int(round(q * 65536)), 1.0 / (1.0 - q), mask.reshape(-1))
        masks.append(mask)
        start += mask.size
    return masks


def _mask(masks, i):
    """Mask ``i`` of ``draw_masks``'s list, or None (no dropout there)."""
    return None if masks is None else masks[i]


class RecurrentNetwork:
    """An embedding -> L recurrent layers -> softmax LM over flat parameter and gradient vectors.

    config: NetworkConfig; classes: WordClasses (required for softmax="class"); seed: initialisation
    seed; params: optional flat vector (e.g. loaded from a model file) to use instead of initialising,
    adopted without a copy when it is already contiguous in the config's dtype. Not thread-safe: the
    workspaces and scratch arrays are shared between calls (use one network object per thread).
    """

    def __init__(self, config, classes=None, seed=0, params=None):
        self.cell = CELLS[config.cell]
        self._bind(config, parameter_shapes(config), initialise, classes, seed, params)
        self._layers_p = [self._group(self.p, f"layer{l}.") for l in range(config.layers)]
        self._layers_g = [self._group(self.g, f"layer{l}.") for l in range(config.layers)]
        self._cache = {}

    def _bind(self, config, shapes, init, classes, seed, params, width=None):
        """Set up what a network over flat vectors has: parameters (adopted, or filled by
        ``init(config, layout, flat, seed)``), gradient, their named views and the output layer,
        which reads ``width`` values per token (default: ``config.hidden``)."""
        self.config = config
        self.dtype = np.dtype(config.dtype)
        self.layout = ParameterLayout(shapes)
        if params is None:
            self.params = np.zeros(self.layout.size, self.dtype)
            init(config, self.layout, self.params, seed)
        else:
            self.params = np.ascontiguousarray(params, self.dtype)
        self.grad = np.zeros(self.layout.size, self.dtype)
        self.p = self.layout.views(self.params)
        self.g = self.layout.views(self.grad)
        V, H = config.vocab_size, config.hidden if width is None else width
        if config.softmax == "class" and (classes is None or classes.n_classes != config.n_classes):
            raise ValueError(
                f"softmax='class' needs the word classes, with n_classes equal to the config's "
                f"{config.n_classes}; found {None if classes is None else classes.n_classes}: build "
                f"them with make_classes(counts, n) and set NetworkConfig(n_classes=classes.n_classes)")
        self.classes = classes if config.softmax == "class" else None
        self.output = OUTPUTS[config.softmax](V, H, self.classes)
        self._out_p, self._out_g = self._group(self.p, "output."), self._group(self.g, "output.")
        if config.tie:
            self._out_p["W"], self._out_g["W"] = self.p["embed"], self.g["embed"]
        o = self.layout.offsets
        self._dense_spans = np.array([[o[n], o[n] + int(np.prod(s))] for n, s in self.layout.shapes.items()
                                      if n not in ("embed", "output.W", "output.b")], np.int64).reshape(-1, 2)
        self.grad_support = self._dirty = np.empty((0, 2), np.int64)
        """grad_support: spans (``neural.spans``) outside which ``grad`` is zero (None: unknown)."""
        self._norm_parts = None  # (the output layer, which may know its rows' norm; the other spans): grad_norm
        self.deferred = None  # the output weights' gradient, when forward_backward deferred it

    @staticmethod
    def _group(views, prefix):
        return {n[len(prefix):]: v for n, v in views.items() if n.startswith(prefix)}

    @property
    def n_params(self):
        """Trainable values (the flat vector also holds alignment padding)."""
        return sum(int(np.prod(s)) for s in self.layout.shapes.values())

    def init_state(self, batch):
        """A zero state for ``batch`` streams."""
        L, H = self.config.layers, self.config.hidden
        c = np.zeros((L, batch, H), self.dtype) if "c" in self.cell.STATE else None
        return NetworkState(np.zeros((L, batch, H), self.dtype), c)

    # ------------------------------------------------------------------------------------------------
    def _positions(self, ids):
        """Word ids -> output positions (identity for the full softmax); negative ids stay -1."""
        ids = np.asarray(ids)
        if ids.dtype != np.int32:
            if not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"token ids: expected integers, found {ids.dtype}")
            ids = ids.astype(np.int32)
        if ids.size and ids.max() >= self.config.vocab_size:
            raise ValueError(f"token ids: expected < vocab_size {self.config.vocab_size}, found {ids.max()}")
        if self.classes is not None:
            return np.where(ids >= 0, self.classes.rank[np.maximum(ids, 0)], -1).astype(np.int32)
        return np.ascontiguousarray(np.maximum(ids, -1), np.int32)

    def _workspaces(self, T, B):
        key = (T, B)
        if key not in self._cache:
            cfg = self.config
            self._cache = {key: [self.cell.workspace(T, B, cfg.embed if l == 0 else cfg.hidden, cfg.hidden,
                                                     self.dtype) for l in range(cfg.layers)]}
        return self._cache[key]

    def dropout_masks(self, T, B, rng):
        """The dropout masks ``forward_backward`` would draw from ``rng`` for a [T, B] segment."""
        return self._masks(T, B, rng)

    def _masks(self, T, B, rng):
        """L+1 inverted-dropout masks (embedding output at ``embed_dropout``, each layer's output at
        ``dropout``), None where that probability is 0, or None without dropout (``draw_masks``)."""
        cfg = self.config
        sizes = [cfg.embed] + [cfg.hidden] * cfg.layers
        ps = [cfg.embedding_dropout] + [cfg.dropout] * cfg.layers
        return draw_masks(rng, ps, [(T, B, n) for n in sizes], self.dtype)

    def _input_table(self, pos, masks):
        """(rows: int64[k] the distinct embedding rows a segment reads, at: int32[T*B] each token's index
        in rows, -1 for none), when layer 0's x U is cheaper looked up in a table of k rows than
        computed per token (see ``TABLE_SHARE``); None otherwise, and under embedding dropout (each
        token's x is then its own) or with a cell that takes no projected input."""
        if _mask(masks, 0) is not None or getattr(self.cell, "PROJECTION", None) is None:
            return None
        flat = pos.reshape(-1)
        rows, at = np.unique(flat, return_inverse=True)
        if rows.size * TABLE_SHARE > flat.size:
            return None
        at = at.reshape(-1).astype(np.int32)
        if rows.size and rows[0] < 0:  # padding (position -1): a zero input, as gather_rows gives it
            rows, at = rows[1:], at - 1
        return rows, at

    def _forward(self, pos, state, reset, masks, table=None):
        """Run embedding and layers; returns (layer inputs, workspaces, top outputs [T, B, H], reset).
        ``table``: ``_input_table``'s (rows, at), to look layer 0's x U up (its input is then not formed)."""
        T, B = pos.shape
        if state.batch != B:
            raise ValueError(f"state has {state.batch} streams, the ids have {B} columns")
        if reset is None:
            reset = np.zeros((T, B), np.bool_)
        elif reset.shape != (T, B) or reset.dtype != np.bool_:
            raise ValueError(f"reset: expected bool[{T}, {B}], found {reset.dtype}{list(reset.shape)}")
        x = np.empty((T, B, self.config.embed), self.dtype)
        wss = self._workspaces(T, B)
        if table is None:
            gather_rows(self.p["embed"], pos.reshape(-1), x.reshape(T * B, -1))
        else:  # x is not read: layer 0 finds x U in its workspace
            rows, at = table
            projected = np.dot(self.p["embed"][rows], self._layers_p[0]["U"])
            gather_rows(projected, at, wss[0][self.cell.PROJECTION].reshape(T * B, -1))
        if _mask(masks, 0) is not None:
            multiply(x.reshape(-1), masks[0].reshape(-1), x.reshape(-1))
        inputs = []
        act = self.config.activation
        for l, ws in enumerate(wss):
            inputs.append(x)
            ws["h"][0] = state.h[l]
            if state.c is not None:
                ws["c"][0] = state.c[l]
            if l == 0 and table is not None:
                self.cell.forward(x, self._layers_p[l], ws, reset, act, projected=True)
            else:
                self.cell.forward(x, self._layers_p[l], ws, reset, act)
            x = ws["h"][1:]
            if _mask(masks, l + 1) is not None:
                x = x * masks[l + 1]
        return inputs, wss, x, reset

    def _final_state(self, wss):
        h = np.stack([ws["h"][-1] for ws in wss])
        c = np.stack([ws["c"][-1] for ws in wss]) if "c" in self.cell.STATE else None
        return NetworkState(h, c)

    def forward_backward(self, x_ids, y_ids, state, dropout_rng=None, reset=None, masks=None, normaliser=None,
                         defer_output=False):
        """One truncated-BPTT segment: loss and gradient of the mean cross-entropy.

        x_ids, y_ids: int[T, B] input and target word ids (targets < 0 ignored); state: NetworkState
        entering the segment; dropout_rng: numpy Generator drawing the dropout masks (None: no
        dropout); reset: optional bool[T, B]. Overwrites ``self.grad`` with the gradient of
        loss_sum / n_tokens. Returns (loss_sum in nats, n_tokens, state after the segment).
        A shard of a bigger batch (see ``neural.parallel``) passes its slice of the batch's dropout
        ``masks`` (from ``dropout_masks``) and the batch's token count as ``normaliser``.
        ``defer_output``: leave the output weights' gradient (untied) out of ``grad`` and in
        ``deferred`` (``neural.output.FactoredGradient`` or ``TransposedGradient``), for an SGD
        step to apply with ``apply_deferred``; ``grad_support`` and ``grad_norm`` account for it.
        """
        pos, tgt = self._positions(x_ids), self._positions(y_ids)
        if pos.shape != tgt.shape or pos.ndim != 2:
            raise ValueError(f"x_ids, y_ids: expected int[T, B] of one shape, found {pos.shape}, {tgt.shape}")
        T, B = pos.shape
        if masks is None:
            masks = self._masks(T, B, dropout_rng)
        table = self._input_table(pos, masks)
        inputs, wss, top, reset = self._forward(pos, state, reset, masks, table)
        new_state = self._final_state(wss)
        n_tokens = int(np.count_nonzero(tgt >= 0))
        self.clear_grad()
        defer = defer_output and not self.config.tie
        rest, self.grad_support = self._support(pos, tgt, weights=not defer)
        self._dirty = self.grad_support
        H = self.config.hidden
        dtop = np.empty((T, B, H), self.dtype)
        scale = 1.0 / max(n_tokens if normaliser is None else normaliser, 1)
        loss = self.output.loss(top.reshape(T * B, H), self._out_p, tgt.reshape(-1),
                                scale, dtop.reshape(T * B, H), self._out_g, defer)
        self.deferred = self.output.deferred
        d = dtop
        act = self.config.activation
        for l in range(self.config.layers - 1, -1, -1):
            if _mask(masks, l + 1) is not None:
                multiply(d.reshape(-1), masks[l + 1].reshape(-1), d.reshape(-1))
            dx = np.empty_like(inputs[l])
            if l == 0 and table is not None:
                self.cell.backward(inputs[l], self._layers_p[l], wss[l], reset, d, dx, self._layers_g[l], act,
                                   projected=True)
            else:
                self.cell.backward(inputs[l], self._layers_p[l], wss[l], reset, d, dx, self._layers_g[l], act)
            d = dx
        if table is not None:
            self._table_backward(table, wss[0][self.cell.PROJECTION_GRAD])
        else:
            if _mask(masks, 0) is not None:
                multiply(d.reshape(-1), masks[0].reshape(-1), d.reshape(-1))
            scatter_add_rows(d.reshape(T * B, -1), pos.reshape(-1), self.g["embed"])
        if not self.config.tie:  # the output layer may know its rows' norm: see grad_norm
            self._norm_parts = (self.output, rest)
        return float(loss), n_tokens, new_state

    def _table_backward(self, table, d_projected):
        """The gradient of layer 0's looked-up x U (d_projected: float[T, B, G*H]) into U and the
        embedding: summed per distinct row first, dP = sum over its tokens, then dU += E[rows]' dP and
        dE[rows] += dP U'."""
        rows, at = table
        U = self._layers_p[0]["U"]
        summed = np.zeros((len(rows), U.shape[1]), self.dtype)
        scatter_add_rows(d_projected.reshape(len(at), -1), at, summed)
        self._layers_g[0]["U"] += np.dot(self.p["embed"][rows].T, summed)
        self.g["embed"][rows] += np.dot(summed, U.T)

    def apply_deferred(self, rate):
        """Output weights -= rate * the gradient ``forward_backward`` deferred, if any (an SGD step
        with the rate and clipping of the optimiser's step over ``grad``)."""
        if self.deferred is not None:
            self.deferred.apply(self.p["output.W"], rate)
            self.deferred = None

    def grad_norm(self):
        """The L2 norm of the gradient (``grad``, read only on its support, and anything deferred);
        after ``forward_backward`` the output rows' share is the one the output layer took (a class
        softmax as it wrote them; both when deferring)."""
        if self._norm_parts is not None:
            output, rest = self._norm_parts
            written = output.written_norm2  # None where the output layer leaves it to us
            if written is not None:
                return math.sqrt(written + squared_norm_spans(self.grad, rest))
        if self.grad_support is None:
            return math.sqrt(squared_norm(self.grad))
        return math.sqrt(squared_norm_spans(self.grad, self.grad_support))

    def clear_grad(self):
        """Zero ``grad``: only the spans written since the last clear, when they are known."""
        if self._dirty is None:
            self.grad[:] = 0
        else:
            zero_spans(self.grad, self._dirty)
        self.grad_cleared()

    def grad_cleared(self):
        """Declare that ``grad`` is zero everywhere (an optimiser step zeroed its support)."""
        self.grad_support = self._dirty = np.empty((0, 2), np.int64)
        self._norm_parts = None

    def grad_written(self, spans=None):
        """Declare that ``grad`` was written outside ``forward_backward`` (e.g. shards summed into it),
        within ``spans`` if given (else anywhere)."""
        self.grad_support = self._dirty = spans
        self._norm_parts = None

    def _support(self, pos, tgt, weights=True):
        """The spans of ``grad`` that a segment with input positions ``pos`` and targets ``tgt`` writes:
        the layers and class weights whole, the embedding rows read, the output rows of the targets'
        classes (all rows for a full softmax; without ``weights`` the rows of b only). Returns (the
        spans besides the output rows, all)."""
        o = self.layout.offsets
        H, E = self.output.H, self.config.embed
        w_at = o["embed"] if self.config.tie else o["output.W"]
        starts, ends = self.output.touched_rows(tgt.reshape(-1))
        rest = merge_spans([self._dense_spans, row_spans(o["embed"], E, pos[pos >= 0])])
        out = [range_spans(w_at, H, starts, ends)] if weights else []
        return rest, merge_spans([rest, *out, range_spans(o["output.b"], 1, starts, ends)])

    def log_probs(self, x_ids, y_ids, state, reset=None):
        """Natural-log probabilities of the targets, without dropout or gradient.

        Returns (float64[T, B] log p(y | history), 0 where y < 0; the state after the segment).
        """
        pos, tgt = self._positions(x_ids), self._positions(y_ids)
        T, B = pos.shape
        inputs, wss, top, _ = self._forward(pos, state, reset, None)
        H = self.config.hidden
        logp = self.output.log_probs(np.ascontiguousarray(top).reshape(T * B, H), self._out_p, tgt.reshape(-1))
        return logp.reshape(T, B), self._final_state(wss)

    def step(self, ids, state):
        """Feed one token per stream (ids: int[B]); returns the new state (for generation)."""
        pos = self._positions(np.asarray(ids).reshape(1, -1))
        _, wss, _, _ = self._forward(pos, state, None, None)
        return self._final_state(wss)

    def next_distribution(self, state):
        """float[B, V] p(next word | state) over word ids, from the top layer's state."""
        probs = self.output.distribution(np.ascontiguousarray(state.h[-1]), self._out_p)
        return probs if self.classes is None else probs[:, self.classes.rank]
