"""A synthetic corpus for scaling benchmarks: sentences sampled from a 5-gram model of KJV train.

Repeating KJV adds no new n-grams (and leaves no singletons for the discounts); sampling from a
5-gram model keeps making new ones while the local statistics stay KJV-like. The same --seed gives
the same bytes whatever --threads: sentences are drawn in blocks, each from its own random streams
(``lmtool.ngram.sampler``), and written in block order.

    python bench/make_corpus.py --tokens 10M -o /tmp/synth10m.txt [--seed 1] [--threads 2]
    python bench/make_corpus.py --tokens 200M -o /tmp/synth200m.txt.gz   # gzip, level 1

--tokens counts words (not </s>); output stops after the sentence that reaches it. The model
(``lmtool count corpora/kjv/train.txt --order 5``) is built once into the bench cache, or --model.
"""

import argparse
import gzip
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, KJV, lmtool_cmd  # noqa: E402

SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_tokens(text):
    """'10M', '50m', '200M', '1.5k' or '12345' -> an int."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgKMG]?)\s*", text)
    if not found or float(found[1]) <= 0:
        raise argparse.ArgumentTypeError(f"expected a token count like 10M or 250000, got {text!r}")
    return int(float(found[1]) * SUFFIX[found[2].lower()])


def kjv5_model():
    """Path of the 5-gram model of KJV train, built with ``lmtool count`` on first use."""
    path = os.path.join(CACHE, "kjv-train-5gram.lm")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([*lmtool_cmd(), "count", os.path.join(KJV, "train.txt"), "--order", "5", "-o", path, "-q"],
                       check=True)
    return path


def generate(model, tokens, seed=0, threads=1, max_len=200):
    """Yield (text bytes, words) per block until ``tokens`` words; the last block is cut at the
    sentence that reaches the count."""
    from lmtool.ngram.sampler import NgramSampler
    from lmtool.threads import ordered_map

    sampler = NgramSampler(model, max_len=max_len)

    def block(index):
        ids, lengths = sampler.ids(seed, index)
        return ids, lengths, sampler.text(ids, lengths)

    def indices():
        index = 0
        while True:
            yield index
            index += 1

    written = 0
    for ids, lengths, text in ordered_map(block, indices(), threads):
        ends = written + lengths.cumsum()
        if ends[-1] >= tokens:
            keep = int((ends < tokens).sum()) + 1
            ids, lengths = ids[:int(lengths[:keep].sum())], lengths[:keep]
            text = sampler.text(ids, lengths)
        yield text, int(len(ids))
        written += int(len(ids))
        if written >= tokens:
            return


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", required=True, help="file to write (.gz: gzip level 1)")
    parser.add_argument("--tokens", type=parse_tokens, required=True, help="words to write: 10M, 50M, 200M...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="sampling threads (same bytes for any count)")
    parser.add_argument("--model", help="n-gram model to sample (default: KJV train 5-gram, built once)")
    parser.add_argument("--max-len", type=int, default=200, help="longest sentence, in words")
    args = parser.parse_args(argv)
    if not 1 <= args.threads <= 1024:
        parser.error(f"--threads must be in 1..1024, got {args.threads}")

    import lmtool

    model = lmtool.load(args.model or kjv5_model())
    started = time.perf_counter()
    words = 0
    tmp = args.output + ".tmp"
    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if args.output.endswith(".gz") else \
        (lambda p: open(p, "wb"))
    with opener(tmp) as out:
        for text, n in generate(model, args.tokens, seed=args.seed, threads=args.threads, max_len=args.max_len):
            out.write(text)
            words += n
    os.replace(tmp, args.output)
    seconds = time.perf_counter() - started
    print(f"{args.output}: {words:,} words in {seconds:.1f} s ({words / seconds:,.0f} words/s, "
          f"{args.threads} thread{'s' if args.threads > 1 else ''})", file=sys.stderr)


if __name__ == "__main__":
    main()
