"""Scoring at every scale, each figure beside its anchor measured in the same run: one sentence from
the shell and from Python against KenLM's query and the kenlm module, corpus throughput against the
kenlm module and against query on its probing binary, recurrent scoring against PyTorch, and
``score --dask local:2`` against plain ``score``. Prints Markdown.

    python bench/bench_scoring.py                   # KenLM's programs from bench/kenlm_binaries.sh
    python bench/bench_scoring.py --skip-dask --repeat 3

Times are wall seconds and CPU seconds (user + system) of the same runs: on a busy machine the CPU
time is the steadier of the two, and the ratios of both are shown. Cold starts are best of
``--repeat`` whole processes with the model in the page cache and lmtool's bytecode compiled, as an
installed package has it (``PYTHONDONTWRITEBYTECODE`` would make every start compile lmtool's
modules: 0.04 s more); throughput excludes start-up.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, KJV, ROOT, SINGLE_THREAD, kenlm_binary, lmtool_cmd, repeated_corpus  # noqa: E402

SENTENCE = b"and god said unto moses\n"
TARGETS = {"ngram_cold_s": 0.2, "python_cold_s": 0.1, "recurrent_cold_s": 0.3, "module_ratio": 2.0,
           "query_ratio": 1.5, "torch_ratio": 2.2}


def timed(cmd, stdin=None, cores="0", env=None):
    """(wall s, CPU s) of one run of ``cmd`` pinned to ``cores``, its stdout discarded; ``stdin`` is
    bytes or a file's path. CPU time is user + system, from the children's resource usage."""
    import resource

    stdin_file = open(stdin, "rb") if isinstance(stdin, str) else subprocess.PIPE
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", cores, *map(str, cmd)], stdin=stdin_file, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=dict(os.environ, **SINGLE_THREAD, **(env or {})))
    _, err = proc.communicate(stdin if isinstance(stdin, bytes) else None)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if isinstance(stdin, str):
        stdin_file.close()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{err.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(n, cmd, **kw):
    """Best wall time and best CPU time of ``n`` runs."""
    runs = [timed(cmd, **kw) for _ in range(n)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def models(folder):
    """The KJV 5-gram (lmtool, quantised to 8 bits, ARPA, KenLM probing binary), and an LSTM 1x200
    and a fixed-window model (window 4, 200 hidden) over its vocabulary."""
    import lmtool
    from lmtool.neural.config import NetworkConfig
    from lmtool.neural.model import RecurrentModel
    from lmtool.neural.window_config import WindowConfig
    from lmtool.neural.window_model import WindowModel
    from lmtool.ngram.arpa import write_arpa
    from lmtool.ngram.quantize import quantize

    paths = {"lm": os.path.join(CACHE, "kjv-train-5gram.lm"), "arpa": os.path.join(folder, "m.arpa"),
             "probing": os.path.join(folder, "m.probing"), "lstm": os.path.join(folder, "lstm.lm"),
             "q8": os.path.join(folder, "m.q8.lm"), "window": os.path.join(folder, "window.lm")}
    if not os.path.exists(paths["lm"]):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([*lmtool_cmd(), "count", os.path.join(KJV, "train.txt"), "--order", "5", "-o", paths["lm"],
                        "-q"], check=True)
    ngram = lmtool.load(paths["lm"])
    quantize(ngram, 8).save(paths["q8"])
    write_arpa(ngram, paths["arpa"])
    build_binary = kenlm_binary("build_binary")
    if build_binary:
        subprocess.run([build_binary, "probing", paths["arpa"], paths["probing"]], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        paths["probing"] = None
    config = NetworkConfig(vocab_size=len(ngram.vocab), cell="lstm", hidden=200, embed=200, layers=1)
    RecurrentModel.create(ngram.vocab, config, seed=1).save(paths["lstm"])  # speed does not depend on training
    WindowModel.create(ngram.vocab, WindowConfig(vocab_size=len(ngram.vocab), window=4, embed=200, hidden=200),
                       seed=1).save(paths["window"])
    return paths


def ratio(theirs, ours):
    return f"{theirs / ours:.2f}x" if theirs and ours else "n/a"


def cold_starts(paths, repeat):
    """One sentence as a whole process, best of ``repeat``."""
    print(f"\n## One sentence from the shell (whole process, model in the page cache, best of {repeat})\n")
    print("| command | wall s | CPU s | target |")
    print("|---|---|---|---|")
    lm, rows = lmtool_cmd(), {}
    subprocess.run([*lm, "score", paths["lm"], "-"], input=SENTENCE, stdout=subprocess.DEVNULL, check=True)
    cases = [("lmtool score KJV 5-gram -", [*lm, "score", paths["lm"], "-"], "ngram_cold_s"),
             ("lmtool perplexity KJV 5-gram -", [*lm, "perplexity", paths["lm"], "-"], "ngram_cold_s"),
             ("lmtool generate KJV 5-gram -n 1", [*lm, "generate", paths["lm"], "-n", "1"], "ngram_cold_s"),
             ("lmtool score KJV 5-gram, 8-bit quantised -", [*lm, "score", paths["q8"], "-"], "ngram_cold_s"),
             ("lmtool score LSTM 1x200 -", [*lm, "score", paths["lstm"], "-"], "recurrent_cold_s"),
             ("lmtool score fixed-window 4x200 -", [*lm, "score", paths["window"], "-"], "recurrent_cold_s"),
             ("python -c 'import numpy, click' (the floor)", [sys.executable, "-c", "import numpy, click"], None)]
    query = kenlm_binary("query")
    if query and paths["probing"]:
        cases.append(("KenLM query -v sentence, probing binary", [query, "-v", "sentence", paths["probing"]], None))
    for name, cmd, target in cases:
        wall, cpu = best(repeat, cmd, stdin=SENTENCE)
        rows[name] = (wall, cpu)
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {'<= %.1f s' % TARGETS[target] if target else 'anchor'} |")
    return rows


PYTHON_COLD = """
import sys, time
start, cpu = time.perf_counter(), time.process_time()
import lmtool
lmtool.load(sys.argv[1]).score("and god said unto moses")
print(time.perf_counter() - start, time.process_time() - cpu, "numba" in sys.modules)
"""
MODULE_COLD = """
import sys, time
start, cpu = time.perf_counter(), time.process_time()
import kenlm
kenlm.Model(sys.argv[1]).score("and god said unto moses")
print(time.perf_counter() - start, time.process_time() - cpu, False)
"""


def python_cold(paths, repeat):
    """``lmtool.load(path).score(s)`` in a fresh interpreter, from ``import lmtool`` on."""
    print(f"\n## One sentence from Python (fresh interpreter, import + load + score, best of {repeat})\n")
    print("| code | wall s | CPU s | Numba loaded | target |")
    print("|---|---|---|---|---|")
    cases = [("lmtool.load(KJV 5-gram).score(s)", PYTHON_COLD, paths["lm"]),
             ("lmtool.load(KJV 5-gram, 8-bit quantised).score(s)", PYTHON_COLD, paths["q8"]),
             ("lmtool.load(LSTM 1x200).score(s)", PYTHON_COLD, paths["lstm"]),
             ("lmtool.load(fixed-window 4x200).score(s)", PYTHON_COLD, paths["window"])]
    if paths["probing"] and _has_kenlm():
        cases.append(("kenlm.Model(probing binary).score(s)", MODULE_COLD, paths["probing"]))
    out = {}
    for name, code, path in cases:
        runs = []
        for _ in range(repeat):
            done = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code, path], capture_output=True,
                                  text=True, check=True, env=dict(os.environ, **SINGLE_THREAD))
            wall, cpu, numba = done.stdout.split()
            runs.append((float(wall), float(cpu), numba))
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        out[name] = (wall, cpu)
        target = "anchor" if "kenlm" in name else "<= 0.1 s" if name.startswith("lmtool.load(KJV 5-gram)") else ""
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {runs[0][2]} | {target} |")
    return out


def in_turns(passes, repeat):
    """{name: [(wall s, CPU s), ...]}: each of ``passes`` (name -> function) run ``repeat`` times,
    in turns, in this process."""
    times = {name: [] for name in passes}
    for _ in range(repeat):
        for name, fn in passes.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def _has_kenlm():
    import importlib.util

    return importlib.util.find_spec("kenlm") is not None


def module_throughput(paths, repeat):
    """KJV train scored by lmtool (encode + score_ids) and by the kenlm module (score per line), in turns."""
    import lmtool

    with open(os.path.join(KJV, "train.txt"), "rb") as f:
        data = f.read()
    lines = data.decode("utf-8").splitlines()
    ours = lmtool.load(paths["lm"])
    ours.prepare(len(data))  # start-up excluded: Numba, the kernels, the hash table
    ids, lengths = ours.vocab.encode_bytes(data)
    tokens = len(ids) + len(lengths)
    ours_total = ours.score_ids(ids, lengths).sentence.sum()

    def lmtool_pass():
        ids, lengths = ours.vocab.encode_bytes(data)
        return ours.score_ids(ids, lengths).sentence.sum()

    passes = {"lmtool (encode + score_ids, one batch)": lmtool_pass}
    if _has_kenlm():
        import kenlm

        theirs = kenlm.Model(paths["probing"] or paths["arpa"])
        assert abs(sum(theirs.score(line) for line in lines) - ours_total) < 1e-3 * abs(ours_total)
        passes = {"kenlm module (model.score per line)": lambda: sum(theirs.score(line) for line in lines), **passes}
    times = in_turns(passes, repeat)
    print(f"\n## Throughput: KJV 5-gram on all of KJV train ({tokens:,} tokens; start-up excluded, best of "
          f"{repeat}, in turns)\n")
    print("| scorer | wall s | CPU s | M tokens/s (CPU) | ratio (wall) | ratio (CPU) |")
    print("|---|---|---|---|---|---|")
    anchor = None
    for name, runs in times.items():
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        anchor = anchor or (wall, cpu)
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {tokens / cpu / 1e6:.2f} | {ratio(anchor[0], wall)} "
              f"| {ratio(anchor[1], cpu)} |")
    return {name: (min(r[0] for r in runs), min(r[1] for r in runs)) for name, runs in times.items()}


def query_throughput(paths, repeat):
    """Whole commands on KJV train x10: lmtool against KenLM's query on its probing binary."""
    query = kenlm_binary("query")
    if not (query and paths["probing"]):
        print("\n(KenLM's query not built: run bench/kenlm_binaries.sh)")
        return {}
    big = repeated_corpus(10)
    lm = lmtool_cmd()
    print(f"\n## Whole commands on KJV train x10 ({os.path.getsize(big) / 1e6:.0f} MB, 8.5 M tokens; best of "
          f"{repeat}, in turns)\n")
    print("| command | cores | wall s | CPU s | ratio (wall) | ratio (CPU) |")
    print("|---|---|---|---|---|---|")
    pairs = [("query -v summary", [query, "-v", "summary", paths["probing"]], big, "0"),
             ("lmtool perplexity", [*lm, "perplexity", paths["lm"], big], None, "0"),
             ("lmtool perplexity --threads 2", [*lm, "perplexity", paths["lm"], big, "--threads", "2"], None, "0,1"),
             ("query -v sentence", [query, "-v", "sentence", paths["probing"]], big, "0"),
             ("lmtool score", [*lm, "score", paths["lm"], big], None, "0"),
             ("lmtool score --threads 2", [*lm, "score", paths["lm"], big, "--threads", "2"], None, "0,1")]
    runs = {name: [] for name, *_ in pairs}
    for _ in range(repeat):  # in turns, so that a busy spell of the host weighs on every command
        for name, cmd, stdin, cores in pairs:
            runs[name].append(timed(cmd, stdin=stdin, cores=cores))
    out, anchor = {}, None
    for name, _, _, cores in pairs:
        wall, cpu = min(r[0] for r in runs[name]), min(r[1] for r in runs[name])
        anchor = (wall, cpu) if name.startswith("query") else anchor
        out[name] = (wall, cpu)
        print(f"| {name} | {cores} | {wall:.2f} | {cpu:.2f} | {ratio(anchor[0], wall)} | {ratio(anchor[1], cpu)} |")
    return out


