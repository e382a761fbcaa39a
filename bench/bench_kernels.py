"""Training throughput of lmtool's recurrent network against PyTorch's, side by side on one core.

Word-level LSTM as in PyTorch's word_language_model (and ``shared/bench/torch_word_lm.py``): embedding
200 -> LSTM 200 x L -> softmax over the KJV vocabulary (12,388 words), batch 20, bptt 35, dropout 0.2,
one training step = forward + backward + gradient-norm clipping (0.25) + SGD (lr 20). Prints tokens/s
for lmtool (full and class softmax) and PyTorch (full softmax), their ratios, GFLOP/s and the share of
the core's float32 matmul peak (NumPy's 512 x 512 matmul, measured here), and with --profile where
lmtool's time goes. The three contenders take turns, a few batches each (``interleaved_rates``): on a
shared machine the speed of the core drifts by 10-30% within a minute.

    taskset -c 0 python bench/bench_kernels.py [--layers 1 2] [--cells lstm] [--batches 40] [--classes N]
        [--class-method exchange frequency]
    python bench/bench_kernels.py --layer-only --cells lstm lstm-peephole lstm-coupled --core 1 [--clock cpu]
        # one layer alone: every cell's kernels in turns, timed against the LSTM's (and PyTorch's)

The script pins itself to --core (default 0) and sets OMP/OpenBLAS threads to 1 before importing NumPy.
"""

import argparse
import cProfile
import importlib.util
import math
import os
import pstats
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmtool.kernels.dense import BLAS_BACKEND  # noqa: E402
from lmtool.neural.classes import make_classes  # noqa: E402
from lmtool.neural.classes import exchange_classes  # noqa: E402
from lmtool.neural import NetworkConfig, RecurrentNetwork  # noqa: E402
from lmtool.neural.choices import CELLS  # noqa: E402
from lmtool.neural.optimizer import Optimizer, scale_for_norm  # noqa: E402

TARGETS = {"full": 1.5, "class": 8.0}
"""From the issue: full softmax >= 1.5x PyTorch; class softmax >= 8x PyTorch's full softmax."""


def corpus():
    """KJV training tokens as ids (vocabulary built like torch_word_lm.py), or a Zipf stand-in."""
    for folder in (ROOT / "corpora" / "kjv", ROOT.parent / "shared" / "corpora" / "kjv"):
        path = folder / "train.txt"
        if path.exists():
            lines = [line.split() + ["</s>"] for line in path.open(encoding="utf-8")]
            vocab = sorted({w for line in lines for w in line} | {"<unk>", "</s>"})
            index = {w: i for i, w in enumerate(vocab)}
            return np.array([index[w] for line in lines for w in line], np.int32), len(vocab), str(path)
    rng = np.random.default_rng(0)
    V = 12388
    return (np.minimum(rng.zipf(1.1, 850_000), V) - 1).astype(np.int32), V, "synthetic Zipf(1.1)"


def batches(ids, batch, bptt):
    """(x, y) int32[bptt, batch] segments of the stream cut into ``batch`` columns, as PyTorch's example."""
    n = len(ids) // batch
    cols = ids[:n * batch].reshape(batch, n).T
    for i in range(0, n - 1 - bptt, bptt):
        yield np.ascontiguousarray(cols[i:i + bptt]), np.ascontiguousarray(cols[i + 1:i + 1 + bptt])


def matmul_peak():
    """GFLOP/s of NumPy's float32 (512 x 512) @ (512 x 512), best of several runs."""
    a = np.random.default_rng(0).random((512, 512), dtype=np.float32)
    out = np.empty_like(a)
    best = math.inf
    for _ in range(30):
        t = time.perf_counter()
        np.dot(a, a, out=out)
        best = min(best, time.perf_counter() - t)
    return 2 * 512 ** 3 / best / 1e9


def interleaved_rates(steps, data, warmup, rounds, per_round, clock=time.perf_counter):
    """Training tokens/s of each step function in ``steps`` ({name: step}), timed in turns.

    Each runs ``warmup`` batches, then ``rounds`` rounds of ``per_round`` batches each, the step
    functions taking turns; the rate is a batch's tokens (targets: ``y.size``) over the median batch
    time. Taking turns lets a noisy neighbour on the machine slow every contender alike instead of
    whichever ran at that moment. ``data``: a factory of (x, y) batches, or a dict of them by name.
    ``clock``: wall time, or ``time.thread_time`` to leave out the time the core gives other processes
    (for single-threaded steps only).
    """
    streams = {name: (data[name] if isinstance(data, dict) else data)() for name in steps}
    times, tokens = {name: [] for name in steps}, {}
    for name, step in steps.items():
        for _ in range(warmup):
            step(*next(streams[name]))
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                x, y = next(streams[name])
                t = clock()
                step(x, y)
                times[name].append(clock() - t)
                tokens[name] = y.size
    return {name: tokens[name] / float(np.median(t)) for name, t in times.items()}


