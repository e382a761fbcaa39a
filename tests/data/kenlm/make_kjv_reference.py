"""Derive ``kjv.reference.json.gz``, the compact stand-in for KenLM's full-KJV ARPA files, from them.

    python tests/data/kenlm/make_kjv_reference.py [REFERENCE_FOLDER]   (default: ../shared/reference)

The folder holds ``kjv.o3.arpa.gz`` and ``kjv.o5.arpa.gz``, made by ``lmplz -o N`` from
``corpora/kjv/train.txt`` (see ../shared/ANCHORS.md). For each model the reference keeps the
``digest`` of its vocabulary and, for each order n, the number of n-grams, the ``digest`` of their
sorted list (so a test can check that a model has exactly the same n-grams), and a sample of
``SAMPLE`` n-grams chosen by a hash of their text (``chosen``) with the log10 probability and
backoff the ARPA file gives them; plus the perplexities KenLM's ``query -v summary`` reports on
``corpora/kjv/test.txt`` (ANCHORS.md). The output is the same bytes each time it is made from the
same files.
"""

import gzip
import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "kjv.reference.json.gz")
SAMPLE = 2000  # n-grams per order
MODELS = (3, 5)
# KenLM's query -v summary on corpora/kjv/test.txt, from ../shared/ANCHORS.md (printed to 7 digits).
QUERY = {
    3: {"perplexity": 48.92532, "perplexity_excluding_oov": 46.64589, "oov": 218, "tokens": 46777},
    5: {"perplexity": 41.58920, "perplexity_excluding_oov": 39.62604, "oov": 218, "tokens": 46777},
}


def vocabulary_digest(tokens):
    """blake2b-128 (hex) of the tokens sorted as UTF-8 bytes, each followed by a newline."""
    return hashlib.blake2b(b"".join(t + b"\n" for t in sorted(t.encode("utf-8") for t in tokens)),
                           digest_size=16).hexdigest()


def ranks(tokens):
    """{token: its position among ``tokens`` sorted as UTF-8 bytes}: word ids any tool can agree on."""
    return {t: i for i, t in enumerate(sorted(tokens, key=lambda t: t.encode("utf-8")))}


def digest(rows):
    """blake2b-128 (hex) of n-grams given as rows of word ``ranks`` (int[M, n]), sorted row by row
    (as tuples) and written as little-endian int32: one value for "exactly these n-grams" over the
    vocabulary whose ``vocabulary_digest`` goes with it."""
    rows = np.asarray(rows, "<i4").reshape(len(rows), -1)
    rows = rows[np.lexsort(rows.T[::-1])]
    return hashlib.blake2b(np.ascontiguousarray(rows).tobytes(), digest_size=16).hexdigest()


def chosen(ngrams, k=SAMPLE):
    """The ``k`` n-grams whose 64-bit blake2b hash of their text is smallest (all if fewer)."""
    def key(g):
        return hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest()

    return sorted(ngrams, key=key)[:k]


def read_arpa(path):
    """{n: {ngram text: (log10 p, log10 backoff)}} of a gzipped ARPA file, numbers as printed there
    (a missing backoff is 0), checked against the counts of its \\data\\ section."""
    counts, orders, n = {}, {}, None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line == "\\data\\":
                continue
            if line.startswith("ngram "):
                order, count = line[len("ngram "):].split("=")
                counts[int(order)] = int(count)
            elif line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:-len("-grams:")])
                orders[n] = {}
            elif line == "\\end\\":
                break
            else:
                fields = line.split("\t")
                orders[n][fields[1]] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
    assert {k: len(v) for k, v in orders.items()} == counts, f"{path}: counts differ from \\data\\"
    return orders


def reference(path, order):
    """The compact reference of one ARPA file."""
    orders = read_arpa(path)
    assert max(orders) == order
    rank = ranks(orders[1])
    levels = []
    for n in range(1, order + 1):
        grams = orders[n]
        rows = [[rank[w] for w in g.split(" ")] for g in grams]
        levels.append({"n": n, "count": len(grams), "blake2b": digest(rows),
                       "sample": [[g, *grams[g]] for g in sorted(chosen(grams))]})
    return {"order": order, "arpa": os.path.basename(path), "vocabulary_blake2b": vocabulary_digest(orders[1]),
            "orders": levels, "query_test": QUERY[order]}


def main(folder):
    out = {"made_by": "tests/data/kenlm/make_kjv_reference.py",
           "models": {f"kjv.o{order}": reference(os.path.join(folder, f"kjv.o{order}.arpa.gz"), order)
                      for order in MODELS}}
    data = json.dumps(out, sort_keys=True, separators=(",", ":")).encode("utf-8")
    with open(OUTPUT, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as f:
        f.write(data)
    print(f"wrote {OUTPUT} ({os.path.getsize(OUTPUT):,} bytes)")


if __name__ == "__main__":
    default = os.path.join(HERE, "..", "..", "..", "..", "shared", "reference")
    main(sys.argv[1] if len(sys.argv) > 1 else default)