def recurrent_throughput(paths, repeat):
    """LSTM 1x200 (full softmax over the KJV vocabulary) scoring KJV test: lmtool against PyTorch's
    batched inference (sentences sorted by length, batches of 64, each from a zero state), in turns."""
    import numpy as np

    import lmtool

    try:
        import torch
    except ImportError:
        print("\n(PyTorch not installed: pip install torch)")
        return {}
    torch.set_num_threads(1)
    ours = lmtool.load(paths["lstm"])
    with open(os.path.join(KJV, "test.txt"), "rb") as f:
        ids, lengths = ours.vocab.encode_bytes(f.read())
    tokens = len(ids) + len(lengths)
    p = ours.network.p
    V, H = ours.config.vocab_size, ours.config.hidden
    embed, lstm = torch.nn.Embedding(V, H), torch.nn.LSTM(H, H)
    decoder = torch.nn.Linear(H, V)
    with torch.no_grad():
        embed.weight.copy_(torch.from_numpy(np.array(p["embed"])))
        lstm.weight_ih_l0.copy_(torch.from_numpy(np.array(p["layer0.U"]).T))
        lstm.weight_hh_l0.copy_(torch.from_numpy(np.array(p["layer0.W"]).T))
        lstm.bias_ih_l0.copy_(torch.from_numpy(np.array(p["layer0.b"])))
        lstm.bias_hh_l0.zero_()
        decoder.weight.copy_(torch.from_numpy(np.array(p["output.W"])))
        decoder.bias.copy_(torch.from_numpy(np.array(p["output.b"])))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    order = np.argsort(lengths, kind="stable")

    def torch_pass():
        total = 0.0
        with torch.inference_mode():
            for b in range(0, len(order), 64):
                rows = order[b:b + 64]
                T = int(lengths[rows].max()) + 1
                x = torch.zeros((T, len(rows)), dtype=torch.long)
                y = torch.full((T, len(rows)), -1, dtype=torch.long)
                for j, r in enumerate(rows):
                    words = torch.from_numpy(ids[starts[r]:starts[r] + lengths[r]].astype(np.int64))
                    x[0, j], x[1:lengths[r] + 1, j] = 1, words
                    y[:lengths[r], j], y[lengths[r], j] = words, 2
                out, _ = lstm(embed(x))
                logp = torch.log_softmax(decoder(out), dim=-1)
                mask = y >= 0
                total += float(logp.gather(2, y.clamp(min=0).unsqueeze(2)).squeeze(2)[mask].sum())
        return total / np.log(10)

    def lmtool_pass():
        return ours.score_ids_compiled(ids, lengths).sentence.sum()

    assert abs(torch_pass() - lmtool_pass()) < 1e-3 * abs(lmtool_pass())
    passes = {"PyTorch (inference_mode, batches of 64 sorted by length)": torch_pass,
              "lmtool (score_ids: sentences packed into 64 columns)": lmtool_pass}
    times = in_turns(passes, repeat)
    print(f"\n## Recurrent scoring: LSTM 1x200, full softmax over {V:,} words, KJV test ({tokens:,} tokens; "
          f"best of {repeat}, in turns)\n")
    print("| scorer | wall s | CPU s | tokens/s (CPU) | ratio (wall) | ratio (CPU) |")
    print("|---|---|---|---|---|---|")
    anchor, out = None, {}
    for name, runs in times.items():
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        anchor = anchor or (wall, cpu)
        out[name] = (wall, cpu)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {tokens / cpu:,.0f} | {ratio(anchor[0], wall)} "
              f"| {ratio(anchor[1], cpu)} |")
    return out


