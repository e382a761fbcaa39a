"""Recurrent training benchmarks that need whole runs, not timed batches (those are bench_kernels.py):

1. class against full softmax after the same number of epochs (the issue asks for test perplexity
   within 5%);
2. quality in a fixed budget: the bare command (``lmtool train corpora/kjv/train.txt --valid
   corpora/kjv/valid.txt -o m.lm --max-time 15m``, every other option at its default) and the best
   recipe known, 15 minutes each on one core of their own, side by side, then KJV test perplexity
   (target: the bare command at 31 or lower, within 5% of the recipe), against PyTorch's 2x200 LSTM
   (38.67) and KenLM's 5-gram (41.59) from ../shared/ANCHORS.md;
3. character level on tiny-shakespeare (first 90% train, last 10% valid, cut at a line end, written to
   the bench cache, never into the project): the bare ``--level char --stream`` command for 10
   minutes and PyTorch's char-rnn script (../shared/bench/torch_char_lm.py, batch 32, sequence 100,
   Adam 2e-3) for 10 minutes, in turns on one core: characters/s, validation nats per character,
   training throughput in turns batch by batch, and samples of ``generate --lines``;
4. (``--only cells``, not in the default set) the recurrent cells side by side: each trained with
   the best recipe for the same budget, then KJV test perplexity.
5. the fixed-window model (``--cell window``) in a fixed budget: ``--window`` 4 and 6 side by side,
   one core each, then KJV test perplexity (``--only window --window-minutes 15`` is the issue's run).

Every run is pinned to one core. Prints Markdown.

    python bench/bench_train.py                 # all four (about 80 minutes)
    python bench/bench_train.py --only quality [--minutes 15]   # the bare command against the recipe
    python bench/bench_train.py --only char [--char-minutes 10]  # lmtool --stream against PyTorch's char-rnn
    python bench/bench_train.py --only softmax [--epochs 3] [--layers 1] [--cell gru]
        [--min-improvement 0.05] [--dropout 0.2]  # the decay schedule and dropout of the softmax comparison
    python bench/bench_train.py --only cells [--cell-minutes 15] [--cells lstm gru lstm-peephole lstm-coupled]
    python bench/bench_train.py --only window [--window-minutes 1] [--windows 4 6]
"""

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, KJV, ROOT, SHARED, SINGLE_THREAD, lmtool_cmd, run_measured  # noqa: E402

SHAKESPEARE = os.path.join(SHARED, "corpora", "tinyshakespeare", "input.txt")
TORCH_CHAR = os.path.join(SHARED, "bench", "torch_char_lm.py")
ANCHOR = {"torch_15min_test_ppl": 38.67, "kenlm_5gram_test_ppl": 41.59, "torch_char_10min_nats": 1.507,
          "old_defaults_15min_test_ppl": 39.65, "recipe_15min_test_ppl": 29.74}
BEST_RECIPE = ["--cell", "lstm", "--softmax", "class", "--classes", "300", "--layers", "2", "--hidden", "256",
               "--dropout", "0.25", "--min-improvement", "0.05"]
"""The best 15-minute KJV recipe known, every option spelled out (300 classes rather than sqrt(V) = 111:
about 5% slower per token, but better per epoch, see SOFTMAX_RUNS)."""
QUALITY_RUNS = {"bare command (the defaults)": [], "best recipe": BEST_RECIPE}
"""The fixed-budget runs, side by side, one core each: the defaults should carry the recipe."""
CHAR_ARGS = ["--level", "char", "--stream"]
"""The character-level command: every other option at its default."""


def train(tmp, name, args, corpus="train.txt", valid="valid.txt", core=0):
    """Train with ``args`` on ``core``; returns (wall seconds, model path, per-epoch log rows)."""
    model, log = os.path.join(tmp, f"{name}.lm"), os.path.join(tmp, f"{name}.csv")
    cmd = lmtool_cmd() + ["train", os.path.join(KJV, corpus) if os.sep not in corpus else corpus,
                          "--valid", os.path.join(KJV, valid) if os.sep not in valid else valid,
                          "-o", model, "--log", log, "-q", *args]
    wall, _, _ = run_measured(cmd, core=core)
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    return wall, model, rows


