"""The best mixture from 30 minutes of one core in all: KJV test perplexity (the target: 25.0 or less).

    python bench/bench_best_mixture.py                 # about 31 minutes
    python bench/bench_best_mixture.py --budget 900    # a smaller budget

The recipe, every command pinned to one core and its CPU seconds (user + system, loading, validation
and saving included) added up against ``--budget``:
- `count --order 7` (modified Kneser-Ney) and `count --order 7 --smoothing witten-bell`. Witten-Bell
  leaves a context's seen words most of its mass where few distinct words follow it, which suits a
  text that repeats long formulas; Kneser-Ney takes a discount off every seen n-gram. Mixed, each
  covers where the other is weak.
- two LSTMs from the bare `train` command with `--seed 0` and `--seed 1`, sharing what the counts
  leave: the first gets half of it as `--max-time` less ``MARGIN``, the second the rest less ``MARGIN``
  (a command spends a few seconds beyond its `--max-time`).
Then `mix` with EM weights on valid, with one set of weights and with `--by-context`, and each model
and mixture on test. Prints a Markdown table.
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import KJV, lmtool_cmd, run_cpu  # noqa: E402

TRAIN, VALID, TEST = (os.path.join(KJV, f"{part}.txt") for part in ("train", "valid", "test"))
MARGIN = 20.0
"""Seconds of CPU kept aside from each LSTM's share for what its command spends beyond ``--max-time``."""
NGRAMS = {"7-gram MKN": ["--order", "7"], "7-gram Witten-Bell": ["--order", "7", "--smoothing", "witten-bell"]}


def perplexity(model, core):
    _, out = run_cpu([*lmtool_cmd(), "perplexity", model, TEST, "--json"], core)
    return json.loads(out)["perplexity"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=1800.0, help="CPU seconds for every model in all")
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--dir", help="keep the models here (default: a temporary folder)")
    a = ap.parse_args()
    folder = a.dir or tempfile.mkdtemp(prefix="lmtool-bench-best-mixture-")
    os.makedirs(folder, exist_ok=True)
    spent, models = {}, {}
    for name, options in NGRAMS.items():
        models[name] = os.path.join(folder, name.replace(" ", "-") + ".lm")
        spent[name], _ = run_cpu([*lmtool_cmd(), "count", TRAIN, *options, "-o", models[name], "-q"], a.core)
    for seed in (0, 1):
        left = a.budget - sum(spent.values())
        share = (left / 2 if seed == 0 else left) - MARGIN
        name = f"LSTM, seed {seed} (`--max-time {share:.0f}`)"
        models[name] = os.path.join(folder, f"lstm-seed{seed}.lm")
        spent[name], _ = run_cpu([*lmtool_cmd(), "train", TRAIN, "--valid", VALID, "-o", models[name],
                                  "--max-time", f"{share:.0f}", "--seed", str(seed), "-q"], a.core)
    members = list(models.values())
    members = members[2:] + members[:2]  # the LSTMs first, as the weights are printed
    for name, options in (("mixture, EM weights", []), ("mixture, EM weights `--by-context`", ["--by-context"])):
        models[name] = os.path.join(folder, "mix-by-context.lm" if options else "mix.lm")
        _, out = run_cpu([*lmtool_cmd(), "mix", *members, "--tune", VALID, *options, "-o", models[name], "-q"],
                         a.core)
        print(f"`lmtool mix {' '.join(os.path.basename(m) for m in members)} --tune valid.txt "
              f"{' '.join(options)}`:\n```\n{out.strip()}\n```\n", flush=True)
    total = sum(spent.values())
    print(f"CPU seconds in all: {total:.1f} of {a.budget:.0f}\n")
    print("| model | KJV test ppl | CPU seconds |\n|---|---|---|")
    for name, path in models.items():
        cpu = f"{spent[name]:.1f}" if name in spent else ""
        print(f"| {name} | {perplexity(path, a.core):.2f} | {cpu} |", flush=True)
    if total > a.budget:
        print(f"\n**over budget**: {total:.1f} CPU seconds against {a.budget:.0f}")


if __name__ == "__main__":
    main()
