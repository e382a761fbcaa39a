"""Write synthetic n-best lists from reference sentences, for ``lmtool rescore`` benchmarks.

    python bench/make_nbest.py corpora/kjv/test.txt --words corpora/kjv/train.txt -o lists.tsv --seed 1
    python bench/make_nbest.py corpora/kjv/test.txt --words corpora/kjv/train.txt -o lists.tsv \\
        --drop-add --noise 2 --references refs.txt --seed 1

Each list (``id<TAB>score<TAB>hypothesis``, the id the sentence's line number) holds the reference
and ``--size - 1`` corruptions of it, each made of 1 to ``--max-edits`` edits (default 1): two
adjacent words swapped, or a word replaced by a random word of the ``--words`` text (drawn by
frequency); with ``--drop-add`` a word may also be dropped or a random word added. The hypotheses
are shuffled. Every score is 0, unless ``--noise S``: then a hypothesis scores -ACOUSTIC * edits +
S * N(0, 1), a recogniser's acoustic score that knows something but not everything. The same seed
gives the same file.
"""

import argparse

import numpy as np


def corrupt(words, rng, vocabulary, drop_add, max_edits=1):
    """``words`` after 1 to ``max_edits`` random edits; returns (words, edits)."""
    words = list(words)
    edits = int(rng.integers(1, max_edits + 1))
    for _ in range(edits):
        kinds = ["swap", "replace"] + (["drop", "add"] if drop_add else [])
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "swap" and len(words) >= 2:
            i = int(rng.integers(len(words) - 1))
            words[i], words[i + 1] = words[i + 1], words[i]
        elif kind == "drop" and len(words) >= 2:
            del words[int(rng.integers(len(words)))]
        elif kind == "add":
            words.insert(int(rng.integers(len(words) + 1)), vocabulary[int(rng.integers(len(vocabulary)))])
        elif words:
            words[int(rng.integers(len(words)))] = vocabulary[int(rng.integers(len(vocabulary)))]
    return words, edits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("references_in", help="sentences, one per line: each becomes a list")
    ap.add_argument("--words", required=True, help="text whose words (by frequency) replace words")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--references", help="also write the references, one line per list")
    ap.add_argument("--size", type=int, default=10, help="hypotheses per list")
    ap.add_argument("--max-edits", type=int, default=1, help="edits per corruption: 1 to this many")
    ap.add_argument("--drop-add", action="store_true", help="edits may also drop or add a word")
    ap.add_argument("--noise", type=float, default=0.0, help="spread of the noisy acoustic scores (0: all 0)")
    ap.add_argument("--acoustic", type=float, default=1.0, help="acoustic score lost per edit (with --noise)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    with open(a.words, encoding="utf-8") as f:
        vocabulary = f.read().split()  # every occurrence: a draw is by frequency
    with open(a.references_in, encoding="utf-8") as f:
        sentences = [line.split() for line in f]
    with open(a.output, "w", encoding="utf-8") as out:
        for number, words in enumerate(sentences, 1):
            hyps = [(words, 0)] + [corrupt(words, rng, vocabulary, a.drop_add, a.max_edits) for _ in range(a.size - 1)]
            for k in rng.permutation(len(hyps)):
                hyp, edits = hyps[k]
                score = -a.acoustic * edits + a.noise * rng.standard_normal() if a.noise else 0.0
                out.write(f"{number}\t{score:.4f}\t{' '.join(hyp)}\n")
    if a.references:
        with open(a.references, "w", encoding="utf-8") as out:
            out.writelines(" ".join(words) + "\n" for words in sentences)


if __name__ == "__main__":
    main()
