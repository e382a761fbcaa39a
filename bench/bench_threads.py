"""Speedup of --threads 2 over 1: scoring KJV train and the synthetic 10M and 50M-token corpora
(when bench/make_corpus.py has written them) with a 5-gram model, and training an LSTM (200 units,
2 layers) with a full and a class softmax for a short time budget. Prints Markdown.

    python bench/bench_threads.py [--budget 30] [--repeat 3] [--rounds 12] [--skip-train] [--skip-score]

Each measurement is a fresh process on both cores (a speedup needs two). Training throughput is
the tokens of the first epoch over the --max-time budget (compilation is cached beforehand), the
best of --repeat runs taken in turns with one and two threads; then, in one process, two trainers
(one thread, two threads) take turns a few steps at a time (``train_steps_in_turns``), which a
noisy host disturbs far less.
``--threads 1`` is strictly one core: training and scoring hold OpenBLAS to one thread per worker.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, KJV, lmtool_cmd  # noqa: E402

TRAIN = os.path.join(KJV, "train.txt")


def kjv5():
    path = os.path.join(CACHE, "kjv-train-5gram.lm")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([*lmtool_cmd(), "count", TRAIN, "--order", "5", "-o", path, "-q"], check=True)
    return path


def wall(cmd, env=None):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
    return time.perf_counter() - start


def scoring_seconds(model, threads, repeat):
    """Best in-process time of scoring (and formatting) KJV train, model loading excluded."""
    code = f"""
import time, lmtool
from lmtool.scoring import format_scores, score_chunks
lm = lmtool.load({model!r}); lm.worker()
best = 1e9
for _ in range({repeat}):
    t = time.perf_counter()
    for text in score_chunks(lm, [{TRAIN!r}], threads={threads}, then=lambda chunk: format_scores(lm, chunk)):
        pass
    best = min(best, time.perf_counter() - t)
print(best)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def train_tokens_per_second(softmax, threads, budget, env=None):
    code = f"""
import json, lmtool
from lmtool.neural.options import TrainOptions
from lmtool.neural.pipeline import run_training
out = {os.path.join(tempfile.gettempdir(), f"bench-threads-{os.getpid()}.lm")!r}
run_training(TrainOptions(corpus=[{TRAIN!r}], output=out, hidden=200, embed=200, layers=2, softmax={softmax!r},
                          epochs=1, max_time={budget}, threads={threads}))
row = lmtool.load(out).meta["history"][0]
print(json.dumps(row))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=dict(os.environ, **(env or {}))).stdout
    row = json.loads(out.strip().splitlines()[-1])
    return row["tokens"] / budget, row["train_ppl"]


def train_steps_in_turns(softmax, rounds, block=5):
    """Median ms per training step with one and with two threads, in one process: two trainers of
    the same LSTM 2x200 on the same KJV batches take turns, ``block`` steps each, for ``rounds``
    rounds, so that the shared host's drift (10-40% within minutes) hits both alike."""
    import numpy as np

    from lmtool.encoded_corpus import encode_corpus
    from lmtool.neural.config import NetworkConfig
    from lmtool.neural.model import RecurrentModel
    from lmtool.neural.options import TrainOptions
    from lmtool.neural.pipeline import word_classes
    from lmtool.neural.train import TrainConfig, Trainer
    from lmtool.threads import set_blas_threads

    set_blas_threads(1)
    data = encode_corpus([TRAIN])
    classes = word_classes(data, len(data.vocab), TrainOptions([TRAIN], "-")) if softmax == "class" else None
    config = NetworkConfig(vocab_size=len(data.vocab), embed=200, hidden=200, layers=2, softmax=softmax,
                           n_classes=classes.n_classes if classes else 0)
    trainers = {threads: Trainer(RecurrentModel.create(data.vocab, config, classes, seed=0), TrainConfig(lr=20.0),
                                 (data.ids, data.lengths), threads=threads) for threads in (1, 2)}
    times = {threads: [] for threads in trainers}
    try:
        for r in range(rounds + 1):  # the first round warms up and is not counted
            for threads, trainer in trainers.items():
                for _ in range(block):
                    start = time.perf_counter()
                    trainer._step()
                    if r:
                        times[threads].append(time.perf_counter() - start)
    finally:
        for trainer in trainers.values():
            if trainer.parallel is not None:
                trainer.parallel.close()
    return [1e3 * float(np.median(times[threads])) for threads in (1, 2)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=12, help="turns of the in-process training comparison")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-score", action="store_true")
    args = parser.parse_args()
    print(f"\n## --threads 2 against 1 ({os.cpu_count()} CPUs)\n")
    print("| task | threads 1 | threads 2 | speedup |")
    print("|---|---|---|---|")
    if not args.skip_score:
        model = kjv5()
        scoring_seconds(model, 2, 1)  # compile and warm the page cache
        one, two = (scoring_seconds(model, t, args.repeat) for t in (1, 2))
        tokens = 850460
        print(f"| score KJV train, 5-gram, scoring only (tokens/s) | {tokens / one:,.0f} | {tokens / two:,.0f} "
              f"| {one / two:.2f}x |", flush=True)
        # A whole command on KJV train is mostly start-up (Python, NumPy, Numba: about 0.7 s, serial);
        # the synthetic corpora (bench/make_corpus.py) show what batch scoring of a big file gets.
        synthetic = [(name, os.path.join(CACHE, f"{name}.txt")) for name in ("synthetic-10M", "synthetic-50M")]
        inputs = [("KJV train", TRAIN)] + [(name, path) for name, path in synthetic if os.path.exists(path)]
        for name, path in inputs:
            for command in ("score", "perplexity"):
                cmd = [*lmtool_cmd(), command, model, path, "-q"]
                one, two = (min(wall(cmd + ["--threads", str(t)]) for _ in range(args.repeat)) for t in (1, 2))
                print(f"| lmtool {command} {name}, 5-gram, whole command (s) | {one:.2f} | {two:.2f} "
                      f"| {one / two:.2f}x |", flush=True)
    if not args.skip_train:
        for softmax in ("full", "class"):
            train_tokens_per_second(softmax, 2, 2.0)  # compile
            runs = {1: [], 2: []}
            for _ in range(args.repeat):  # in turns, so that a slow spell of a shared host hits both
                for threads in runs:
                    runs[threads].append(train_tokens_per_second(softmax, threads, args.budget))
            (one, ppl1), (two, ppl2) = (max(runs[threads]) for threads in (1, 2))  # the fastest run of each
            print(f"| train LSTM 2x200, {softmax} softmax, {args.budget:g} s (tokens/s; train ppl) | "
                  f"{one:,.0f}; {ppl1:.0f} | {two:,.0f}; {ppl2:.0f} | {two / one:.2f}x |", flush=True)
        for softmax in ("full", "class"):
            one, two = train_steps_in_turns(softmax, args.rounds)
            print(f"| train LSTM 2x200, {softmax} softmax, steps in turns in one process (ms per step) | "
                  f"{one:.1f} | {two:.1f} | {one / two:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
