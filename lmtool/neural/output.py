"""Output layers of the recurrent LM: full softmax and class-factored softmax (by name: ``config.OUTPUTS``).

Each layer object owns its scratch arrays and drives the kernels of ``lmtool.kernels.softmax``
behind one interface: ``param_shapes``, ``loss`` (writes dh and accumulates the gradients),
``log_probs``, ``touched_rows`` (the rows ``loss`` writes, for sparse updates), ``distribution``.
Constructors take ``(V, H, classes)``; the class softmax needs the ``WordClasses`` of
``lmtool.neural.classes``.

Full softmax: blocks of rows are as large as ``BLOCK_ELEMENTS`` allows, since BLAS efficiency, not
cache residency, decides the speed. With SGD its weights' gradient can stay deferred, transposed
(``TransposedGradient``): OpenBLAS writes h' P faster than P' h on these shapes and the update
reads it as it is.

Class softmax: its weight gradient covers most rows of W at every step (on KJV 9,600 of 12,388 with
exchange classes), and the output rows' passes over memory are what a class step spends most on
after the recurrent layers; with SGD the gradient can stay as per-class factors
(``FactoredGradient``), multiplied out straight into W by the update.
"""

from dataclasses import dataclass

import numpy as np

from ..kernels.dense import check
from ..kernels.param_update import add_spans, squared_norm
from ..kernels.softmax import (apply_factors, class_distribution, class_softmax, factors_norm, full_distribution,
                               full_softmax, join_factors, subtract_transposed, transposed_norm)
from ..threads import even_ranges

BLOCK_ELEMENTS = 1 << 24
"""Logits per full-softmax block (64 MB in float32), at most 1024 rows. On a 12k vocabulary bigger
blocks keep BLAS nearer its peak (the 3 x (N x H x V) matmuls are ~90% of the time, the softmax
passes over the block ~10%), so a whole 35 x 20 segment is one block: blocks of 350, 175 or 88 rows
were 4%, 15% and 28% slower."""
CLASS_BUDGET = 1 << 16
"""Logits per class-softmax chunk (rows x class size), 256 KB in float32: stays in L2."""

@dataclass(frozen=True, eq=False)
class FactoredGradient:
    """A class softmax's gradient of W left as factors (``ClassSoftmax.loss(..., defer=True)``): class
    c's rows are Z_c' H_c (see ``class_softmax``), where Z_c are the class's scaled p - onehot and H_c
    its tokens' hidden rows. Methods take an optional range of classes (c0, c1), so that threads can
    share the work (``split``) on disjoint rows."""

    start: np.ndarray
    factors: np.ndarray
    factors_at: np.ndarray
    hidden: np.ndarray
    tokens_at: np.ndarray

    def _range(self, classes):
        return classes if classes is not None else (0, len(self.start) - 1)

    def apply(self, W, rate, classes=None):
        """W -= rate * gradient, on the rows of the classes it covers (an SGD step)."""
        apply_factors(W, self.start, self.factors, self.factors_at, self.hidden, self.tokens_at, rate,
                      *self._range(classes))

    def squared_norm(self, classes=None):
        """The gradient's squared norm (float64)."""
        return factors_norm(self.start, self.factors, self.factors_at, self.hidden, self.tokens_at,
                            *self._range(classes))

    def split(self, parts):
        """``parts`` ranges of classes (c0, c1) with near-equal shares of the factors (of the work)."""
        C = len(self.start) - 1
        cuts = np.searchsorted(self.factors_at, self.factors_at[-1] * np.arange(1, parts) / parts)
        edges = [0, *np.minimum(cuts, C).tolist(), C]
        return [(a, b) for a, b in zip(edges[:-1], edges[1:])]

    @classmethod
    def join_normed(cls, parts, map_fn=map, shares=1):
        """The sum of deferred gradients (shards of one batch) as one, class by class in the parts'
        order, and its squared norm: ``map_fn(fn, ranges)`` may share the classes out to threads
        (``shares`` ranges), each joining its classes and norming them while they are in cache."""
        if len(parts) == 1:
            return parts[0], sum(map_fn(parts[0].squared_norm, parts[0].split(shares)))
        factors, hidden = tuple(p.factors for p in parts), tuple(p.hidden for p in parts)
        factors_at = np.stack([p.factors_at for p in parts])
        tokens_at = np.stack([p.tokens_at for p in parts])
        out = cls(parts[0].start, np.empty(sum(len(f) for f in factors), factors[0].dtype), factors_at.sum(axis=0),
                  np.empty((sum(len(h) for h in hidden), hidden[0].shape[1]), hidden[0].dtype), tokens_at.sum(axis=0))

        def join(classes):
            join_factors(factors, factors_at, hidden, tokens_at, out.factors, out.factors_at, out.hidden,
                         out.tokens_at, *classes)
            return out.squared_norm(classes)

        return out, sum(map_fn(join, out.split(shares)))


