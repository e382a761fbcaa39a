"""Training a recurrent LM: truncated BPTT over a sentence stream (or, for a stream model, over the
running text, ``batches.text_stream``), SGD or Adam, gradient clipping, learning-rate decay when
validation perplexity stops improving, checkpoints and resume.

The schedule is Mikolov's RNNLM's and Zaremba et al.'s: after each epoch the model is scored on
the validation text; if it did not improve, the best weights so far come back and the learning
rate is divided by ``decay``; after ``patience`` such epochs in a row training stops. With a time
budget and ``anneal``, each step's rate also falls linearly to 0 over the budget's last ``anneal``
share, so that the run ends at a low rate however many epochs the machine manages. The best
model on validation is the one saved. A checkpoint (the model file plus optimiser, random-number
and data-position state) is written every ``checkpoint_minutes`` and on Ctrl-C; resuming from it
continues the run exactly as if it had not stopped.
"""

import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

from .. import modelfile
from ..errors import LmtoolError
from ..interrupts import STOPPING
from ..progress import bar, silent
from .batches import columns, sentence_stream, text_stream
from .history import History
from .choices import DEFAULT_LR
from .optimizer import Optimizer, scale_for_norm
from .options import word_default

CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """How to train (what to train is a ``NetworkConfig``); the defaults are ``train``'s for words
    without a time budget (``TrainOptions.fill_defaults``)."""

    batch: int = word_default("batch")
    bptt: int = word_default("bptt")
    optimizer: str = word_default("optimizer")
    lr: float = None
    clip: float = word_default("clip")
    decay: float = word_default("decay")
    min_improvement: float = word_default("min_improvement")  # decay also when valid improves by less
    patience: int = word_default("patience")
    epochs: int = word_default("epochs")
    max_time: float = None  # seconds of training steps (evaluations are not counted)
    anneal: float = word_default("anneal")  # the last share of max_time over which the rate falls to 0
    seed: int = word_default("seed")
    checkpoint_minutes: float = 5.0

    def __post_init__(self):
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]


class TrainingDiverged(LmtoolError):
    pass