def test_perplexity(model, text=None):
    _, _, out = run_measured(lmtool_cmd() + ["perplexity", model, text or os.path.join(KJV, "test.txt"),
                                             "--json", "-q"])
    return json.loads(out)["perplexity"]


SOFTMAX_RUNS = {"full": ["--softmax", "full"],
                "class, sqrt(V) classes by frequency": ["--softmax", "class", "--class-method", "frequency"],
                "class, sqrt(V) classes by exchange (default)": ["--softmax", "class"],
                "class, --classes 300 by exchange": ["--softmax", "class", "--classes", "300"]}
"""The output layers compared after the same number of epochs (``--cell``, ``--layers``, 200 units).
Exchange clustering (the default ``--class-method``) groups words that follow the same contexts;
frequency bins (RNNLM's) mix them, and on KJV end 14% behind the full softmax after 10 epochs (exchange: 4.5%).
More classes cost more logits per token (111 by exchange: 156, 300: about 330) but learn faster."""


def bench_softmax(tmp, epochs, optimizer="sgd", layers=2, cell="lstm", min_improvement=0.0, dropout=0.0):
    from concurrent.futures import ThreadPoolExecutor

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    rate = "SGD lr 20" if optimizer == "sgd" else "Adam lr 0.002"
    if min_improvement:
        rate += f", --min-improvement {min_improvement:g}"
    if dropout:
        rate += f", --dropout {dropout:g}"
    print(f"\n## class against full softmax, {cell.upper()} {layers}x200, {epochs} epoch(s) each, {rate}\n")
    print(f"The full softmax trains on core {cores[0]}, the class softmaxes one after the other on core "
          f"{cores[-1]}.\n")
    print("| softmax | epochs | train wall s | tokens/s | valid ppl per epoch | test ppl | vs full |")
    print("|---|---|---|---|---|---|---|")
    base = ["--cell", cell, "--layers", str(layers), "--hidden", "200", "--epochs", str(epochs),
            "--optimizer", optimizer, "--min-improvement", str(min_improvement), "--dropout", str(dropout)]
    names = list(SOFTMAX_RUNS)

    def run(name, core):
        return train(tmp, f"sm-{names.index(name)}", base + SOFTMAX_RUNS[name], core=core)

    with ThreadPoolExecutor(max_workers=2) as pool:
        full = pool.submit(run, names[0], cores[0])
        classes = pool.submit(lambda: [run(n, cores[-1]) for n in names[1:]])
        results = [full.result()] + classes.result()
    reference = None
    for name, (wall, model, rows) in zip(names, results):
        tokens = sum(int(r["tokens"]) for r in rows)
        ppl = test_perplexity(model)
        reference = reference or ppl
        curve = " ".join(f"{float(r['valid_ppl']):.2f}" for r in rows)
        if min_improvement:
            curve += " (lr " + " ".join(f"{float(r['lr']):g}" for r in rows) + ")"
        print(f"| {name} | {len(rows)} | {wall:.0f} | {tokens / wall:,.0f} | {curve} | {ppl:.2f} "
              f"| {100 * (ppl / reference - 1):+.1f}% |")
    print("\nTarget: class softmax test perplexity within 5% of the full softmax's; tokens/s include "
          "start-up and validation.")