def dask_scoring(paths):
    """``score --dask local:2`` against plain ``score`` on KJV train x10, both on cores 0 and 1."""
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        print("\n(dask.distributed not installed: pip install 'lmtool[dask]')")
        return {}
    big = repeated_corpus(10)
    lm = lmtool_cmd()
    print("\n## score --dask local:2 against plain score (KJV train x10, cores 0 and 1)\n")
    print("| command | wall s | same output |")
    print("|---|---|---|")
    outputs = {}
    for name, extra in (("lmtool score", []), ("lmtool score --dask local:2", ["--dask", "local:2"])):
        start = time.perf_counter()
        done = subprocess.run(["taskset", "-c", "0,1", *lm, "score", paths["lm"], big, "-q", *extra],
                              capture_output=True, check=True, env=dict(os.environ, **SINGLE_THREAD))
        outputs[name] = (time.perf_counter() - start, done.stdout)
    plain = outputs["lmtool score"][1]
    for name, (wall, out) in outputs.items():
        print(f"| {name} | {wall:.2f} | {'yes' if out == plain else 'NO'} |")
    return {name: wall for name, (wall, _) in outputs.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-dask", action="store_true")
    a = ap.parse_args()
    os.sched_setaffinity(0, {0})
    os.environ.update(SINGLE_THREAD)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # lmtool's bytecode, compiled once, as installed
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "lmtool")], check=True)
    with tempfile.TemporaryDirectory() as folder:
        paths = models(folder)
        print(f"## Host load\n\nLoad average (1, 5, 15 min) at the start: {_load()} on {os.cpu_count()} cores "
              "(other work on the host: wall times suffer from it most, CPU times and ratios less).")
        cold_starts(paths, a.repeat)
        python_cold(paths, a.repeat)
        module_throughput(paths, a.repeat)
        query_throughput(paths, a.repeat)
        recurrent_throughput(paths, max(2, a.repeat // 2))
        if not a.skip_dask:
            dask_scoring(paths)
        print(f"\nLoad average at the end: {_load()}.")


def _load():
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
