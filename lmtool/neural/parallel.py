"""Data-parallel training steps: a batch's streams cut into fixed shards, one thread per shard.

Each shard runs ``forward_backward`` on its columns with a network of its own (sharing the
parameters, owning its gradient and workspaces); the shards' gradients are then summed in shard
order into the main network's gradient, for one optimiser step. Dropout masks are drawn for the
whole batch from the one generator, exactly as a single thread draws them, and sliced per shard;
the state carried between segments stays per column. So the arithmetic is the single-threaded
one up to the order of float sums, and a seed and a thread count fix the result. Deferred output
weight gradients (``RecurrentNetwork.forward_backward(defer_output=True)``) are joined and normed in
one pass (a class softmax's factors class by class, a full softmax's transposed gradients summed),
then applied, by the threads, each a share of the rows.
"""

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..kernels.param_update import add_spans, squared_norm_spans
from ..threads import even_ranges, set_blas_threads
from .network import NetworkState
from .spans import merge_spans, split_spans


class DataParallel:
    """``forward_backward`` of ``net`` over ``threads`` column shards of a ``batch``-stream batch.

    Shard 0 runs on ``net`` itself (so its gradient lands in ``net.grad``), the others on
    networks sharing ``net.params``. BLAS runs one thread per worker to avoid oversubscription.
    After each call ``grad_norm`` is the summed gradient's L2 norm (for clipping), ``net.grad_support``
    the union of the shards' supports (the sum runs over it only), and ``map_spans`` lets the
    optimiser update the parameters (or only their support) on the same threads.
    """

    def __init__(self, net, batch, threads):
        self.net = net
        self.bounds = even_ranges(batch, max(1, min(threads, batch)))  # column shards
        self.nets = [net] + [type(net)(net.config, net.classes, params=net.params) for _ in self.bounds[1:]]
        self.sum_bounds = even_ranges(net.grad.size, len(self.bounds))
        self.pool = None
        self.grad_norm = None

    def _start(self):
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=len(self.bounds), thread_name_prefix="lmtool-train")
            self.blas_threads = set_blas_threads(1)

    def close(self):
        """Stop the workers and give BLAS back its thread count (the next call starts them again)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
            if self.blas_threads:
                set_blas_threads(self.blas_threads)

    def forward_backward(self, x_ids, y_ids, state, dropout_rng=None, reset=None, defer_output=False):
        """As ``RecurrentNetwork.forward_backward`` for the whole batch; the gradient ends in net.grad
        (and a deferred one, joined from the shards', in net.deferred: see ``apply_deferred``)."""
        self._start()
        T, B = x_ids.shape
        masks = self.net.dropout_masks(T, B, dropout_rng)
        total = int(np.count_nonzero(y_ids >= 0))

        def run(k):
            a, b = self.bounds[k]
            shard_masks = None if masks is None else [None if m is None else np.ascontiguousarray(m[:, a:b])
                                                      for m in masks]
            shard_state = state.select(slice(a, b))
            return self.nets[k].forward_backward(
                np.ascontiguousarray(x_ids[:, a:b]), np.ascontiguousarray(y_ids[:, a:b]), shard_state,
                reset=None if reset is None else np.ascontiguousarray(reset[:, a:b]),
                masks=shard_masks, normaliser=total, defer_output=defer_output)

        results = list(self.pool.map(run, range(len(self.bounds))))
        self._join_gradients()
        loss = 0.0
        for shard_loss, _, _ in results:
            loss += shard_loss
        return loss, total, NetworkState.joined([s for _, _, s in results])

    def _join_gradients(self):
        """The shards' gradients summed into net.grad (their deferred output gradients joined into
        net.deferred) in shard order, on the threads; sets ``grad_norm``."""
        support = merge_spans([n.grad_support for n in self.nets])
        norm2 = sum(self.pool.map(self._sum_gradients, split_spans(support, len(self.nets))))
        self.net.grad_written(support)
        if self.net.deferred is not None:
            deferred, deferred_norm2 = type(self.net.deferred).join_normed(
                [n.deferred for n in self.nets], self.pool.map, len(self.nets))
            norm2 += deferred_norm2
            for n in self.nets:
                n.deferred = None
            self.net.deferred = deferred
        self.grad_norm = math.sqrt(norm2)

    def map_spans(self, fn, support=None):
        """fn(part) on the threads, a part each (optimiser steps): spans (a, b) covering the parameter
        vector, or with ``support`` (int64[k, 2] spans) its share of the support (``split_spans``)."""
        list(self.pool.map(fn, self.sum_bounds if support is None else split_spans(support, len(self.nets))))

    def apply_deferred(self, rate):
        """``RecurrentNetwork.apply_deferred`` on the threads, each a share of the output rows."""
        deferred = self.net.deferred
        if deferred is not None:
            W = self.net.p["output.W"]
            list(self.pool.map(lambda part: deferred.apply(W, rate, part), deferred.split(len(self.nets))))
            self.net.deferred = None

    def _sum_gradients(self, spans):
        """net.grad += each other shard's gradient over ``spans`` (part of the shards' joint support),
        in shard order; returns the squared norm of the sum there, taken as the last one is added."""
        if len(self.nets) == 1:
            return squared_norm_spans(self.net.grad, spans)
        for other in self.nets[1:]:
            norm = add_spans(self.net.grad, other.grad, spans)
        return norm
