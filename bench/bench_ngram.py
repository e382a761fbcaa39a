"""N-gram benchmarks: count time and memory against lmplz, scoring throughput against the kenlm
module, model size and load time against KenLM's binaries. Pinned to one core; prints Markdown.

    python bench/bench_ngram.py            # KenLM programs from bench/kenlm_binaries.sh if built
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import KJV, kenlm_binary, lmtool_cmd, pin_self, repeated_corpus, run_measured  # noqa: E402

ANCHOR = {"lmplz_wall_s": 1.46, "lmplz_rss_mb": 784, "kenlm_module_tok_s": 5.1e6,
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


def bench_score(tmp, rows):
    import lmtool
    from lmtool.ngram.arpa import write_arpa

    model_path = os.path.join(tmp, "m.lm")
    arpa_path = os.path.join(tmp, "m.arpa")
    from lmtool.ngram.build import build_ngram_model

    model = build_ngram_model([os.path.join(KJV, "train.txt")], order=5)
    model.save(model_path)
    write_arpa(model, arpa_path)
    with open(os.path.join(KJV, "train.txt"), "rb") as f:
        data = f.read()
    lines = data.decode().splitlines()

    start = time.perf_counter()
    ours = lmtool.load(model_path)
    ours._hash_table()
    load_s = time.perf_counter() - start
    ids, lengths = ours.vocab.encode_bytes(data[:2000].rsplit(b"\n", 1)[0] + b"\n")
    ours.score_ids(ids, lengths)  # compile/load kernels: start-up, excluded

    def lmtool_pass():
        t = time.perf_counter()
        ids, lengths = ours.vocab.encode_bytes(data)
        total = ours.score_ids(ids, lengths).sentence.sum()
        return time.perf_counter() - t, total, len(ids) + len(lengths)

    ours_s, ours_total, tokens = min(lmtool_pass() for _ in range(5))
    print("\n## score / perplexity: 5-gram on all of KJV train (tokens/s, start-up excluded, best of 5)\n")
    print("| scorer | tokens | seconds | tokens/s | ratio |")
    print("|---|---|---|---|---|")
    try:
        import kenlm
    except ImportError:
        kenlm = None
    if kenlm:
        t = time.perf_counter()
        theirs = kenlm.Model(arpa_path)
        arpa_load_s = time.perf_counter() - t

        def kenlm_pass():
            t = time.perf_counter()
            total = sum(theirs.score(line) for line in lines)
            return time.perf_counter() - t, total

        theirs_s, theirs_total = min(kenlm_pass() for _ in range(5))
        assert abs(theirs_total - ours_total) < 1e-3 * abs(ours_total), (theirs_total, ours_total)
        print(f"| kenlm module (model.score per line) | {tokens:,} | {theirs_s:.3f} "
              f"| {tokens / theirs_s / 1e6:.2f} M | 1.00x |")
        ratio = f"{theirs_s / ours_s:.2f}x"
    else:
        arpa_load_s, ratio = float("nan"), "n/a (pip install kenlm)"
    print(f"| lmtool (encode + score_ids, one batch) | {tokens:,} | {ours_s:.3f} "
          f"| {tokens / ours_s / 1e6:.2f} M | {ratio} |")
    rows["score_tok_s"] = tokens / ours_s

    size = os.path.getsize(model_path) / 1e6
    print("\n## model file: KJV 5-gram\n")
    print("| file | MB | load s |")
    print("|---|---|---|")
    print(f"| lmtool .lm (load + build scoring hash) | {size:.1f} | {load_s:.3f} |")
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
    print(f"| ARPA | {os.path.getsize(arpa_path) / 1e6:.1f} | {arpa_load_s:.3f} (kenlm module) |")
    rows["model_mb"] = size


def main():
    pin_self(0)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench_count(tmp, rows)
        bench_score(tmp, rows)
    return rows


if __name__ == "__main__":
    main()