def bench_quality(tmp, minutes):
    from concurrent.futures import ThreadPoolExecutor

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    print(f"\n## quality in a fixed budget: {minutes:g} minutes of training on one core, KJV test\n")
    print(f"`lmtool train corpora/kjv/train.txt --valid corpora/kjv/valid.txt -o m.lm --max-time {minutes:g}m` "
          f"with the options below; the runs go side by side, one core each (cores {cores[:len(QUALITY_RUNS)]}), "
          "so run nothing else meanwhile.\n")
    jobs = list(QUALITY_RUNS.items())
    with ThreadPoolExecutor(max_workers=max(1, min(len(cores), len(jobs)))) as pool:
        futures = [pool.submit(train, tmp, f"quality{i}", extra + ["--max-time", f"{minutes:g}m"],
                               core=cores[i % len(cores)]) for i, (_, extra) in enumerate(jobs)]
        results = [f.result() for f in futures]
    rows_out, ppls = [], []
    for (name, extra), (wall, model, rows) in zip(jobs, results):
        ppl = test_perplexity(model)
        ppls.append(ppl)
        curve = " ".join(f"{float(r['valid_ppl']):.1f}" + ("" if r["complete"] == "True" else "*") for r in rows)
        lrs = " ".join(f"{float(r['lr']):g}" for r in rows)
        rows_out.append(f"| lmtool, {name} | `{' '.join(extra) or '(none)'}` | {len(rows)} | {curve} | {lrs} "
                        f"| **{ppl:.2f}** |")
    print("| model | options | epochs | valid ppl per epoch (* partial) | lr per epoch | test ppl |\n"
          "|---|---|---|---|---|---|")
    print("\n".join(rows_out))
    print(f"| lmtool 2x200, the defaults before they carried the recipe (`--hidden 200 --layers 2 --softmax full "
          f"--dropout 0 --min-improvement 0`) | | | | | {ANCHOR['old_defaults_15min_test_ppl']} |\n"
          f"| PyTorch LSTM 2x200, 15 min (ANCHORS.md) | | 5 | 73.6 51.1 43.5 41.1 37.0 (every 3 min) | 20 | "
          f"{ANCHOR['torch_15min_test_ppl']} |\n| KenLM 5-gram (ANCHORS.md) | | | | | "
          f"{ANCHOR['kenlm_5gram_test_ppl']} |")
    bare, recipe = ppls
    print(f"\nTarget: the bare command at 31 or lower and within 5% of the recipe: {bare:.2f}, "
          f"{100 * (bare / recipe - 1):+.1f}% ({'met' if bare <= 31 and bare <= 1.05 * recipe else 'not met'}).")


CELL_ARGS = [a for a in BEST_RECIPE if a not in ("--cell", "lstm")]
"""The best fixed-budget recipe (``BEST_RECIPE``) for every cell of the comparison."""
CELLS = ["lstm", "gru", "lstm-peephole", "lstm-coupled"]


