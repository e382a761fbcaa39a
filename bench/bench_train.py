"""Recurrent training benchmarks that need whole runs, not timed batches (those are bench_kernels.py):

1. class against full softmax after the same number of epochs (the issue asks for test perplexity
   within 5%);
2. quality in a fixed budget: 15 minutes of training on one core, then KJV test perplexity, against
   PyTorch's 2x200 LSTM (38.67) and KenLM's 5-gram (41.59) from ../shared/ANCHORS.md;
3. character level on tiny-shakespeare (first 90% train, last 10% valid, written to the bench cache,
   never into the project): validation loss in nats per character and samples;
4. (``--only cells``, not in the default set) the recurrent cells side by side: each trained with
   the fixed-budget recipe for the same budget, then KJV test perplexity.
5. the fixed-window model (``--cell window``) in a fixed budget: ``--window`` 4 and 6 side by side,
   one core each, then KJV test perplexity (``--only window --window-minutes 15`` is the issue's run).

Every run is pinned to one core; the softmax comparison and the fixed-budget schedules run two at
a time, one per core. Prints Markdown.

    python bench/bench_train.py                 # all four (about 50 minutes)
    python bench/bench_train.py --only softmax [--epochs 3] [--layers 1] [--cell gru]  # or: quality, char
        [--min-improvement 0.05] [--dropout 0.2]  # the decay schedule and dropout of the softmax comparison
    python bench/bench_train.py --only cells [--cell-minutes 15] [--cells lstm gru lstm-peephole lstm-coupled]
    python bench/bench_train.py --only window [--window-minutes 1] [--windows 4 6]
"""

import argparse
import csv
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, KJV, ROOT, lmtool_cmd, run_measured  # noqa: E402

SHAKESPEARE = os.path.join(os.path.dirname(ROOT), "shared", "corpora", "tinyshakespeare", "input.txt")
ANCHOR = {"torch_15min_test_ppl": 38.67, "kenlm_5gram_test_ppl": 41.59, "torch_char_10min_nats": 1.507}
QUALITY_ARGS = ["--cell", "lstm", "--softmax", "class", "--classes", "300", "--layers", "2", "--hidden", "256",
                "--dropout", "0.25"]
"""300 classes rather than sqrt(V) = 111: about 5% slower per token, but better per epoch (see SOFTMAX_RUNS)."""
# The learning-rate schedules compared in the fixed budget, run side by side, one core each.
SCHEDULES = {"decay when valid worsens": [], "--min-improvement 0.05": ["--min-improvement", "0.05"]}


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
    print(f"`lmtool train corpora/kjv/train.txt --valid corpora/kjv/valid.txt {' '.join(QUALITY_ARGS)} "
          f"--max-time {minutes:g}m` with each schedule below; the runs go side by side, one core each "
          f"(cores {cores[:len(SCHEDULES)]}), so run nothing else meanwhile.\n")
    jobs = list(SCHEDULES.items())
    with ThreadPoolExecutor(max_workers=max(1, min(len(cores), len(jobs)))) as pool:
        futures = [pool.submit(train, tmp, f"quality{i}", QUALITY_ARGS + extra + ["--max-time", f"{minutes:g}m"],
                               core=cores[i % len(cores)]) for i, (_, extra) in enumerate(jobs)]
        results = [f.result() for f in futures]
    rows_out = []
    for (name, _), (wall, model, rows) in zip(jobs, results):
        ppl = test_perplexity(model)
        curve = " ".join(f"{float(r['valid_ppl']):.1f}" + ("" if r["complete"] == "True" else "*") for r in rows)
        lrs = " ".join(f"{float(r['lr']):g}" for r in rows)
        rows_out.append(f"| lmtool, {name} | {len(rows)} | {curve} | {lrs} | **{ppl:.2f}** |")
    print("| model | epochs | valid ppl per epoch (* partial) | lr per epoch | test ppl |\n|---|---|---|---|---|")
    print("\n".join(rows_out))
    print(f"| PyTorch LSTM 2x200, 15 min (ANCHORS.md) | 5 | 73.6 51.1 43.5 41.1 37.0 (every 3 min) | 20 | "
          f"{ANCHOR['torch_15min_test_ppl']} |\n| KenLM 5-gram (ANCHORS.md) | | | | {ANCHOR['kenlm_5gram_test_ppl']} |"
          "\n\nTarget: 33 or lower.")


CELL_ARGS = [a for a in QUALITY_ARGS if a not in ("--cell", "lstm")] + ["--min-improvement", "0.05"]
"""The fixed-budget recipe (``QUALITY_ARGS`` with its best schedule) for every cell of the comparison."""
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


def bench_char(tmp, minutes):
    if not os.path.exists(SHAKESPEARE):
        print(f"\n(no {SHAKESPEARE}: character-level benchmark skipped)")
        return
    train_path, valid_path = shakespeare_split()
    args = ["--level", "char", "--cell", "lstm", "--hidden", "256", "--layers", "2", "--optimizer", "adam",
            "--max-time", f"{minutes}m"]
    wall, model, rows = train(tmp, "char", args, corpus=train_path, valid=valid_path)
    ppl = float(rows[-1]["valid_ppl"]) if rows else float("nan")
    best = min(float(r["valid_ppl"]) for r in rows)
    tokens = sum(int(r["tokens"]) for r in rows)
    print(f"\n## character level: tiny-shakespeare, LSTM 2x256, Adam, {minutes} minutes on one core\n")
    print(f"command: `lmtool train shakespeare-train.txt --valid shakespeare-valid.txt {' '.join(args)}`\n")
    print(f"{len(rows)} epochs, {tokens / wall:,.0f} characters/s overall; best valid perplexity {best:.3f} = "
          f"{math.log(best):.3f} nats per character (last {ppl:.3f}); PyTorch's char-rnn after 10 minutes: "
          f"{ANCHOR['torch_char_10min_nats']} nats (it carries state across lines, lmtool starts each line afresh "
          "and counts the newline as a token).\n")
    _, _, samples = run_measured(lmtool_cmd() + ["generate", model, "-n", "12", "--seed", "7", "--temperature", "0.8",
                                                 "-q"])
    print("Samples (`lmtool generate MODEL -n 12 --seed 7 --temperature 0.8`):\n\n```\n" + samples.rstrip() + "\n```")


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
    ap.add_argument("--minutes", type=float, default=15, help="budget of the quality run")
    ap.add_argument("--char-minutes", type=float, default=10)
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
            bench_char(tmp, a.char_minutes)
        if "cells" in only:
            bench_cells(tmp, a.cell_minutes, a.cells)
        if "window" in only:
            bench_window(tmp, a.window_minutes, a.windows)


if __name__ == "__main__":
    main()
