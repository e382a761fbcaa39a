"""Mixtures and n-best rescoring on KJV: speed against the members, perplexities, the static merge,
rescoring accuracy and WER.

    python bench/bench_mixture.py                          # trains a 15-minute LSTM and GRU once (cached)
    python bench/bench_mixture.py --lstm L.lm --gru G.lm   # with recurrent models trained elsewhere
    python bench/bench_mixture.py --quick                  # n-gram members only

Speed: in one process pinned to one core, each member and the mixture score KJV test in turns
(``scoring.corpus_totals``: read, encode, score), ``--rounds`` times; the medians of CPU seconds
give mixture / (sum of the members). Perplexities: ``lmtool mix --tune valid``, then each model on
test. Rescoring: ``bench/make_nbest.py`` lists from KJV test, ``lmtool rescore --best`` and
``--tune``. Prints a Markdown table (target | measured | against what | command), then the details.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import CACHE, KJV, ROOT, lmtool_cmd, pin_self, run_measured  # noqa: E402

sys.path.insert(0, ROOT)
TRAIN, VALID, TEST = (os.path.join(KJV, f"{part}.txt") for part in ("train", "valid", "test"))
RECURRENT = ["--layers", "2", "--hidden", "256", "--softmax", "class", "--classes", "300", "--dropout", "0.25",
             "--min-improvement", "0.05", "--max-time", "15m"]


def lmtool(*args, capture=True):
    done = subprocess.run([*lmtool_cmd(), *map(str, args)], capture_output=capture, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"lmtool {' '.join(map(str, args))} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def cached_model(name, args):
    """A model in the bench cache, built by ``lmtool ARGS -o`` the first time."""
    path = os.path.join(CACHE, name)
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        lmtool(*args, "-q", "-o", path)
    return path


def perplexity(model, text=TEST, field="perplexity"):
    return json.loads(lmtool("perplexity", model, text, "--json"))[field]


def score_speed(paths, text, rounds, core):
    """Median CPU seconds for each model of ``paths`` (members first, the mixture last) to score
    ``text``, taken in turns in this process."""
    import lmtool as lm
    from lmtool.scoring import corpus_totals

    pin_self(core)
    models = [lm.load(p) for p in paths]
    for model in models:
        corpus_totals(model, [TEST])  # compile, build hash tables
    times = [[] for _ in models]
    for _ in range(rounds):
        for model, spent in zip(models, times):
            start = time.process_time()
            corpus_totals(model, [text])
            spent.append(time.process_time() - start)
    return [statistics.median(t) for t in times]


def mix(members, output, *options):
    out = lmtool("mix", *members, "--tune", VALID, "-o", output, "-q", *options)
    weights = next(line for line in out.splitlines() if line.startswith("weights")).split(": ")[1]
    return weights


def reference_share(best, references):
    with open(best, encoding="utf-8") as f, open(references, encoding="utf-8") as r:
        picked = [line.rstrip("\n").split("\t", 1)[1] for line in f]
        refs = [" ".join(line.split()) for line in r]
    return sum(p == q for p, q in zip(picked, refs)) / len(refs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lstm", help="a recurrent model of KJV train (default: train one for 15 minutes, cached)")
    ap.add_argument("--gru", help="a second recurrent model of another kind (default: a 15-minute GRU, cached)")
    ap.add_argument("--quick", action="store_true", help="n-gram members only (no training)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--core", type=int, default=0)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="lmtool-bench-mixture-")
    kjv5 = cached_model("kjv5.lm", ["count", TRAIN, "--order", 5])
    wb3 = cached_model("kjv3-witten-bell.lm", ["count", TRAIN, "--order", 3, "--smoothing", "witten-bell"])
    lstm = gru = None
    if not a.quick:
        lstm = a.lstm or cached_model("kjv-lstm-15m.lm", ["train", TRAIN, "--valid", VALID, *RECURRENT])
        gru = a.gru or cached_model("kjv-gru-15m.lm", ["train", TRAIN, "--valid", VALID, "--cell", "gru", *RECURRENT])
    rows, details = [], []

    # perplexities
    ppl = {name: perplexity(path) for name, path in (("5-gram", kjv5), ("3-gram WB", wb3), ("LSTM", lstm),
                                                      ("GRU", gru)) if path}
    mixtures = [("5-gram + 3-gram WB", [kjv5, wb3])]
    if lstm:
        mixtures += [("5-gram + LSTM", [kjv5, lstm]), ("5-gram + LSTM + GRU", [kjv5, lstm, gru]),
                     ("5-gram + LSTM + GRU, log-linear", [kjv5, lstm, gru])]
    files = {}
    for name, members in mixtures:
        out = os.path.join(tmp, name.replace(" ", "").replace(",", "-").replace("+", "_") + ".lm")
        weights = mix(members, out, *(["--loglinear"] if "log-linear" in name else []))
        files[name] = out
        ppl[name] = perplexity(out)
        details.append(f"| {name} | {ppl[name]:.2f} | {weights} |")
    if lstm:
        pair = ppl["5-gram + LSTM"]
        rows.append(("KJV test: 5-gram + 15-min LSTM <= 0.9x the LSTM", f"{pair:.2f} ({pair / ppl['LSTM']:.3f}x)",
                     f"LSTM {ppl['LSTM']:.2f}, 5-gram {ppl['5-gram']:.2f}",
                     "`lmtool mix kjv5.lm lstm.lm --tune valid.txt -o m.lm; lmtool perplexity m.lm test.txt`"))
        best = min((ppl[k], k) for k in files)
        rows.append(("KJV test: the best of these mixtures (the 30-minute target: bench_best_mixture.py)",
                     f"{best[0]:.2f} ({best[1]})",
                     f"GRU {ppl['GRU']:.2f}", "`lmtool mix kjv5.lm lstm.lm gru.lm --tune valid.txt -o m.lm`"))

    # the static merge
    for weights in ("0.5,0.5", None):
        dyn, static, arpa = (os.path.join(tmp, n) for n in ("dyn.lm", "static.lm", "static.arpa"))
        opts = ["--weights", weights] if weights else ["--tune", VALID]
        lmtool("mix", kjv5, wb3, *opts, "-o", dyn, "-q")
        lmtool("mix", kjv5, wb3, *opts, "--static", "-o", static, "-q")
        lmtool("convert", static, arpa, "-q")
        d, s = perplexity(dyn), perplexity(static)
        import kenlm

        reference = kenlm.Model(arpa)
        with open(TEST, encoding="utf-8") as f:
            total = sum(reference.score(line.strip()) for line in f)
        ours = perplexity(static, field="logprob10")
        rows.append((f"static merge within 1% of the dynamic mixture ({weights or 'EM weights'})",
                     f"{s:.3f} vs {d:.3f} ({100 * (s / d - 1):+.2f}%); the ARPA in KenLM: log10 {total:.2f} "
                     f"(lmtool {ours:.2f})",
                     "5-gram + 3-gram Witten-Bell, KJV test",
                     f"`lmtool mix kjv5.lm wb3.lm {' '.join(opts).replace(VALID, 'valid.txt')} --static -o m.arpa`"))

    # speed
    loglinear = os.path.join(tmp, "loglinear.lm")
    lmtool("mix", kjv5, wb3, "--loglinear", "--weights", "0.8,0.3", "-o", loglinear, "-q")
    by_context = os.path.join(tmp, "by-context.lm")
    lmtool("mix", kjv5, wb3, "--tune", VALID, "--by-context", "-o", by_context, "-q")
    speed_sets = [("5-gram + 3-gram WB", [kjv5, wb3], files["5-gram + 3-gram WB"], TRAIN, "train"),
                  ("5-gram + 3-gram WB, --by-context", [kjv5, wb3], by_context, TRAIN, "train")]
    if lstm:
        speed_sets.append(("5-gram + LSTM", [kjv5, lstm], files["5-gram + LSTM"], TEST, "test"))
    speed_sets.append(("5-gram + 3-gram WB, log-linear", [kjv5, wb3], loglinear, TEST, "test"))
    for name, members, mixture, text, part in speed_sets:
        spent = score_speed([*members, mixture], text, a.rounds, a.core)
        ratio = spent[-1] / sum(spent[:-1])
        target = "(not a target: every member's whole distribution per token)" if "log-linear" in name else \
            "+ <= 10%"
        rows.append((f"a mixture scores at the members' cost {target} ({name})",
                     f"{ratio:.3f}x ({spent[-1]:.3f} s vs {' + '.join(f'{t:.3f}' for t in spent[:-1])} s)",
                     f"the members scoring KJV {part} one after the other",
                     f"`bench/bench_mixture.py` (CPU seconds, medians of {a.rounds}, one core)"))

    # rescoring
    lists, refs, noisy = (os.path.join(tmp, n) for n in ("swap.tsv", "refs.txt", "noisy.tsv"))
    subprocess.run([sys.executable, os.path.join(HERE, "make_nbest.py"), TEST, "--words", TRAIN, "-o", lists,
                    "--references", refs, "--seed", "1"], check=True)
    subprocess.run([sys.executable, os.path.join(HERE, "make_nbest.py"), TEST, "--words", TRAIN, "-o", noisy,
                    "--drop-add", "--max-edits", "3", "--noise", "2", "--seed", "2"], check=True)
    scorers = [("5-gram", kjv5)] + ([("5-gram + LSTM + GRU", files["5-gram + LSTM + GRU"])] if lstm else [])
    for name, model in scorers:
        best = os.path.join(tmp, "best.tsv")
        with open(best, "w") as f:
            subprocess.run([*lmtool_cmd(), "rescore", model, lists, "--best"], stdout=f, check=True, cwd=ROOT)
        rows.append((f"rescore --best picks the reference ({name})", f"{100 * reference_share(best, refs):.1f}% of "
                     "1,556 lists", "each KJV test sentence + 9 corruptions of its length, equal scores",
                     "`bench/make_nbest.py test.txt --words train.txt --seed 1`; `lmtool rescore M lists --best`"))
        report = lmtool("rescore", model, noisy, "--tune", refs).splitlines()
        before, after = report[2].rsplit(": ", 1)[1], report[3].split("WER after, ")[1]
        rows.append((f"rescore --tune lowers WER ({name})", f"{before} -> {after}", f"n-best scores alone "
                     f"{report[1].rsplit(': ', 1)[1]}", "`make_nbest.py ... --drop-add --max-edits 3 --noise 2 "
                     "--seed 2`; `lmtool rescore M lists --tune refs`"))

    # a million hypotheses in constant memory
    big = os.path.join(tmp, "big.tsv")
    with open(lists, encoding="utf-8") as f:
        text = f.read()
    peaks = []
    for copies in (7, 65):
        with open(big, "w", encoding="utf-8") as out:
            for _ in range(copies):
                out.write(text)
        wall, peak, _ = run_measured([*lmtool_cmd(), "rescore", kjv5, big, "--best", "-o", os.path.join(tmp, "b")],
                                     core=a.core)
        peaks.append((copies * 15560, wall, peak))
    rows.append(("rescore streams: memory flat in the number of hypotheses",
                 " / ".join(f"{n:,} hypotheses {peak:.0f} MB, {wall:.1f} s" for n, wall, peak in peaks),
                 "peak RSS", "`lmtool rescore kjv5.lm big.tsv --best -o best.tsv`"))

    print("| target | measured | against what | command |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nKJV test perplexities (weights tuned on valid, by EM; log-linear by maximum likelihood):\n")
    print("| model | test perplexity | weights |\n|---|---|---|")
    for name in ("5-gram", "3-gram WB", "LSTM", "GRU"):
        if name in ppl:
            print(f"| {name} | {ppl[name]:.2f} | |")
    print("\n".join(details))


if __name__ == "__main__":
    main()
