"""Training the fixed-window model: shuffled minibatches of windows, on one thread or several.

Every target of the training text, ``</s>`` included, is one example: its window of the N previous
words and the word. An epoch visits them all in an order drawn from the seed and the epoch number
(so a resumed run finds it again without saving it), cut into even minibatches of at most
``--batch`` windows. The rest is ``Trainer``'s: SGD or Adam, clipping, the learning rate decayed on
validation, early stopping, checkpoints and resume; a checkpoint's position counts minibatches.

``--threads N`` cuts each minibatch into N shards of windows, one per thread, and sums the
gradients as ``neural.parallel.DataParallel`` does for the recurrent models (dropout masks drawn
for the whole minibatch, then sliced): the windows are independent, so the result differs from
one thread's only by the order of float sums, and a seed and N fix the bytes.
"""

import numpy as np

from ..errors import LmtoolError
from .parallel import DataParallel
from .train import Trainer
from .window import contexts, windowed


class WindowTrainer(Trainer):
    """``Trainer`` for a ``WindowModel``: a step is a minibatch of windows (``config.batch`` at most)."""

    def _layout(self, train):
        self.x, self.y, self.offset = windowed(*train)
        n, batch = len(self.y), self.config.batch
        if n < batch * 2:
            raise LmtoolError(f"the training text has {n:,} tokens, too few for two batches of {batch} "
                              f"windows; lower --batch or give more text")
        steps = -(-n // batch)
        self.cuts = np.arange(steps + 1, dtype=np.int64) * n // steps  # minibatch k: cuts[k]:cuts[k+1]
        self.length, self.stride = steps, 1
        self._order = (None, None)

    def _parallel(self, threads):
        return WindowParallel(self.net, int(np.diff(self.cuts).min()), threads)

    def order(self, epoch):
        """The order in which epoch ``epoch`` visits the windows (int64[n]): a permutation drawn
        from (seed, epoch)."""
        if self._order[0] != epoch:
            rng = np.random.Generator(np.random.PCG64([self.config.seed, epoch]))
            self._order = (epoch, rng.permutation(len(self.y)))
        return self._order[1]

    def _step(self):
        k = self.position
        rows = self.order(self.epoch)[self.cuts[k]:self.cuts[k + 1]]
        ctx = contexts(self.x, self.offset, rows, self.net.config.window)
        net = self.net if self.parallel is None else self.parallel
        loss, n = net.forward_backward(ctx, self.y[rows], self.rng, defer_output=self.optimizer.kind == "sgd")
        self._update(loss)
        self.position = k + 1
        self.epoch_loss += loss
        self.epoch_tokens += n
        return loss, n

    def _state_arrays(self):
        return {}

    def _load_state(self, opened):
        pass


class WindowParallel(DataParallel):
    """``DataParallel`` over the windows of a minibatch: shard k takes the k-th of even slices.

    batch: the smallest minibatch it will get (so no shard is ever empty); threads: shards.
    """

    def forward_backward(self, ctx, y, dropout_rng=None, defer_output=False):
        """As ``WindowNetwork.forward_backward`` for the whole minibatch; the gradient ends in
        net.grad (and a deferred one in net.deferred: see ``apply_deferred``)."""
        self._start()
        B = len(y)
        masks = self.net.dropout_masks(B, dropout_rng)
        total = int(np.count_nonzero(y >= 0))
        bounds = np.arange(len(self.nets) + 1) * B // len(self.nets)

        def run(k):
            a, b = bounds[k], bounds[k + 1]
            shard_masks = None if masks is None else [m[a:b] for m in masks]
            return self.nets[k].forward_backward(ctx[a:b], y[a:b], masks=shard_masks, normaliser=total,
                                                 defer_output=defer_output)

        results = list(self.pool.map(run, range(len(self.nets))))
        self._join_gradients()
        loss = 0.0
        for shard_loss, _ in results:
            loss += shard_loss
        return loss, total