def lmtool_trainer(cfg, classes, seed=1111, lr=20.0, clip=0.25):
    """One training step with lmtool's own network and optimiser (as ``lmtool train`` runs it)."""
    net = RecurrentNetwork(cfg, classes, seed=seed)
    state = [net.init_state(20)]
    rng = np.random.default_rng(seed)
    sgd = Optimizer("sgd", net.params.size)

    def step(x, y):
        _, _, state[0] = net.forward_backward(x, y, state[0], rng, defer_output=True)
        scale, _ = scale_for_norm(net.grad_norm(), clip)
        if sgd.step(net.params, net.grad, lr, scale, support=net.grad_support, clear=True):
            net.grad_cleared()
        net.apply_deferred(lr * scale)
    return step


def torch_trainer(cell, layers, V, lr=20.0, clip=0.25, dropout=0.2, size=200):
    import torch
    import torch.nn as nn
    torch.set_num_threads(1)
    torch.manual_seed(1111)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(V, size)
            kind = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
            self.rnn = kind(size, size, layers, dropout=dropout if layers > 1 else 0)
            self.decoder = nn.Linear(size, V)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

        def forward(self, x, hidden):
            out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
            return torch.log_softmax(self.decoder(self.drop(out)), dim=-1).view(-1, V), hidden

    model = Model()
    model.train()
    zeros = torch.zeros(layers, 20, size)
    hidden = [(zeros, zeros.clone()) if cell == "lstm" else zeros]
    crit = nn.NLLLoss()

    def step(x, y):
        h = tuple(t.detach() for t in hidden[0]) if cell == "lstm" else hidden[0].detach()
        model.zero_grad()
        out, hidden[0] = model(torch.from_numpy(x).long(), h)
        crit(out, torch.from_numpy(y).long().reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
    return step, torch.__version__


def flops_per_token(cell, layers, size, V, softmax, logits_per_token):
    """Matmul FLOPs per training token: 3 matmuls (forward, two backward) of 2 m n k each."""
    gates = CELLS[cell].GATES
    recurrent = layers * 6 * gates * size * (size + size)
    return recurrent + 6 * size * (V if softmax == "full" else logits_per_token)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", nargs="+", default=["lstm"], choices=list(CELLS),
                    help="PyTorch has no peephole or coupled LSTM: those run without it")
    ap.add_argument("--layers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--batches", type=int, default=40, help="timed batches per configuration and contender")
    ap.add_argument("--rounds", type=int, default=8, help="turns the contenders take (see interleaved_rates)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--core", type=int, default=0, help="CPU to pin to (-1: do not pin)")
    ap.add_argument("--classes", type=int, help="classes of the class softmax (default about sqrt(V))")
    ap.add_argument("--class-method", nargs="+", choices=["exchange", "frequency"], default=["exchange"],
                    help="how the class softmax's classes are made (as lmtool train --class-method); "
                         "several: each is a contender of its own, timed in the same turns")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--profile", action="store_true", help="where lmtool's time goes, per kernel")
    ap.add_argument("--layer-only", action="store_true",
                    help="time one recurrent layer alone (no embedding, no output layer) against PyTorch's")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="with --layer-only: cpu counts this thread's CPU time only, which a busy core "
                         "distorts less (each contender is single-threaded)")
    a = ap.parse_args()
    if a.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.core})
    if a.layer_only:
        have_torch = not a.no_torch and importlib.util.find_spec("torch") is not None
        print(f"BLAS {BLAS_BACKEND}; pinned to core {a.core}; torch {'yes' if have_torch else 'not importable'}")
        rates = recurrent_layer_rates(a.cells, a.rounds, max(1, a.batches // a.rounds), a.warmup, have_torch,
                                      time.thread_time if a.clock == "cpu" else time.perf_counter)
        base = rates.get("lstm")
        for cell in a.cells:
            line = (f"{cell} layer alone (35 x 20, 200 units, forward + backward): {1e6 / rates[cell]:.2f} us/token "
                    f"({a.clock} time)")
            if base and cell != "lstm":
                line += f", {base / rates[cell]:.3f}x the LSTM's time"
            if f"torch {cell}" in rates:
                line += (f"; torch {1e6 / rates[f'torch {cell}']:.2f} us/token "
                         f"({rates[cell] / rates[f'torch {cell}']:.2f}x its speed)")
            print(line)
        return
    ids, V, source = corpus()
    counts = np.bincount(ids, minlength=V)
    classes, logits = {}, {}
    for method in a.class_method:
        if method == "exchange":
            classes[method] = exchange_classes(ids[:-1], ids[1:], V, a.classes)
        else:
            classes[method] = make_classes(counts, a.classes)
        sizes = np.diff(classes[method].start)
        logits[method] = classes[method].n_classes + float(
            np.sum(counts[classes[method].order] * sizes[classes[method].word_class]) / counts.sum())
    peak = matmul_peak()
    have_torch = not a.no_torch and importlib.util.find_spec("torch") is not None
    described = "; ".join(f"{m}: {c.n_classes} classes, {logits[m]:.0f} logits per token on average"
                          for m, c in classes.items())
    print(f"corpus {source}: {len(ids):,} tokens, V = {V:,}; class softmax by {described}")
    print(f"BLAS {BLAS_BACKEND}; NumPy float32 512x512 matmul peak {peak:.1f} GFLOP/s; "
          f"pinned to core {a.core}; torch {'yes' if have_torch else 'not importable'}")
    print(f"{'config':<24}{'lmtool tok/s':>14}{'torch tok/s':>13}{'ratio':>8}{'target':>8}"
          f"{'GFLOP/s':>9}{'% peak':>8}")
    for cell in a.cells:
        for layers in a.layers:
            steps = {}
            if have_torch and cell in ("lstm", "gru", "rnn"):
                steps["torch"], version = torch_trainer(cell, layers, V)
            contenders = {"full": None, **{f"class by {m}": m for m in classes}}
            for name, method in contenders.items():
                softmax = "full" if method is None else "class"
                cfg = NetworkConfig(vocab_size=V, cell=cell, embed=200, hidden=200, layers=layers,
                                    dropout=0.2, softmax=softmax,
                                    n_classes=0 if method is None else classes[method].n_classes)
                steps[name] = lmtool_trainer(cfg, None if method is None else classes[method])
            rates = interleaved_rates(steps, lambda: batches(ids, 20, 35), a.warmup, a.rounds,
                                      max(1, a.batches // a.rounds))
            torch_rate = rates.get("torch")
            for name, method in contenders.items():
                softmax = "full" if method is None else "class"
                rate = rates[name]
                flops = flops_per_token(cell, layers, 200, V, softmax, logits.get(method, 0))
                gflops = rate * flops / 1e9
                ratio = f"{rate / torch_rate:.2f}x" if torch_rate else "-"
                label = "full softmax" if method is None else f"class, {method[:4]}"
                print(f"{cell} {layers}L {label:<16}{rate:>14,.0f}"
                      f"{(f'{torch_rate:,.0f}' if torch_rate else '-'):>13}{ratio:>8}"
                      f"{TARGETS[softmax]:>7.1f}x{gflops:>9.1f}{100 * gflops / peak:>7.0f}%", flush=True)
                if a.profile:
                    profile(steps[name], ids)


def recurrent_layer_rates(cells, rounds, per_round, warmup, with_torch=True, clock=time.perf_counter):
    """Tokens/s of one recurrent layer (200 units) alone, forward and backward over a 35 x 20 segment:
    each of lmtool's ``cells`` (names in ``CELLS``) and, ``with_torch``, PyTorch's LSTM and GRU where
    asked for ("torch lstm", "torch gru"), all in turns. Bounds what any output layer can gain."""
    T, B, H = 35, 20, 200
    rng = np.random.default_rng(0)
    x = rng.random((T, B, H), dtype=np.float32)
    reset, dh, dx = np.zeros((T, B), bool), np.empty((T, B, H), np.float32), np.empty_like(x)
    steps = {}

    def ours(kernel):
        p = {k: rng.uniform(-0.07, 0.07, s).astype(np.float32) for k, s in kernel.param_shapes(H, H).items()}
        g = {k: np.zeros_like(v) for k, v in p.items()}
        ws = kernel.workspace(T, B, H, H, np.float32)

        def step(*_):
            for name in kernel.STATE:
                ws[name][0] = 0
            kernel.forward(x, p, ws, reset)
            dh[:] = 0.01
            kernel.backward(x, p, ws, reset, dh, dx, g)
        return step

    def theirs(cell):
        import torch

        torch.set_num_threads(1)
        layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](H, H, 1)
        xt = torch.from_numpy(x).requires_grad_(True)

        def step(*_):
            out, _ = layer(xt)
            out.backward(torch.full_like(out, 0.01))
        return step

    for cell in cells:
        steps[cell] = ours(CELLS[cell])
        if with_torch and cell in ("lstm", "gru"):
            steps[f"torch {cell}"] = theirs(cell)
    ids = np.zeros((T, B), np.int32)  # stands for the segment's tokens: rates count ids.size
    segments = lambda: iter(lambda: (ids, ids), None)  # noqa: E731 (the same segment forever)
    return interleaved_rates(steps, segments, warmup, rounds, per_round, clock)


def profile(step, ids, n=20):
    """Print the kernels that take the most time over n steps."""
    prof = cProfile.Profile()
    data = batches(ids, 20, 35)
    for _ in range(3):
        step(*next(data))
    prof.enable()
    for _ in range(n):
        step(*next(data))
    prof.disable()
    stats = pstats.Stats(prof)
    rows = sorted(((v[2], f"{Path(k[0]).name}:{k[2]}") for k, v in stats.stats.items()), reverse=True)
    total = sum(t for t, _ in rows)
    print("    " + ", ".join(f"{name} {100 * t / total:.0f}%" for t, name in rows[:8] if t > 0.01 * total))


if __name__ == "__main__":
    main()
