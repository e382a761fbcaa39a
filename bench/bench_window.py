"""Training throughput of the fixed-window model: lmtool against PyTorch, side by side on one core.

The same model (``bench/torch_window_lm.py``): KJV's vocabulary (12,388 words), a window of N
previous words, embedding and hidden sizes, optimiser (by default ``lmtool train --cell window``'s:
Adam lr 0.002; or SGD lr 20; clipping 0.25) and minibatch of windows (by default train's, 1,024).
lmtool's step is ``WindowTrainer``'s, as ``lmtool train --cell window`` runs it (cutting the
windows included); PyTorch's gets the same windows, cut beforehand. The contenders take turns, a
few minibatches each (``bench_kernels.interleaved_rates``), so that a noisy neighbour slows them
alike. lmtool's class softmax is timed too, against the same PyTorch full softmax (PyTorch has no
class softmax).

    taskset -c 1 python bench/bench_window.py [--window 4 6] [--direct] [--batch 1024] [--optimizer adam]

The script also pins itself to --core (default 1) and holds BLAS to one thread before NumPy loads.
"""

import argparse
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_kernels import interleaved_rates  # noqa: E402
from lmtool.neural.choices import CELL_DEFAULTS  # noqa: E402

TARGET = 1.5
"""From the issue: lmtool's tokens/s at least 1.5x PyTorch's, the same model side by side."""


def lmtool_trainer(data, config, batch, optimizer, classes=None):
    """A ``WindowTrainer`` on KJV train for ``config`` (a ``WindowConfig``): its step, as a function
    of (windows, targets) that runs the trainer's next step instead (``batches`` yields those)."""
    from lmtool.neural.train import TrainConfig
    from lmtool.neural.window_model import WindowModel
    from lmtool.neural.window_train import WindowTrainer

    model = WindowModel.create(data.vocab, config, classes, seed=1111)
    trainer = WindowTrainer(model, TrainConfig(batch=batch, bptt=None, optimizer=optimizer), (data.ids, data.lengths))

    def step(ctx, y):
        if trainer.position >= trainer.length:
            trainer.position, trainer.epoch = 0, trainer.epoch + 1
        trainer._step()
    return step, trainer


def batches(trainer):
    """A factory of the (windows, targets) minibatches ``trainer`` takes, from its next step on."""
    from lmtool.neural.window import contexts

    def stream():
        epoch, k = trainer.epoch, trainer.position
        while True:
            if k >= trainer.length:
                epoch, k = epoch + 1, 0
            rows = trainer.order(epoch)[trainer.cuts[k]:trainer.cuts[k + 1]]
            yield contexts(trainer.x, trainer.offset, rows, trainer.net.config.window), trainer.y[rows]
            k += 1
    return stream


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--window", type=int, nargs="+", default=[4, 6])
    ap.add_argument("--embed", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--direct", action="store_true")
    ap.add_argument("--batch", type=int, default=CELL_DEFAULTS["window"]["batch"])
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default=CELL_DEFAULTS["window"]["optimizer"])
    ap.add_argument("--batches", type=int, default=120, help="timed minibatches per contender")
    ap.add_argument("--rounds", type=int, default=12, help="turns the contenders take")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--core", type=int, default=1, help="CPU to pin to (-1: do not pin)")
    ap.add_argument("--no-class", action="store_true", help="time the full softmax only")
    a = ap.parse_args()
    if a.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.core})
    import torch

    import torch_window_lm
    from lmtool.encoded_corpus import encode_corpus
    from lmtool.kernels.word_clusters import exchange_classes
    from lmtool.neural.batches import sentence_stream
    from lmtool.neural.window import WindowConfig

    data = encode_corpus([str(ROOT / "corpora" / "kjv" / "train.txt")])
    V = len(data.vocab)
    classes = None if a.no_class else exchange_classes(*sentence_stream(data.ids, data.lengths)[:2], V, None)
    print(f"KJV train, V = {V:,}; {a.embed} embedding, {a.hidden} hidden, minibatches of {a.batch} windows, "
          f"{a.optimizer}{', direct connections' if a.direct else ''}; torch {torch.__version__}, one thread; "
          f"pinned to core {a.core}\n")
    print("| window | lmtool full softmax tok/s | PyTorch tok/s | ratio | lmtool class softmax tok/s | ratio |")
    print("|---|---|---|---|---|---|")
    for window in a.window:
        sizes = dict(vocab_size=V, window=window, embed=a.embed, hidden=a.hidden, direct=a.direct)
        steps, trainers = {}, {}
        steps["torch"] = torch_window_lm.trainer(V, window, a.embed, a.hidden, a.direct, a.optimizer)
        steps["full"], trainers["full"] = lmtool_trainer(data, WindowConfig(**sizes), a.batch, a.optimizer)
        trainers["torch"] = trainers["full"]  # the same windows, taken by a stream of their own
        if classes is not None:
            steps["class"], trainers["class"] = lmtool_trainer(
                data, WindowConfig(softmax="class", n_classes=classes.n_classes, **sizes), a.batch, a.optimizer,
                classes)
        rates = interleaved_rates(steps, {name: batches(t) for name, t in trainers.items()}, a.warmup, a.rounds,
                                  max(1, a.batches // a.rounds))
        cls = (f"{rates['class']:,.0f} | {rates['class'] / rates['torch']:.2f}x" if classes is not None else "- | -")
        print(f"| {window} | {rates['full']:,.0f} | {rates['torch']:,.0f} | **{rates['full'] / rates['torch']:.2f}x** "
              f"| {cls} |", flush=True)
    print(f"\nTarget: lmtool at least {TARGET}x PyTorch's tokens/s with the same (full) softmax.")


if __name__ == "__main__":
    main()