class Trainer:
    """Trains ``model`` (a ``RecurrentModel``) on encoded sentences, or on running text if ``model.stream``.

    train: (ids, lengths) of the training text, or (ids, lengths, file_starts) (``EncodedCorpus``'s:
    where a stream restarts); valid: (ids, lengths) or None, scored as ``model.score_continuing`` scores a
    file (``lmtool perplexity``); output: model path
    written whenever validation improves (and at the end); progress: factory as in
    ``lmtool.progress``; log: optional callback taking each epoch's row (dict); threads: worker
    threads, each running a fixed share of the batch's streams (see ``neural.parallel``).
    """

    def __init__(self, model, config, train, valid=None, output=None, progress=silent, log=None, threads=1):
        self.model = model
        self.net = model.network
        self.config = config
        self.output = output
        self.progress = progress
        self.log = log
        self._layout(train)
        self.valid = valid
        if valid is not None and not (valid[0] != 0).any():
            raise LmtoolError("the validation text has no word of the training vocabulary")
        self.optimizer = Optimizer(config.optimizer, self.net.params.size)
        self.rng = np.random.Generator(np.random.PCG64(config.seed))
        self.lr = config.lr
        self.epoch = 1
        self.position = 0
        self.state = self.net.init_state(config.batch)
        self.best = None
        self.best_params = self.net.params.copy()
        self.bad_epochs = 0
        self.history = History()
        self.elapsed = 0.0
        self.epoch_loss = 0.0
        self.epoch_tokens = 0
        self.done = False
        self.stop_requested = False
        self.parallel = self._parallel(threads) if threads > 1 else None

    def _layout(self, train):
        """Lay the training sentences (or a stream model's running text) out for steps: here ``batch``
        columns of one stream, a step taking ``bptt`` rows of them. Sets ``length`` (positions in an
        epoch) and ``stride`` (per step)."""
        x, y, reset = text_stream(*train) if self.model.stream else sentence_stream(*train[:2])
        if len(x) < self.config.batch * 2:
            raise LmtoolError(f"the training text has {len(x):,} tokens, too few for one batch of "
                              f"{self.config.batch} streams; lower --batch or give more text")
        self.x, self.y, self.reset = columns(x, y, reset, self.config.batch)
        self.length, self.stride = self.x.shape[0], self.config.bptt

    def _parallel(self, threads):
        from .parallel import DataParallel

        return DataParallel(self.net, self.config.batch, threads)

    # ------------------------------------------------------------------------------------------
    def request_stop(self):
        """Ask the run to checkpoint and stop after the current step (what Ctrl-C does)."""
        self.stop_requested = True

    def run(self, checkpoint_path=None):
        """Train until the epoch budget, the time budget or early stopping ends it.

        Ctrl-C (SIGINT), and SIGTERM or SIGHUP where Python handles them (``lmtool train`` does), are
        deferred to the end of the current step: the checkpoint is written from a consistent state,
        then ``KeyboardInterrupt`` is raised.
        """
        self.stop_requested = False
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, *STOPPING):
                if callable(signal.getsignal(signum)):
                    previous[signum] = signal.signal(signum, lambda *_: self.request_stop())
        try:
            return self._run(checkpoint_path)
        finally:
            if self.parallel is not None:
                self.parallel.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self, checkpoint_path):
        cfg = self.config
        steps_per_epoch = -(-self.length // self.stride)
        last_checkpoint = time.monotonic()
        deadline = None if cfg.max_time is None else cfg.max_time
        try:
            while not self.done and self.epoch <= cfg.epochs:
                with bar(self.progress, f"epoch {self.epoch}", total=steps_per_epoch, unit="batch") as shown:
                    shown.update(self.position // self.stride)
                    started = time.monotonic()
                    while self.position < self.length:
                        t0 = time.monotonic()
                        loss, n = self._step()
                        self.elapsed += time.monotonic() - t0
                        shown.update(1)
                        if n:
                            shown.set_postfix_str(
                                f"lr {self.rate():.3g} loss {self.epoch_loss / max(self.epoch_tokens, 1):.3f} "
                                f"tok/s {self.epoch_tokens / max(time.monotonic() - started, 1e-9):,.0f}"
                                + (f" valid ppl {self.best:.2f}" if self.best else ""))
                        if self.stop_requested:
                            raise KeyboardInterrupt
                        if deadline is not None and self.elapsed >= deadline:
                            self.done = True
                            break
                        if checkpoint_path and time.monotonic() - last_checkpoint > 60 * cfg.checkpoint_minutes:
                            self.save_checkpoint(checkpoint_path)
                            last_checkpoint = time.monotonic()
                self._end_epoch(complete=self.position >= self.length)  # a budget may end at its last step
        except KeyboardInterrupt:
            if checkpoint_path:
                self.save_checkpoint(checkpoint_path)
            raise
        self._finish()
        return self.model

    def _step(self):
        cfg = self.config
        a, b = self.position, min(self.position + cfg.bptt, self.x.shape[0])
        net = self.net if self.parallel is None else self.parallel
        # With SGD the output weights' gradient may stay aside (factored or transposed): apply_deferred below.
        loss, n, state = net.forward_backward(self.x[a:b], self.y[a:b], self.state, self.rng,
                                              reset=self.reset[a:b], defer_output=self.optimizer.kind == "sgd")
        self._update(loss)
        self.state = state
        self.position = b
        self.epoch_loss += loss
        self.epoch_tokens += n
        return loss, n

    def _update(self, loss):
        """The optimiser's step on the gradient that ``forward_backward`` left (clipped), or the run
        stopped if ``loss`` is not finite."""
        cfg = self.config
        if not math.isfinite(loss):
            self._diverged(loss)
        support = self.net.grad_support
        if self.parallel is None:
            scale, _ = scale_for_norm(self.net.grad_norm(), cfg.clip)
            map_spans = None
        else:
            scale, _ = scale_for_norm(self.parallel.grad_norm, cfg.clip)
            map_spans = self.parallel.map_spans
        lr = self.rate()
        if self.optimizer.step(self.net.params, self.net.grad, lr, scale, map_spans=map_spans,
                               support=support, clear=True):
            self.net.grad_cleared()
        (self.net if self.parallel is None else self.parallel).apply_deferred(lr * scale)

    def rate(self):
        """The learning rate of the next step: ``lr``, times the share of the annealing that is left
        (``TrainConfig.anneal`` of ``max_time``; 1 before it starts, 0 at the end of the budget)."""
        cfg = self.config
        if not (cfg.anneal and cfg.max_time):
            return self.lr
        left = max(cfg.max_time - self.elapsed, 0.0)
        return self.lr * min(1.0, left / (cfg.anneal * cfg.max_time))

    def _diverged(self, loss):
        where = f"epoch {self.epoch}, batch {self.position // self.stride + 1}"
        self.net.params[:] = self.best_params
        kept = ""
        if self.output and self.best is not None:
            kept = f"; the best model so far (valid perplexity {self.best:.2f}) is in {self.output}"
        raise TrainingDiverged(f"training diverged at {where} (loss {loss}): try a lower --lr "
                               f"(now {self.lr:g}) or a tighter --clip (now {self.config.clip:g}){kept}")

    def _end_epoch(self, complete):
        train_ppl = math.exp(self.epoch_loss / max(self.epoch_tokens, 1))
        valid_ppl = self.evaluate() if self.valid is not None else None
        score = valid_ppl if valid_ppl is not None else train_ppl
        improved = self.best is None or score < self.best
        slowing = improved and self.best is not None and score > self.best * (1 - self.config.min_improvement)
        row = {"epoch": self.epoch, "lr": self.rate(), "train_ppl": round(train_ppl, 4),
               "valid_ppl": None if valid_ppl is None else round(valid_ppl, 4),
               "tokens": self.epoch_tokens, "complete": complete}
        self.history.add(**row)
        if self.log:
            self.log(dict(row, seconds=round(self.elapsed, 1)))
        if improved:
            self.best = score
            self.best_params[:] = self.net.params
            self.bad_epochs = 0
            if self.output:
                self._write(self.output)
            if slowing and complete:
                self.lr /= self.config.decay
        elif complete:
            self.net.params[:] = self.best_params
            self.lr /= self.config.decay
            self.bad_epochs += 1
            if self.bad_epochs >= self.config.patience:
                self.done = True
        self.epoch += 1
        self.position = 0
        self.epoch_loss = 0.0
        self.epoch_tokens = 0
        self.state = self.net.init_state(self.config.batch)

    def evaluate(self):
        """Perplexity of the validation text, scored as ``lmtool perplexity`` does (sentence by sentence,
        or as one stream)."""
        scores = self.model.score_continuing(*self.valid)[0]
        tokens = len(self.valid[0]) + len(self.valid[1])
        return 10.0 ** (-scores.sentence.sum() / tokens)

    def _finish(self):
        self.net.params[:] = self.best_params
        if self.output:
            self._write(self.output)

    def _meta(self):
        return {"training": dict(self.model.meta.get("training", {}), train_config=asdict(self.config),
                                 best=self.best),
                "history": self.history.epochs}

    def _write(self, path):
        params = self.net.params.copy()
        self.net.params[:] = self.best_params
        try:
            meta, arrays = self.model.file_contents(self._meta())
            modelfile.write(path, self.model.kind, meta, arrays)
        finally:
            self.net.params[:] = params

    # ------------------------------------------------------------------------------------------
    def save_checkpoint(self, path):
        """Everything needed to continue: current and best weights, optimiser, RNG, data position."""
        opt_arrays, opt_info = self.optimizer.state()
        arrays = {"best_params": self.best_params, **self._state_arrays(), **opt_arrays}
        trainer = {"version": CHECKPOINT_VERSION, "epoch": self.epoch, "position": self.position,
                   "lr": self.lr, "best": self.best, "bad_epochs": self.bad_epochs, "elapsed": self.elapsed,
                   "epoch_loss": self.epoch_loss, "epoch_tokens": self.epoch_tokens,
                   "rng": self.rng.bit_generator.state, "optimizer": opt_info, "output": self.output}
        meta, all_arrays = self.model.file_contents(dict(self._meta(), checkpoint=trainer), arrays)
        modelfile.write(path, self.model.kind, meta, all_arrays)

    def load_checkpoint(self, opened):
        """Restore the state written by ``save_checkpoint`` (``opened``: a ``ModelFile``)."""
        info = opened.meta.get("checkpoint")
        if info is None:
            raise LmtoolError("not a checkpoint (a finished model?); --resume takes the .ckpt file "
                              "written during training", opened.path)
        if info["version"] > CHECKPOINT_VERSION:
            raise LmtoolError(f"checkpoint version {info['version']} is newer than this lmtool reads "
                              f"({CHECKPOINT_VERSION}); upgrade lmtool", opened.path)
        self.net.params[:] = opened["params"]
        self.best_params[:] = opened["best_params"]
        self._load_state(opened)
        self.optimizer.load_state(opened.arrays, info["optimizer"])
        self.rng.bit_generator.state = info["rng"]
        for key in ("epoch", "position", "lr", "best", "bad_epochs", "elapsed", "epoch_loss", "epoch_tokens"):
            setattr(self, key, info[key])
        self.history.epochs = list(opened.meta.get("history", []))
        self.model.meta = {k: v for k, v in self.model.meta.items() if k not in ("checkpoint", "history")}

    def _state_arrays(self):
        """The recurrent state carried into the next segment, as checkpoint arrays."""
        return {"state.h": self.state.h, **({} if self.state.c is None else {"state.c": self.state.c})}

    def _load_state(self, opened):
        self.state.h[...] = opened["state.h"]
        if self.state.c is not None:
            self.state.c[...] = opened["state.c"]


def checkpoint_path(output):
    """Where training keeps its checkpoint: beside the output, with .ckpt appended."""
    return os.fspath(output) + ".ckpt"