@dataclass(frozen=True, eq=False)
class TransposedGradient:
    """A full softmax's gradient of W, kept transposed (``FullSoftmax.loss(..., defer=True)``; valid
    until that output layer's next ``loss``). Methods take an optional range of rows of W (r0, r1)."""

    transposed: np.ndarray

    def _range(self, rows):
        return rows if rows is not None else (0, self.transposed.shape[1])

    def apply(self, W, rate, rows=None):
        """W -= rate * gradient (an SGD step)."""
        subtract_transposed(W, self.transposed, rate, *self._range(rows))

    def squared_norm(self, rows=None):
        """The gradient's squared norm (float64)."""
        return transposed_norm(self.transposed, *self._range(rows))

    def split(self, parts):
        """``parts`` near-equal ranges of rows of W."""
        return even_ranges(self.transposed.shape[1], parts)

    @classmethod
    def join_normed(cls, parts, map_fn=map, shares=1):
        """The sum of deferred gradients (shards of one batch), added in the parts' order into the
        first one's array, and its squared norm, taken in the same pass; ``map_fn(fn, ranges)`` may
        share the additions out to threads (``shares`` ranges)."""
        if len(parts) == 1:
            return parts[0], sum(map_fn(parts[0].squared_norm, parts[0].split(shares)))
        total = parts[0].transposed.reshape(-1)
        V = parts[0].transposed.shape[1]

        def add(rows):
            spans = np.array([[rows[0] * V, rows[1] * V]], np.int64)
            for part in parts[1:]:
                norm2 = add_spans(total, part.transposed.reshape(-1), spans)
            return norm2
        return parts[0], sum(map_fn(add, even_ranges(parts[0].transposed.shape[0], shares)))


class _Scratch:
    """Reusable scratch arrays, grown on demand (avoids re-faulting 10 MB buffers every segment)."""

    def __init__(self):
        self.arrays = {}

    def get(self, name, size, dtype):
        a = self.arrays.get(name)
        if a is None or a.size < size or a.dtype != dtype:
            a = self.arrays[name] = np.empty(max(size, 1), dtype)
        return a[:size]


def _check_rows(hs, y, H):
    if not isinstance(hs, np.ndarray) or hs.ndim != 2 or hs.shape[1] != H:
        raise ValueError(f"hs: expected float[N, {H}], found {getattr(hs, 'shape', type(hs))}")
    check("hs", hs, hs.shape, hs.dtype)
    if y is not None:
        check("y", y, (hs.shape[0],), np.int32)


