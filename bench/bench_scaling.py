"""How ``count`` scales: --memory (spilling) against in memory, --threads 2 against 1, --dask local:2
against local, and lmplz -S if it is built; wall time and peak RSS of each run, as Markdown.

    python bench/bench_scaling.py CORPUS [--order 5] [--memory 1G] [--cpus 0,1] [--no-dask]
    python bench/bench_scaling.py --kjv-times 8      # corpora/kjv/train.txt concatenated 8 times

Each run is a fresh ``python -m lmtool.cli count`` pinned with ``taskset -c CPUS``. Peak RSS is the
child's ``ru_maxrss`` (its largest process) and, sampled every 50 ms with psutil when installed,
the summed RSS of its whole process tree (Dask workers included). With one CPU the threads and
Dask rows measure overhead only, not speedup.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import kenlm_binary, lmtool_cmd, repeated_corpus  # noqa: E402


def _tree_rss(pid):
    """Summed RSS (bytes) of a process and its descendants, or None without psutil."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd, cpus):
    """Run ``cmd`` pinned to ``cpus``: (wall s, peak RSS MB of its largest process, peak tree RSS MB or
    None, stderr text)."""
    start = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", cpus, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0, _tree_rss(proc.pid) is not None]
    done = threading.Event()

    def sample():  # never waits on the child: wait4 below must reap it to get its rusage
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid) or 0)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    if peak[1]:
        sampler.start()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    if peak[1]:
        sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, (peak[0] / 2**20 if peak[1] else None), err


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", help="text corpus (e.g. from bench/make_corpus.py)")
    parser.add_argument("--kjv-times", type=int, help="use KJV train concatenated this many times instead")
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--memory", default="1G", help="budget for the --memory and lmplz -S runs")
    parser.add_argument("--cpus", default="1", help="taskset CPU list for every run (default: 1)")
    parser.add_argument("--no-dask", action="store_true", help="skip the --dask local:2 run")
    parser.add_argument("--bounded-only", action="store_true",
                        help="only the --memory runs and lmplz (for corpora whose counts do not fit in memory)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every command, one after the other: best wall, worst RSS")
    args = parser.parse_args()
    corpus = repeated_corpus(args.kjv_times) if args.kjv_times else args.corpus
    if not corpus:
        parser.error("give a CORPUS or --kjv-times N")
    lmplz = os.environ.get("LMPLZ") or kenlm_binary("lmplz")
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(corpus))) as tmp:
        out = os.path.join(tmp, "m.lm")
        base = [*lmtool_cmd(), "count", corpus, "--order", str(args.order), "-o", out]
        runs = [("in memory, 1 thread", base, "base"),
                (f"--memory {args.memory}", base + ["--memory", args.memory, "--tmp", tmp], "base"),
                ("in memory, --threads 2", base + ["--threads", "2"], "base"),
                (f"--memory {args.memory} --threads 2",
                 base + ["--memory", args.memory, "--tmp", tmp, "--threads", "2"], f"--memory {args.memory}")]
        if not args.no_dask:
            runs.append(("--dask local:2", base + ["--dask", "local:2"], "base"))
        if lmplz:
            runs.append((f"lmplz -o {args.order} -S {args.memory}",
                         [lmplz, "-o", str(args.order), "-S", args.memory, "-T", tmp, "--discount_fallback",
                          "--text", corpus, "--arpa", os.path.join(tmp, "m.arpa")], "base"))
        if args.bounded_only:  # every ratio against the first --memory run
            runs = [(name, cmd, f"--memory {args.memory}") for name, cmd, _ in runs
                    if name.startswith(("--memory", "lmplz"))]
        size = os.path.getsize(corpus)
        print(f"\n## count --order {args.order} on {os.path.basename(corpus)} ({size / 2**20:.1f} MB), "
              f"taskset -c {args.cpus}\n")
        if args.bounded_only:
            print(f"Within budgets only (--bounded-only): ratios are against the --memory {args.memory} run.\n")
        print("| run | wall s | peak RSS MB (largest process) | peak RSS MB (process tree) | time vs | memory vs |"
              " spilled runs |")
        print("|---|---|---|---|---|---|---|")
        results, measured = {}, {name: [] for name, _, _ in runs}
        for _ in range(args.repeat):  # round by round, so that a slow spell of a shared host hits every row
            for name, cmd, _ in runs:
                measured[name].append(measure(cmd, args.cpus))
        for name, cmd, against in runs:
            trials = measured[name]
            wall = min(t[0] for t in trials)
            rss = max(t[1] for t in trials)
            tree = None if trials[0][2] is None else max(t[2] for t in trials)
            err = trials[0][3]
            results[name] = (wall, rss)
            ref = results["in memory, 1 thread" if against == "base" else against]
            spilled = re.search(r"spilled (\d+) runs", err) or re.search(r"nothing spilled", err)
            spilled = (spilled.group(1) if spilled and spilled.groups() else "0") if spilled else ""
            ratio = f"{wall / ref[0]:.2f}x", f"{rss / ref[1]:.2f}x"
            print(f"| {name} | {wall:.2f} | {rss:.0f} | {'' if tree is None else f'{tree:.0f}'} | {ratio[0]} | "
                  f"{ratio[1]} | {spilled} |", flush=True)
        if not lmplz:
            print("\nlmplz not found (set LMPLZ or run bench/kenlm_binaries.sh).")


if __name__ == "__main__":
    main()
