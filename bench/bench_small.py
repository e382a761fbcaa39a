"""Small n-gram models on KJV: count pruning against lmplz's pruned model, relative-entropy pruning
against count pruning (test perplexity by size), quantised files (size, perplexity, error against
KenLM's bins) and their load and score time beside the unquantised file. Pinned to one core;
prints Markdown.

    python bench/bench_small.py [--plot bench/small_models.png] [--core 1]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import KJV, ROOT, pin_self  # noqa: E402

REFERENCE = os.environ.get("LMTOOL_REFERENCE", os.path.join(ROOT, "..", "shared", "reference"))
LMPLZ_PRUNED_PPL = 50.15003  # ANCHORS.md: lmplz -o 5 --prune 0 1 1 1 1, KJV test
KENLM_Q8_TRIE_MB = 8.79  # ANCHORS.md: build_binary -q 8 -b 8 trie of the KJV 5-gram
COUNT_PRUNING = ([0, 0, 0, 0, 1], [0, 0, 0, 1, 1], [0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [0, 1, 1, 2, 2],
                 [0, 1, 2, 2, 2], [0, 2, 2, 3, 3], [0, 2, 3, 3, 3], [0, 3, 4, 4, 4])
THRESHOLDS = (3e-9, 1e-8, 3e-8, 1e-7, 3e-7, 1e-6, 3e-6)


def perplexity(model, text):
    return model.perplexity(text)


def bench_count_pruning(test):
    from lmtool.ngram.arpa import read_arpa
    from lmtool.ngram.build import build_ngram_model

    model = build_ngram_model([os.path.join(KJV, "train.txt")], order=5, prune=[0, 1, 1, 1, 1])
    print("\n## count --prune 0 1 1 1 1 against lmplz -o 5 --prune 0 1 1 1 1 (KJV train)\n")
    path = os.path.join(REFERENCE, "kjv.o5.prune01111.arpa.gz")
    if not os.path.exists(path):
        print(f"(lmplz's pruned model not found at {path}; set LMTOOL_REFERENCE)")
        return model
    ref = read_arpa(path)
    to_ref = np.array([ref.vocab.index[t] for t in model.vocab.tokens])
    worst_p = worst_b = 0.0
    same = model.sizes == ref.sizes
    for n in range(1, model.order + 1):
        a, b = ref.ngrams(n), to_ref[model.ngrams(n)]
        ia, ib = np.lexsort(a.T[::-1]), np.lexsort(b.T[::-1])
        same = same and np.array_equal(a[ia], b[ib])
        worst_p = max(worst_p, float(np.abs(model.prob[model.level(n)][ib] - ref.prob[ref.level(n)][ia]).max()))
        if n < model.order:
            worst_b = max(worst_b, float(np.abs(model.backoff[model.level(n)][ib]
                                                - ref.backoff[ref.level(n)][ia]).max()))
    ppl = perplexity(model, test)
    print("| | n-grams per order | same n-grams | max abs diff log10 p | max abs diff log10 backoff | test ppl |")
    print("|---|---|---|---|---|---|")
    print(f"| lmtool | {' / '.join(f'{s:,}' for s in model.sizes)} | {'yes' if same else 'NO'} | {worst_p:.2g} | "
          f"{worst_b:.2g} | {ppl:.5f} |")
    print(f"| lmplz | {' / '.join(f'{s:,}' for s in ref.sizes)} | | | | {LMPLZ_PRUNED_PPL} |")
    print(f"\nPerplexity ratio {ppl / LMPLZ_PRUNED_PPL - 1:+.5%}.")
    return model


def bench_curve(full, test, plot):
    from lmtool.ngram import prune as P
    from lmtool.ngram.context_frequency import history_of
    from lmtool.ngram.build import build_ngram_model

    counted = []
    for prune in COUNT_PRUNING:
        model = build_ngram_model([os.path.join(KJV, "train.txt")], order=5, prune=prune)
        counted.append((" ".join(map(str, prune)), sum(model.sizes), perplexity(model, test)))
    chain = P.costs(full)
    history = P.costs(full, history=history_of(full, [os.path.join(KJV, "train.txt")]))
    sweeps = {}
    for name, c in (("chain rule", chain), ("--history train", history)):
        sweeps[name] = [(t, *_pruned(P, c, t, test)) for t in THRESHOLDS]
    print("\n## test perplexity by size: count pruning against relative-entropy pruning (KJV 5-gram)\n")
    print("Count pruning: `count --order 5 --prune T1..T5`. Entropy pruning of the unpruned 5-gram: `prune "
          "--threshold T`, P(h) by the model's chain rule (SRILM's) or by the frequencies of the training text "
          "(`--history corpora/kjv/train.txt`).\n")
    print("| method | setting | n-grams | test ppl |")
    print("|---|---|---|---|")
    for setting, size, ppl in counted:
        print(f"| count --prune | {setting} | {size:,} | {ppl:.3f} |")
    for name, rows in sweeps.items():
        for t, size, ppl in rows:
            print(f"| prune ({name}) | --threshold {t:g} | {size:,} | {ppl:.3f} |")
    print("\nAt the sizes count pruning gives (`prune --size N`):\n")
    print("| n-grams | count --prune | ppl | prune, chain rule | prune --history train | history against count |")
    print("|---|---|---|---|---|---|")
    for setting, size, ppl in counted:
        a = perplexity(P.pruned_model(chain, P.threshold_for_size(chain, size)), test)
        b = perplexity(P.pruned_model(history, P.threshold_for_size(history, size)), test)
        print(f"| {size:,} | {setting} | {ppl:.3f} | {a:.3f} | {b:.3f} | {b / ppl - 1:+.1%} |")
    if plot:
        _plot(plot, counted, sweeps)
    return counted, sweeps


def _pruned(P, c, threshold, test):
    model = P.pruned_model(c, threshold)
    return sum(model.sizes), perplexity(model, test)


def _plot(path, counted, sweeps):
    try:
        import matplotlib
    except ImportError:
        print(f"\n(no plot: matplotlib is not installed; {path} not written)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot([s for _, s, _ in counted], [p for _, _, p in counted], "o-", label="count --prune")
    for name, rows in sweeps.items():
        ax.plot([s for _, s, _ in rows], [p for _, _, p in rows], "s-" if "history" in name else "^-",
                label=f"prune --threshold ({name})")
    ax.set_xscale("log")
    ax.set_xlabel("n-grams in the model")
    ax.set_ylabel("KJV test perplexity")
    ax.set_title("KJV 5-gram, modified Kneser-Ney: pruned models")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nPlot: `{os.path.relpath(path, ROOT)}`.")


def bench_quantized(full, test, tmp):
    import lmtool
    from lmtool.ngram import quantize as q

    plain_path = os.path.join(tmp, "plain.lm")
    full.save(plain_path)
    base = perplexity(full, test)
    print("\n## quantised files: KJV 5-gram (`convert kjv5.lm small.lm --quantize BITS`)\n")
    print("| bits | MB | test ppl | against unquantised | mean sq. error log10 p, orders 2-5 (Lloyd / KenLM's bins) "
          "| test ppl with KenLM's bins |")
    print("|---|---|---|---|---|---|")
    print(f"| unquantised | {os.path.getsize(plain_path) / 1e6:.2f} | {base:.3f} | | | |")
    sizes = {}
    for bits in (4, 8, 12, 16):
        small = q.quantize(full, bits)
        path = os.path.join(tmp, f"q{bits}.lm")
        small.save(path)
        kenlm = q.quantize(full, bits, centres_of=q.kenlm_centres)
        ours = _prob_error(full, small)
        theirs = _prob_error(full, kenlm)
        ppl = perplexity(lmtool.load(path), test)
        sizes[bits] = os.path.getsize(path) / 1e6
        print(f"| {bits} | {sizes[bits]:.2f} | {ppl:.3f} | {ppl / base - 1:+.3%} | {ours:.3g} / {theirs:.3g} | "
              f"{perplexity(kenlm, test):.3f} |")
    print(f"\nKenLM's trie at `-q 8 -b 8` (ANCHORS.md): {KENLM_Q8_TRIE_MB} MB.")
    return plain_path, os.path.join(tmp, "q8.lm"), sizes


def _prob_error(full, small):
    V = full.sizes[0]
    return float(np.mean((small.prob[V:].astype(np.float64) - full.prob[V:]) ** 2))


def bench_speed(plain_path, small_path, rounds=9):
    """Load (with the scoring hash) and score all of KJV train with both files, in turns (each going first
    every other round); best of ``rounds``."""
    import lmtool

    with open(os.path.join(KJV, "train.txt"), "rb") as f:
        data = f.read()
    models = {path: lmtool.load(path) for path in (plain_path, small_path)}
    ids, lengths = models[plain_path].vocab.encode_bytes(data)
    assert models[small_path].vocab.tokens == models[plain_path].vocab.tokens
    for model in models.values():  # kernels compiled or loaded from the cache, hash tables built
        model.score_ids(ids[:1000], np.array([1000], np.int32))
    load = {path: [] for path in models}
    score = {path: [] for path in models}
    for k in range(rounds):
        for path in (list(models) if k % 2 == 0 else list(models)[::-1]):  # each first half the time
            start = time.perf_counter()
            fresh = lmtool.load(path)
            fresh._hash_table()
            load[path].append(time.perf_counter() - start)
            start = time.perf_counter()
            fresh.score_ids(ids, lengths)  # a table allocated anew each round: page placement varies
            score[path].append(time.perf_counter() - start)
    tokens = len(ids) + len(lengths)
    print(f"\n## load and score: unquantised against 8 bits, in turns, best of {rounds} (KJV train, "
          f"{tokens:,} tokens)\n")
    print("| file | load + scoring hash s | score_ids s | tokens/s |")
    print("|---|---|---|---|")
    for path, name in ((plain_path, "unquantised"), (small_path, "8 bits")):
        print(f"| {name} | {min(load[path]):.3f} | {min(score[path]):.3f} | {tokens / min(score[path]) / 1e6:.2f} M |")
    ratio = min(score[plain_path]) / min(score[small_path])
    print(f"\nScore throughput of the 8-bit file: {ratio:.3f}x the unquantised file's (the same hash table and "
          f"kernel); load {min(load[small_path]) / min(load[plain_path]):.2f}x its time (codes decoded against "
          "arrays memory-mapped).")
    return ratio


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plot", metavar="FILE.png", help="Draw the perplexity-by-size curves.")
    ap.add_argument("--core", type=int, default=0, help="Core to pin to.")
    ap.add_argument("--only", nargs="+", choices=("count", "curve", "quantized"), help="Run these parts only.")
    a = ap.parse_args()
    parts = set(a.only or ("count", "curve", "quantized"))
    pin_self(a.core)
    from lmtool.ngram.build import build_ngram_model

    with open(os.path.join(KJV, "test.txt"), encoding="utf-8") as f:
        test = f.read()
    full = build_ngram_model([os.path.join(KJV, "train.txt")], order=5)
    if "count" in parts:
        bench_count_pruning(test)
    if "curve" in parts:
        bench_curve(full, test, a.plot)
    if "quantized" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            plain, small, _ = bench_quantized(full, test, tmp)
            bench_speed(plain, small)


if __name__ == "__main__":
    main()
