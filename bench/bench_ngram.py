"""N-gram benchmarks: count time and memory against lmplz, model size and load time against KenLM's
binaries (scoring is bench_scoring.py's). Pinned to one core; prints Markdown.

    python bench/bench_ngram.py            # KenLM programs from bench/kenlm_binaries.sh if built
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import KJV, kenlm_binary, lmtool_cmd, pin_self, repeated_corpus, run_measured  # noqa: E402

ANCHOR = {"lmplz_wall_s": 1.46, "lmplz_rss_mb": 784,
          "trie_mb": 16.9, "probing_mb": 37.5, "arpa_load_s": 0.56}


def best(n, cmd, **kw):
    runs = [run_measured(cmd, **kw) for _ in range(n)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def bench_count(tmp, rows):
    lmplz = kenlm_binary("lmplz")
    print("\n## count: 5-gram modified Kneser-Ney (wall s, peak RSS MB; best of 3)\n")
    print("| corpus | lmtool s | lmtool MB | lmplz -S 1G s | lmplz MB | time ratio | memory ratio |")
    print("|---|---|---|---|---|---|---|")
    for times in (1, 8):
        corpus = os.path.join(KJV, "train.txt") if times == 1 else repeated_corpus(times)
        ours = best(3, [*lmtool_cmd(), "count", corpus, "--order", "5", "-o", os.path.join(tmp, "m.lm"), "-q"])
        if lmplz:
            theirs = best(3, [lmplz, "-o", "5", "-S", "1G", "--discount_fallback", "--text", corpus,
                              "--arpa", os.path.join(tmp, "m.arpa")])
            ratio = f"{ours[0] / theirs[0]:.2f}x", f"{ours[1] / theirs[1]:.2f}x"
            theirs = f"{theirs[0]:.2f}", f"{theirs[1]:.0f}"
        else:
            theirs, ratio = ("n/a", "n/a"), ("n/a", "n/a")
        print(f"| KJV train x{times} | {ours[0]:.2f} | {ours[1]:.0f} | {theirs[0]} | {theirs[1]} "
              f"| {ratio[0]} | {ratio[1]} |")
        rows[f"count_x{times}"] = ours
    print(f"\nANCHORS.md: lmplz -S 4G on KJV train x1: {ANCHOR['lmplz_wall_s']} s, {ANCHOR['lmplz_rss_mb']} MB.")


def bench_model_file(tmp, rows):
    """The KJV 5-gram's file against KenLM's binaries: size, and the time to open it."""
    import lmtool
    from lmtool.ngram.arpa import write_arpa
    from lmtool.ngram.build import build_ngram_model

    model_path = os.path.join(tmp, "m.lm")
    arpa_path = os.path.join(tmp, "m.arpa")
    model = build_ngram_model([os.path.join(KJV, "train.txt")], order=5)
    model.save(model_path)
    write_arpa(model, arpa_path)
    start = time.perf_counter()
    ours = lmtool.load(model_path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    ours._hash_table()
    hash_s = time.perf_counter() - start
    try:
        import kenlm
    except ImportError:
        kenlm = None
    size = os.path.getsize(model_path) / 1e6
    print("\n## model file: KJV 5-gram (score and perplexity throughput: bench_scoring.py)\n")
    print("| file | MB | load s |")
    print("|---|---|---|")
    print(f"| lmtool .lm (memory-mapped, checksum verified) | {size:.1f} | {load_s:.3f} |")
    print(f"| lmtool .lm, then its scoring hash table (large inputs; Numba imported already) "
          f"| {ours._hashed[2].nbytes / 1e6:.1f} in memory | {hash_s:.3f} more |")
    build_binary = kenlm_binary("build_binary")
    if build_binary:
        for kind in ("probing", "trie"):
            out = os.path.join(tmp, f"m.{kind}")
            run_measured([build_binary, kind, arpa_path, out])
            t = time.perf_counter()
            kenlm and kenlm.Model(out)
            print(f"| KenLM {kind} binary | {os.path.getsize(out) / 1e6:.1f} | {time.perf_counter() - t:.3f} |")
    else:
        print(f"| KenLM trie binary (ANCHORS.md) | {ANCHOR['trie_mb']} | 0.003 |")
    if kenlm:
        t = time.perf_counter()
        kenlm.Model(arpa_path)
        print(f"| ARPA | {os.path.getsize(arpa_path) / 1e6:.1f} | {time.perf_counter() - t:.3f} (kenlm module) |")
    rows["model_mb"] = size


def main():
    pin_self(0)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench_count(tmp, rows)
        bench_model_file(tmp, rows)
    return rows


if __name__ == "__main__":
    main()