def bench_cells(tmp, minutes, cells=CELLS):
    """Each cell trained with ``CELL_ARGS`` for ``minutes``, then KJV test perplexity. The runs go two at
    a time, one per core; each core takes every other cell, in order."""
    from concurrent.futures import ThreadPoolExecutor

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    lanes = cores[:2]
    unit = "minute" if minutes == 1 else "minutes"
    print(f"\n## recurrent cells in a fixed budget: {minutes:g} {unit} of training on one core each, KJV test\n")
    print(f"`lmtool train corpora/kjv/train.txt --valid corpora/kjv/valid.txt --cell CELL {' '.join(CELL_ARGS)} "
          f"--max-time {minutes:g}m`; two runs at a time, one on each of cores {lanes}, so run nothing else "
          "meanwhile.\n")

    def lane(k):
        return [train(tmp, f"cell-{cell}", ["--cell", cell, *CELL_ARGS, "--max-time", f"{minutes:g}m"],
                      core=lanes[k]) for cell in cells[k::len(lanes)]]

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        done = list(pool.map(lane, range(len(lanes))))
    results = {cell: done[i % len(lanes)][i // len(lanes)] for i, cell in enumerate(cells)}
    print("| cell | epochs | tokens/s | valid ppl per epoch (* partial) | test ppl | vs lstm |")
    print("|---|---|---|---|---|---|")
    reference = None
    for cell, (wall, model, rows) in results.items():
        ppl = test_perplexity(model)
        reference = ppl if cell == "lstm" else reference
        tokens = sum(int(r["tokens"]) for r in rows)
        curve = " ".join(f"{float(r['valid_ppl']):.1f}" + ("" if r["complete"] == "True" else "*") for r in rows)
        versus = f"{100 * (ppl / reference - 1):+.1f}%" if reference else "-"
        print(f"| {cell} | {len(rows)} | {tokens / wall:,.0f} | {curve} | **{ppl:.2f}** | {versus} |")
    print("\ntokens/s include start-up and validation.")


WINDOW_ARGS = ["--cell", "window", "--softmax", "class"]
"""The fixed-window recipe of the budget run (``--window N`` and ``--max-time`` added)."""


def bench_window(tmp, minutes, windows):
    from concurrent.futures import ThreadPoolExecutor

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    print(f"\n## the fixed-window model in a fixed budget: {minutes:g} minutes of training on one core, KJV test\n")
    print(f"`lmtool train corpora/kjv/train.txt --valid corpora/kjv/valid.txt {' '.join(WINDOW_ARGS)} --window N "
          f"--max-time {minutes:g}m`; the runs go side by side, one core each (cores "
          f"{[cores[i % len(cores)] for i in range(len(windows))]}), so run nothing else meanwhile.\n")
    with ThreadPoolExecutor(max_workers=max(1, min(len(cores), len(windows)))) as pool:
        futures = [pool.submit(train, tmp, f"window{n}", [*WINDOW_ARGS, "--window", str(n), "--max-time",
                                                          f"{minutes:g}m"], core=cores[i % len(cores)])
                   for i, n in enumerate(windows)]
        results = [f.result() for f in futures]
    print("| --window | epochs | tokens/s | valid ppl per epoch (* partial) | lr per epoch | test ppl |\n"
          "|---|---|---|---|---|---|")
    for n, (wall, model, rows) in zip(windows, results):
        tokens = sum(int(r["tokens"]) for r in rows)
        curve = " ".join(f"{float(r['valid_ppl']):.1f}" + ("" if r["complete"] == "True" else "*") for r in rows)
        lrs = " ".join(f"{float(r['lr']):g}" for r in rows)
        print(f"| {n} | {len(rows)} | {tokens / wall:,.0f} | {curve} | {lrs} | **{test_perplexity(model):.2f}** |")
    print(f"\ntokens/s include start-up and validation. KenLM's 5-gram: {ANCHOR['kenlm_5gram_test_ppl']}; "
          f"PyTorch's 2x200 LSTM in 15 minutes: {ANCHOR['torch_15min_test_ppl']} (ANCHORS.md).")


def shakespeare_split():
    """First 90% / last 10% of tiny-shakespeare (by characters, cut at a line end), in the bench cache."""
    train, valid = os.path.join(CACHE, "shakespeare-train.txt"), os.path.join(CACHE, "shakespeare-valid.txt")
    if not os.path.exists(valid):
        os.makedirs(CACHE, exist_ok=True)
        with open(SHAKESPEARE, encoding="utf-8") as f:
            text = f.read()
        cut = text.index("\n", int(0.9 * len(text))) + 1
        for path, part in ((train, text[:cut]), (valid, text[cut:])):
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write(part)
            os.replace(path + ".tmp", path)
    return train, valid


def bench_char(tmp, minutes, core=0):
    """The bare ``--level char --stream`` command against PyTorch's char-rnn script, in turns on ``core``."""
    if not os.path.exists(SHAKESPEARE) or not os.path.exists(TORCH_CHAR):
        print(f"\n(no {SHAKESPEARE} or {TORCH_CHAR}: character-level benchmark skipped)")
        return
    train_path, valid_path = shakespeare_split()
    args = CHAR_ARGS + ["--max-time", f"{minutes:g}m"]
    print(f"\n## character level: tiny-shakespeare, {minutes:g} minutes on core {core}, lmtool against PyTorch\n")
    print(f"lmtool: `lmtool train shakespeare-train.txt --valid shakespeare-valid.txt -o m.lm {' '.join(args)}` "
          f"(the defaults: LSTM 2x256, see `lmtool train --help`); PyTorch: `python {TORCH_CHAR} --budget "
          f"{60 * minutes:g}` (LSTM 2x256, embedding 256, batch 32, sequence 100, Adam 2e-3), run after it on the "
          "same core. Characters/s count training steps only (both leave evaluations out); validation is in nats "
          "per character, the newline included (lmtool: `lmtool perplexity m.lm shakespeare-valid.txt`, one "
          "stream; PyTorch: 32 streams).\n")
    rates = char_rates(train_path, core)
    _, model, rows = train(tmp, "char", args, corpus=train_path, valid=valid_path, core=core)
    seconds = float(rows[-1]["seconds"])
    ours_rate = sum(int(r["tokens"]) for r in rows) / seconds
    ours_nats = math.log(test_perplexity(model, valid_path))
    theirs = torch_char_run(minutes, core)
    print("| | epochs | chars/s (training) | valid nats/char | valid per epoch (nats) |\n|---|---|---|---|---|")
    curve = " ".join(f"{math.log(float(r['valid_ppl'])):.3f}" + ("" if r["complete"] == "True" else "*")
                     for r in rows)
    print(f"| lmtool | {len(rows)} | {ours_rate:,.0f} | **{ours_nats:.3f}** | {curve} |")
    if theirs:
        print(f"| PyTorch | {theirs['epochs']} | {theirs['rate']:,.0f} | {theirs['nats']:.3f} | "
              f"{' '.join(f'{v:.3f}' for v in theirs['curve'])} (every 150 s) |")
        print(f"\nWhole runs: lmtool {ours_rate / theirs['rate']:.2f}x PyTorch's characters/s. ", end="")
    print(f"In turns, a few batches each: lmtool {rates['lmtool']:,.0f}, PyTorch {rates['torch']:,.0f} "
          f"characters/s ({rates['lmtool'] / rates['torch']:.2f}x).")
    met = "met" if ours_nats <= 1.45 else "not met"
    print(f"\nTargets: validation at most 1.45 nats/char ({ours_nats:.3f}: {met}; PyTorch's script after 10 "
          f"minutes: {ANCHOR['torch_char_10min_nats']} in ANCHORS.md), throughput at least 1.5x PyTorch's.\n")
    sample = ["generate", model, "--lines", "20", "--seed", "7", "--temperature", "0.8", "-q"]
    _, _, text = run_measured(lmtool_cmd() + sample, core=core)
    print("Samples (`lmtool generate m.lm --lines 20 --seed 7 --temperature 0.8`):\n\n```\n" + text.rstrip()
          + "\n```")


def torch_char_run(minutes, core):
    """PyTorch's char-rnn script for ``minutes`` on ``core``: {rate, nats, epochs, curve}, or None if it fails."""
    cmd = ["taskset", "-c", str(core), sys.executable, TORCH_CHAR, "--budget", str(60 * minutes)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, **SINGLE_THREAD))
    final = re.search(r"FINAL .* overall chars/s (\d+) valid ([\d.]+) nats/char", done.stdout)
    if done.returncode or not final:
        print(f"(PyTorch's script failed: {done.stderr.strip()[-300:]})")
        return None
    curve = [float(v) for v in re.findall(r"valid_loss ([\d.]+)", done.stdout)]
    epochs = max(int(e) for e in re.findall(r"epoch (\d+) batches", done.stdout))
    return {"rate": float(final.group(1)), "nats": float(final.group(2)), "epochs": epochs, "curve": curve}


def char_rates(train_path, core, rounds=12, per_round=4, warmup=3):
    """Training characters/s in turns, a few batches each, of lmtool as the bare ``--level char`` command
    trains (its defaults for this text) and of PyTorch's script's model and step; in a child process
    pinned to ``core``, one thread each."""
    code = f"""
import json, os, sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); sys.path.insert(0, {ROOT!r})
os.sched_setaffinity(0, {{{core}}})
from bench_train import _char_rates
print(json.dumps(_char_rates({train_path!r}, {rounds}, {per_round}, {warmup})))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **SINGLE_THREAD))
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _char_rates(train_path, rounds, per_round, warmup):
    import numpy as np
    import torch
    import torch.nn as nn

    from bench_kernels import interleaved_rates
    from lmtool.encoded_corpus import encode_corpus
    from lmtool.neural import NetworkConfig, RecurrentNetwork
    from lmtool.neural.batches import text_stream
    from lmtool.neural.optimizer import Optimizer, scale_for_norm
    from lmtool.neural.options import TrainOptions

    torch.set_num_threads(1)
    data = encode_corpus([train_path], level="char")
    V = len(data.vocab)
    o = TrainOptions(corpus=[train_path], output="-", level="char", stream=True).check().fill_defaults(V)
    _, ids, _ = text_stream(data.ids, data.lengths, data.file_starts)

    def segments(batch, bptt):
        n = len(ids) // batch
        cols = ids[:n * batch].reshape(batch, n).T
        while True:
            for i in range(0, n - 1 - bptt, bptt):
                yield np.ascontiguousarray(cols[i:i + bptt]), np.ascontiguousarray(cols[i + 1:i + 1 + bptt])

    net = RecurrentNetwork(NetworkConfig(vocab_size=V, cell=o.cell, embed=o.embed, hidden=o.hidden, layers=o.layers,
                                         dropout=o.dropout, softmax=o.softmax), seed=0)
    state, rng, opt = [net.init_state(o.batch)], np.random.default_rng(0), Optimizer(o.optimizer, net.params.size)
    lr = {"adam": 2e-3, "sgd": 20.0}[o.optimizer] if o.lr is None else o.lr

    def ours(x, y):
        _, _, state[0] = net.forward_backward(x, y, state[0], rng)
        scale, _ = scale_for_norm(net.grad_norm(), o.clip)
        opt.step(net.params, net.grad, lr, scale, support=net.grad_support)

    torch.manual_seed(1337)

    class Model(nn.Module):  # as ../shared/bench/torch_char_lm.py
        def __init__(self):
            super().__init__()
            self.emb, self.rnn = nn.Embedding(V, 256), nn.LSTM(256, 256, 2, batch_first=True)
            self.out = nn.Linear(256, V)

        def forward(self, x, h):
            o, h = self.rnn(self.emb(x), h)
            return self.out(o), h

    model = Model()
    adam, ce, hidden = torch.optim.Adam(model.parameters(), lr=2e-3), nn.CrossEntropyLoss(), [None]

    def theirs(x, y):
        x, y = torch.from_numpy(x.T.astype(np.int64)), torch.from_numpy(y.T.astype(np.int64))
        h = None if hidden[0] is None else tuple(v.detach() for v in hidden[0])
        out, hidden[0] = model(x, h)
        loss = ce(out.reshape(-1, V), y.reshape(-1))
        adam.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        adam.step()

    streams = {"lmtool": lambda: segments(o.batch, o.bptt), "torch": lambda: segments(32, 100)}
    return interleaved_rates({"lmtool": ours, "torch": theirs}, streams, warmup, rounds, per_round)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["softmax", "quality", "char", "cells", "window"], action="append")
    ap.add_argument("--epochs", type=int, default=1, help="epochs of the softmax comparison")
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="of the softmax comparison")
    ap.add_argument("--layers", type=int, default=2, help="layers of the softmax comparison")
    ap.add_argument("--cell", choices=["lstm", "gru"], default="lstm", help="of the softmax comparison")
    ap.add_argument("--min-improvement", type=float, default=0.0,
                    help="of the softmax comparison: decay also when valid improves by less (e.g. 0.05)")
    ap.add_argument("--dropout", type=float, default=0.0, help="of the softmax comparison")
    ap.add_argument("--minutes", type=float, default=15, help="budget of the quality runs")
    ap.add_argument("--char-minutes", type=float, default=10, help="budget of each character-level run")
    ap.add_argument("--core", type=int, default=0, help="core of the character-level runs")
    ap.add_argument("--cell-minutes", type=float, default=15, help="budget of each run of the cells comparison")
    ap.add_argument("--cells", nargs="+", default=CELLS, help="of the cells comparison")
    ap.add_argument("--window-minutes", type=float, default=15, help="budget of each fixed-window run")
    ap.add_argument("--windows", type=int, nargs="+", default=[4, 6], help="--window of the fixed-window runs")
    a = ap.parse_args()
    only = set(a.only or ["softmax", "quality", "char", "window"])
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lmtool-bench-") as tmp:
        if "softmax" in only:
            bench_softmax(tmp, a.epochs, a.optimizer, a.layers, a.cell, a.min_improvement, a.dropout)
        if "quality" in only:
            bench_quality(tmp, a.minutes)
        if "char" in only:
            bench_char(tmp, a.char_minutes, a.core)
        if "cells" in only:
            bench_cells(tmp, a.cell_minutes, a.cells)
        if "window" in only:
            bench_window(tmp, a.window_minutes, a.windows)


if __name__ == "__main__":
    main()