class FullSoftmax:
    """Softmax over all V words: parameters W: [V, H], b: [V]."""

    def __init__(self, V, H, classes=None, block_rows=None):
        self.V, self.H = V, H
        self.block = block_rows or max(64, min(1024, BLOCK_ELEMENTS // V))
        self.scratch = _Scratch()
        self.deferred = None
        """After ``loss`` with ``defer``: the deferred gradient (else None)."""
        self._written = None  # (deferred, db) of the last loss with defer, for written_norm2

    @property
    def written_norm2(self):
        """After ``loss`` with ``defer``: the squared norm of the gradient of W (deferred) and b as they
        stand (else None: the norm of a written gradient is left to the caller). Taken when first
        asked for, so that shards of a batch, whose gradients are normed once joined, skip it."""
        if self._written is None:
            return None
        if not isinstance(self._written, float):
            deferred, db = self._written
            self._written = deferred.squared_norm() + squared_norm(db)
        return self._written

    def param_shapes(self):
        return {"W": (self.V, self.H), "b": (self.V,)}

    def _run(self, hs, p, y, scale, grad, dhs, g, dWT=None):
        N = hs.shape[0]
        blk = max(1, -(-N // -(-N // self.block)))  # equal blocks of at most self.block rows
        dt, s = hs.dtype, self.scratch
        logp = np.empty(N, np.float64)
        loss = full_softmax(hs, p["W"], p["b"], y, scale, blk, grad, dhs, g["W"], g["b"], logp,
                            s.get("z", blk * self.V, dt), s.get("hb", blk * self.H, dt).reshape(blk, self.H),
                            s.get("dhb", blk * self.H, dt).reshape(blk, self.H),
                            s.get("rows", N, np.int32), s.get("tgt", N, np.int32),
                            np.empty((0, self.V), dt) if dWT is None else dWT)
        return loss, logp

    def loss(self, hs, p, y, scale, dhs, g, defer=False):
        """Loss sum over targets y: int32[N] (positions; < 0 ignored); writes dhs, accumulates g.

        ``defer``: leave g["W"] alone and keep this call's gradient of W, transposed, in ``deferred``
        (a ``TransposedGradient``, whose ``apply`` makes the SGD step), else ``deferred`` is None.
        """
        _check_rows(hs, y, self.H)
        check("dhs", dhs, hs.shape, hs.dtype)
        self._written = self.deferred = None
        if not defer:
            return self._run(hs, p, y, scale, True, dhs, g)[0]
        dWT = self.scratch.get("dWT", self.H * self.V, hs.dtype).reshape(self.H, self.V)
        loss = self._run(hs, p, y, scale, True, dhs, g, dWT)[0]
        self.deferred = TransposedGradient(dWT)
        self._written = (self.deferred, g["b"])
        return loss

    def log_probs(self, hs, p, y):
        """float64[N] natural-log probabilities of targets y (0 where y < 0)."""
        _check_rows(hs, y, self.H)
        e2, e1 = np.empty((0, self.H), hs.dtype), np.empty(0, hs.dtype)
        return self._run(hs, p, y, 0.0, False, e2, {"W": e2, "b": e1})[1]

    def touched_rows(self, y):
        """Row ranges (starts, ends) of W and b that ``loss`` writes for targets y: all of them."""
        return np.array([0]), np.array([self.V])

    def distribution(self, hs, p):
        """float[n, V] next-position distributions for hidden rows hs: float[n, H]."""
        _check_rows(hs, None, self.H)
        out = np.empty((hs.shape[0], self.V), hs.dtype)
        full_distribution(hs, p["W"], p["b"], out)
        return out


class ClassSoftmax:
    """Class-factored softmax: parameters W: [V, H], b: [V] (position order), Wc: [C, H], bc: [C]."""

    def __init__(self, V, H, classes=None, budget=CLASS_BUDGET):
        if classes is None:
            raise ValueError("softmax='class' needs the word classes (lmtool.neural.classes)")
        if len(classes.order) != V:
            raise ValueError(f"classes cover {len(classes.order)} words, the vocabulary has {V}")
        self.V, self.H, self.classes, self.budget = V, H, classes, budget
        self.sizes = np.diff(classes.start)
        self.largest = int(self.sizes.max())
        self.scratch = _Scratch()
        self.written_norm2 = self.deferred = None
        """After ``loss``: the squared norm of g["W"] (or of the deferred gradient) and g["b"] over
        ``touched_rows(y)`` as they stood after that call (taken in the kernel while the rows were in
        cache); the deferred gradient or None."""

    def param_shapes(self):
        C = self.classes.n_classes
        return {"W": (self.V, self.H), "b": (self.V,), "Wc": (C, self.H), "bc": (C,)}

    def _run(self, hs, p, y, scale, grad, dhs, g, defer=False):
        N, H = hs.shape
        C = self.classes.n_classes
        dt, s = hs.dtype, self.scratch
        logp = np.empty(N, np.float64)
        zsize = max(self.budget, N * C, self.largest * (H if defer else 1))
        cl = self.classes
        if defer:  # arrays of their own: they outlive this call
            factors = np.empty(int(self.sizes[cl.word_class[y[y >= 0]]].sum()), dt)
            hidden = np.empty((N, H), dt)
        else:
            factors, hidden = np.empty(0, dt), s.get("hb", N * H, dt).reshape(N, H)
        factors_at, tokens_at = np.empty(C + 1, np.int64), np.empty(C + 1, np.int64)
        loss, written = class_softmax(hs, p["Wc"], p["bc"], p["W"], p["b"], cl.start, cl.word_class, y,
                                      scale, self.budget, grad, dhs, g["Wc"], g["bc"], g["W"], g["b"], logp,
                                      s.get("z", zsize, dt), hidden, s.get("dhb", N * H, dt).reshape(N, H),
                                      s.get("rows", N, np.int32), s.get("tgt", N, np.int32),
                                      s.get("yc", N, np.int32), factors, factors_at, tokens_at)
        deferred = FactoredGradient(cl.start, factors, factors_at, hidden, tokens_at) if defer else None
        return loss, logp, written, deferred

    def loss(self, hs, p, y, scale, dhs, g, defer=False):
        """Loss sum over targets y: int32[N] (positions; < 0 ignored); writes dhs, accumulates g.

        ``defer``: leave g["W"] alone and keep its gradient as factors in ``deferred`` (a
        ``FactoredGradient``, whose ``apply`` makes the SGD step), else ``deferred`` is None.
        """
        _check_rows(hs, y, self.H)
        check("dhs", dhs, hs.shape, hs.dtype)
        loss, _, self.written_norm2, self.deferred = self._run(hs, p, y, scale, True, dhs, g, defer)
        return loss

    def log_probs(self, hs, p, y):
        """float64[N] natural-log probabilities of targets y (0 where y < 0)."""
        _check_rows(hs, y, self.H)
        e2, e1 = np.empty((0, self.H), hs.dtype), np.empty(0, hs.dtype)
        return self._run(hs, p, y, 0.0, False, e2, {"W": e2, "b": e1, "Wc": e2, "bc": e1})[1]

    def touched_rows(self, y):
        """Row ranges (starts, ends) of W and b that ``loss`` writes for target positions y (< 0
        ignored): the classes of the targets, except one-word classes (p(w | c) = 1, no gradient)."""
        cl = self.classes
        c = np.unique(cl.word_class[y[y >= 0]])
        c = c[cl.start[c + 1] - cl.start[c] > 1]
        return cl.start[c], cl.start[c + 1]

    def distribution(self, hs, p):
        """float[n, V] next-position distributions for hidden rows hs: float[n, H]."""
        _check_rows(hs, None, self.H)
        out = np.empty((hs.shape[0], self.V), hs.dtype)
        zc = np.empty((hs.shape[0], self.classes.n_classes), hs.dtype)
        class_distribution(hs, p["Wc"], p["bc"], p["W"], p["b"], self.classes.start, zc, out)
        return out

