"""Run every benchmark and write their Markdown to bench/RESULTS.md (what ``make bench`` does).

    python bench/run_all.py                    # everything (about 2.5 hours: training runs are long)
    python bench/run_all.py --only ngram kernels
    python bench/run_all.py --quick            # skips the 15-minute and character-level training runs

Each section is a separate script run in its own process (see its docstring); their output is
collected under a header that records the machine, so figures from different machines are never
mixed up. A section that fails is reported as failed and the others still run.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import CACHE, ROOT  # noqa: E402

SECTIONS = ("ngram", "scoring", "kernels", "train", "threads", "scaling", "small", "mixture")


HEADER = """# lmtool benchmark results

Figures come from `make bench` (`python bench/run_all.py`, which writes the sections below; `--only
SECTION` reruns one and keeps the others) and from the commands each section names. Timed commands
are pinned with `taskset` (one core, `-c 0`, unless a section says otherwise), and each ratio is
taken side by side in one run. The host's cores drift 10-30% in speed from minute to minute: compare
ratios, not absolute times.
"""


def previous_sections(path):
    """Sections of an existing RESULTS.md, title -> text, in order (so a partial rerun keeps the rest)."""
    sections = {}
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return sections
    for block in text.split("\n# ")[1:]:
        title, _, body = block.partition("\n\n")
        sections[title.strip()] = body
    return sections


def shown_command(argv):
    """``argv`` as typed from the project's folder: ``python``, then paths relative to it (or to ~)."""
    home = os.path.expanduser("~")

    def shown(arg):
        if not os.path.isabs(arg):
            return arg
        if arg.startswith(ROOT + os.sep):
            return os.path.relpath(arg, ROOT)
        if arg.startswith(home + os.sep):
            return "~" + arg[len(home):]
        return arg

    return " ".join(["python", *map(shown, argv[1:])])


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def synthetic(tokens):
    """The synthetic scaling corpus of ``tokens`` words (bench/make_corpus.py, seed 0), made once."""
    path = os.path.join(CACHE, f"synthetic-{tokens}.txt")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"), "-o", path, "--tokens", tokens,
                        "--seed", "0", "--threads", "2"], check=True)
    return path


def commands(section, quick):
    """(title, argv) of the scripts that make up ``section``."""
    py = sys.executable
    if section == "ngram":
        return [("n-gram: count and model files (bench_ngram.py)", [py, os.path.join(HERE, "bench_ngram.py")])]
    if section == "scoring":
        return [("scoring at every scale: one sentence, corpora, recurrent models, Dask (bench_scoring.py)",
                 [py, os.path.join(HERE, "bench_scoring.py")])]
    if section == "kernels":
        return [("recurrent training throughput against PyTorch (bench_kernels.py)",
                 [py, os.path.join(HERE, "bench_kernels.py"), "--cells", "lstm", "gru", "--layers", "1", "2"]),
                ("one recurrent layer alone, each cell against the LSTM (bench_kernels.py --layer-only)",
                 [py, os.path.join(HERE, "bench_kernels.py"), "--layer-only", "--cells", "lstm", "lstm-peephole",
                  "lstm-coupled", "gru", "--rounds", "20", "--batches", "200", "--clock", "cpu"]),
                ("fixed-window training throughput against PyTorch (bench_window.py)",
                 ["taskset", "-c", "1", py, os.path.join(HERE, "bench_window.py")])]
    if section == "train":
        only = ["--only", "softmax"] if quick else []
        runs = [("recurrent training runs: softmax, fixed budget, character level, fixed window (bench_train.py)",
                 [py, os.path.join(HERE, "bench_train.py"), *only])]
        if not quick:
            runs.append(("recurrent cells in a fixed budget, KJV test perplexity (bench_train.py --only cells)",
                         [py, os.path.join(HERE, "bench_train.py"), "--only", "cells"]))
        return runs
    if section == "threads":
        return [("--threads 2 against 1 (bench_threads.py)", [py, os.path.join(HERE, "bench_threads.py")])]
    if section == "scaling":
        # 200M tokens within budgets only: the in-memory rows would need about 30 GB.
        sizes = ["10M", "50M", "200M"]
        runs = []
        for size in sizes:
            extra = {"10M": ["--no-dask"], "50M": [], "200M": ["--no-dask", "--bounded-only"]}[size]
            runs.append((f"count scaling on the {size}-token synthetic corpus (bench_scaling.py)",
                         [py, os.path.join(HERE, "bench_scaling.py"), synthetic(size), "--memory", "1G",
                          "--cpus", "0,1", *extra]))
        return runs
    if section == "small":
        return [("small n-gram models: pruning and quantisation (bench_small.py)",
                 [py, os.path.join(HERE, "bench_small.py"), "--plot", os.path.join(HERE, "small_models.png")])]
    if section == "mixture":
        runs = [("mixtures and n-best rescoring (bench_mixture.py)",
                 [py, os.path.join(HERE, "bench_mixture.py"), *(["--quick"] if quick else [])])]
        if not quick:
            runs.append(("the best mixture from 30 minutes of one core (bench_best_mixture.py)",
                         [py, os.path.join(HERE, "bench_best_mixture.py")]))
        return runs
    raise ValueError(section)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=SECTIONS)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-o", "--output", default=os.path.join(HERE, "RESULTS.md"))
    a = ap.parse_args()
    sections = previous_sections(a.output)
    stamp = f"{datetime.date.today()}, {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    for section in a.only or SECTIONS:
        for title, argv in commands(section, a.quick):
            print(f"== {title}", file=sys.stderr, flush=True)
            result = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
            body = result.stdout.strip()
            if not body.lstrip().startswith(("#", "|")):  # a plain-text table: keep its columns
                body = f"```text\n{body}\n```"
            if result.returncode:
                body += f"\n\n**failed** (exit {result.returncode}); see its stderr."
            sections[title] = f"Last run {stamp}: `{shown_command(argv)}`\n\n{body}\n"
            print(body, flush=True)
    with open(a.output + ".tmp", "w") as f:
        f.write(HEADER + "".join(f"\n# {title}\n\n{body}" for title, body in sections.items()))
    os.replace(a.output + ".tmp", a.output)
    print(f"wrote {a.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
