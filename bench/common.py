"""Helpers shared by the benchmarks: pinning, timing child processes, finding reference tools."""

import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KJV = os.path.join(ROOT, "corpora", "kjv")
CACHE = os.environ.get("LMTOOL_BENCH_CACHE", os.path.expanduser("~/.cache/lmtool-bench"))
SHARED = os.environ.get("LMTOOL_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
"""The developers' shared folder beside the project (corpora, anchor scripts); $LMTOOL_SHARED elsewhere."""
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "NUMBA_NUM_THREADS": "1"}


def pin_self(core=0):
    """Pin this process (and its future children) to one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    os.environ.update(SINGLE_THREAD)


def run_measured(cmd, stdin=None, env=None, core=0):
    """Run ``cmd`` pinned to ``core`` and return (wall seconds, peak RSS MB, stdout)."""
    wall, usage, out = _run(cmd, stdin, env, core)
    return wall, usage.ru_maxrss / 1024.0, out


def run_cpu(cmd, core=0):
    """Run ``cmd`` pinned to ``core`` and return (CPU seconds, user and system, stdout)."""
    _, usage, out = _run(cmd, None, None, core)
    return usage.ru_utime + usage.ru_stime, out


def _run(cmd, stdin, env, core):
    """(wall seconds, the child's ``resource`` usage, stdout) of ``cmd`` pinned to ``core``; a failure raises."""
    full_env = dict(os.environ, **SINGLE_THREAD, **(env or {}))
    stdin_file = open(stdin, "rb") if stdin else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", str(core), *cmd], stdin=stdin_file, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=full_env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if stdin:
        stdin_file.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return wall, usage, out.decode()


def kenlm_binary(name):
    """Path of a KenLM program (lmplz, query, build_binary) or None: $KENLM_BIN, PATH, the bench cache."""
    for folder in (os.environ.get("KENLM_BIN"), os.path.join(CACHE, "kenlm", "build", "bin"),
                   "/opt/kenlm/src/build/bin"):
        if folder and os.access(os.path.join(folder, name), os.X_OK):
            return os.path.join(folder, name)
    return shutil.which(name)


def lmtool_cmd():
    return [sys.executable, "-m", "lmtool.cli"]


def best_of(n, fn):
    """Smallest wall time of ``n`` calls of ``fn`` (which returns seconds, extra)."""
    results = [fn() for _ in range(n)]
    return min(results, key=lambda r: r[0])


def repeated_corpus(times):
    """KJV train concatenated ``times`` times, made once in the bench cache."""
    path = os.path.join(CACHE, f"kjv-train-x{times}.txt")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        with open(os.path.join(KJV, "train.txt"), "rb") as f:
            text = f.read()
        with open(path + ".tmp", "wb") as f:
            for _ in range(times):
                f.write(text)
        os.replace(path + ".tmp", path)
    return path
