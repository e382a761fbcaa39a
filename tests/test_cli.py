"""Every subcommand on good input, through click's CliRunner (in-process, so it is quick).

Exact values are asserted where they are known independently of lmtool: token counts are words plus
one </s> per line, OOVs are words of the test text absent from the training text, KenLM's lmplz and
query outputs on the tiny corpus are in tests/data/kenlm/, and perplexity is 10 ** (-log10 p / tokens).
"""

import bz2
import gzip
import json
import lzma
import traceback
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from lmtool.cli import cli

from .conftest import KENLM_DATA, TINY_TEST, TINY_TRAIN, run_lmtool

SUBCOMMANDS = ("count", "perplexity", "score", "generate", "convert", "info")
SMOOTHING = ("modified-kneser-ney", "kneser-ney", "witten-bell", "add-k", "stupid-backoff")
SPECIALS = ("<unk>", "<s>", "</s>")
SUMMARY_LABELS = ("Perplexity including OOVs", "Perplexity excluding OOVs", "OOVs", "Tokens", "Sentences",
                  "Log10 probability")


def lmtool(*args, input=None):
    """Run ``lmtool ARGS`` in-process and return its stdout; fail with the command and error if it fails."""
    args = [str(a) for a in args]
    result = CliRunner().invoke(cli, args, input=input)
    if result.exit_code != 0:
        trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        pytest.fail(f"$ lmtool {' '.join(args)}\nexit {result.exit_code}\nstderr: {result.stderr}\n{trace}")
    return result.stdout


def info(path):
    return json.loads(lmtool("info", "--json", path))


def read_arpa(path):
    """(counts {n: int} from the header, {(n, 'w1 .. wn'): (log10 p, log10 backoff or None)}) of an ARPA file."""
    opener = gzip.open if str(path).endswith(".gz") else open
    counts, entries, n = {}, {}, None
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line in ("\\data\\", "\\end\\") or (line.startswith("#") and n is None and not counts):
                continue  # comments may come before \data\ (KenLM's rule)
            if line.startswith("ngram ") and n is None:
                k, v = line[len("ngram "):].split("=")
                counts[int(k)] = int(v)
            elif line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:line.index("-")])
            else:
                fields = line.split("\t")
                entries[(n, fields[1])] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else None)
    return counts, entries


def assert_same_ngrams(a, b, tol=1e-6):
    """Same n-grams, log10 probabilities and backoffs within ``tol`` (a missing backoff is 0)."""
    (counts_a, a), (counts_b, b) = a, b
    assert counts_a == counts_b
    assert a.keys() == b.keys()
    worst_p = max(abs(a[k][0] - b[k][0]) for k in a)
    worst_b = max(abs((a[k][1] or 0.0) - (b[k][1] or 0.0)) for k in a)
    assert worst_p <= tol and worst_b <= tol, (worst_p, worst_b)


def unigrams(arpa):
    return {words for (n, words) in read_arpa(arpa)[1] if n == 1}


def lines_of(path):
    return path.read_text(encoding="utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def train_counts():
    return Counter(w for line in lines_of(TINY_TRAIN) for w in line.split())


@pytest.fixture(scope="module")
def test_facts(train_counts):
    """Known figures of the tiny test text against the tiny training vocabulary."""
    lines = lines_of(TINY_TEST)
    words = [w for line in lines for w in line.split()]
    return {"sentences": len(lines), "words": len(words), "tokens": len(words) + len(lines),
            "oov": sum(w not in train_counts for w in words)}


@pytest.fixture(scope="module")
def kenlm_query():
    return json.loads((KENLM_DATA / "query_tiny_test.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One order-3 model (and its ARPA) per smoothing method, built with ``lmtool count``."""
    folder = tmp_path_factory.mktemp("smoothing")
    models = {}
    for method in SMOOTHING:
        lm, arpa = folder / f"{method}.lm", folder / f"{method}.arpa"
        extra = ("--k", "0.5") if method == "add-k" else ()
        lmtool("count", "-q", TINY_TRAIN, "--smoothing", method, *extra, "-o", lm, "--arpa", arpa)
        models[method] = (lm, arpa)
    return models


# --- help ----------------------------------------------------------------------------------------

def test_help_lists_every_subcommand():
    text = lmtool("--help")
    for name in SUBCOMMANDS:
        assert name in text
        own = lmtool(name, "--help")
        assert own.startswith("Usage:") and f" {name} [OPTIONS]" in own


def test_version():
    from lmtool import __version__

    assert __version__ in lmtool("--version")


# --- count ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", SMOOTHING)
def test_count_each_smoothing(method, built):
    lm, arpa = built[method]
    header = info(lm)
    counts, entries = read_arpa(arpa)
    assert header["kind"] == "ngram"
    assert header["order"] == 3
    assert header["smoothing"] == method
    assert header["sizes"] == [counts[1], counts[2], counts[3]]
    assert [sum(1 for (n, _) in entries if n == k) for k in (1, 2, 3)] == header["sizes"]
    assert header["normalized"] == (method != "stupid-backoff")
    if method == "add-k":
        assert header["options"] == {"k": 0.5}
    if header["normalized"]:
        # p(w) over the vocabulary without <s> (never predicted) sums to one
        total = sum(10 ** p for (n, w), (p, _) in entries.items() if n == 1 and w != "<s>")
        assert total == pytest.approx(1.0, abs=1e-5)


def test_count_default_is_kenlm(tiny_model):
    """Interpolated modified Kneser-Ney, as KenLM's lmplz -o 3 writes it for the same text."""
    assert_same_ngrams(read_arpa(tiny_model.arpa), read_arpa(KENLM_DATA / "tiny.o3.arpa.gz"))


def test_count_records_training_data(tiny_model, train_counts):
    header = info(tiny_model.lm)
    n_lines = len(lines_of(TINY_TRAIN))
    assert n_lines == 1000
    assert header["training"]["sentences"] == n_lines
    assert header["training"]["tokens"] == sum(train_counts.values()) + n_lines
    assert header["sizes"][0] == len(train_counts) + len(SPECIALS)


@pytest.mark.parametrize("order", [1, 2, 5])
def test_count_order(order, tmp_path):
    lm, arpa = tmp_path / "m.lm", tmp_path / "m.arpa"
    lmtool("count", "-q", TINY_TRAIN, "--order", order, "-o", lm, "--arpa", arpa)
    header = info(lm)
    assert header["order"] == order and len(header["sizes"]) == order
    assert sorted(read_arpa(arpa)[0]) == list(range(1, order + 1))


def test_count_char_level(tmp_path):
    lm = tmp_path / "char.lm"
    lmtool("count", "-q", TINY_TRAIN, "--level", "char", "-o", lm)
    header = info(lm)
    assert header["level"] == "char"
    characters = set(TINY_TRAIN.read_text(encoding="utf-8").replace("\n", ""))
    assert header["sizes"][0] == len(characters) + len(SPECIALS)
    assert lmtool("score", "-q", lm, "-", input="and god\n").split("\t")[1:] == ["8", "0\n"]
    sample = lmtool("generate", "-q", lm, "-n", 3, "--seed", 1, "--prefix", "and ")
    assert [line[:4] for line in sample.splitlines()] == ["and "] * 3


def test_count_vocab_file(tmp_path):
    vocab, lm, arpa = tmp_path / "vocab.txt", tmp_path / "v.lm", tmp_path / "v.arpa"
    vocab.write_text("and god\nsaid the   zebra\n")  # zebra is not in the corpus
    lmtool("count", "-q", TINY_TRAIN, "--vocab", vocab, "-o", lm, "--arpa", arpa)
    assert unigrams(arpa) == set(SPECIALS) | {"and", "god", "said", "the"}
    assert info(lm)["vocabulary"]["limited_to_list"] is True
    # light is in the corpus but not the list, xyz in neither: both are OOVs
    assert lmtool("score", "-q", lm, "-", input="and god said light xyz\n").split("\t")[1:] == ["6", "2\n"]


def test_count_min_count(tmp_path, train_counts):
    arpa = tmp_path / "m.arpa"
    lmtool("count", "-q", TINY_TRAIN, "--min-count", 2, "-o", tmp_path / "m.lm", "--arpa", arpa)
    assert unigrams(arpa) == set(SPECIALS) | {w for w, c in train_counts.items() if c >= 2}


def test_count_max_vocab(tmp_path, train_counts):
    arpa = tmp_path / "m.arpa"
    lmtool("count", "-q", TINY_TRAIN, "--max-vocab", 100, "-o", tmp_path / "m.lm", "--arpa", arpa)
    most_frequent = sorted(train_counts, key=lambda w: (-train_counts[w], w))[:100 - len(SPECIALS)]
    assert unigrams(arpa) == set(SPECIALS) | set(most_frequent)


@pytest.mark.parametrize("ext,compress", [("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)])
def test_count_compressed_input(ext, compress, tmp_path, tiny_model):
    packed = tmp_path / f"train.txt.{ext}"
    packed.write_bytes(compress(TINY_TRAIN.read_bytes()))
    lm, arpa = tmp_path / "m.lm", tmp_path / "m.arpa"
    lmtool("count", "-q", packed, "-o", lm, "--arpa", arpa)
    assert arpa.read_bytes() == tiny_model.arpa.read_bytes()
    assert info(lm)["training"]["blake2b"] == info(tiny_model.lm)["training"]["blake2b"]


def test_count_stdin(tmp_path, tiny_model):
    lm, arpa = tmp_path / "m.lm", tmp_path / "m.arpa"
    lmtool("count", "-q", "-", "-o", lm, "--arpa", arpa, input=TINY_TRAIN.read_bytes())
    assert arpa.read_bytes() == tiny_model.arpa.read_bytes()
    assert info(lm)["training"]["files"] == ["<stdin>"]


def test_count_several_files(tmp_path, tiny_model):
    lines = TINY_TRAIN.read_bytes().split(b"\n")
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_bytes(b"\n".join(lines[:400]) + b"\n")
    second.write_bytes(b"\n".join(lines[400:]))
    lm, arpa = tmp_path / "m.lm", tmp_path / "m.arpa"
    lmtool("count", "-q", first, second, "-o", lm, "--arpa", arpa)
    assert arpa.read_bytes() == tiny_model.arpa.read_bytes()
    assert info(lm)["training"]["files"] == [str(first), str(second)]
    assert info(lm)["training"]["sentences"] == 1000


# --- perplexity ----------------------------------------------------------------------------------

def perplexity_json(*args, input=None):
    out = lmtool("perplexity", "-q", "--json", *args, input=input)
    assert out.endswith("\n") and out.count("\n") == 1, f"expected one JSON object on one line: {out!r}"
    return json.loads(out)


def test_perplexity_json(tiny_model, test_facts, kenlm_query):
    result = perplexity_json(tiny_model.lm, TINY_TEST)
    for key in ("perplexity", "perplexity_excluding_oov", "sentences", "tokens", "oov", "logprob10"):
        assert key in result
    assert result["sentences"] == test_facts["sentences"] == 100
    assert result["tokens"] == test_facts["tokens"] == 3220
    assert result["oov"] == test_facts["oov"] == 159
    assert result["perplexity"] == pytest.approx(10 ** (-result["logprob10"] / result["tokens"]), rel=1e-12)
    assert result["perplexity"] == pytest.approx(kenlm_query["tiny.o3"]["perplexity"], rel=1e-6)
    assert result["perplexity_excluding_oov"] == pytest.approx(kenlm_query["tiny.o3"]["perplexity_excluding_oov"],
                                                               rel=1e-6)


def test_perplexity_summary(tiny_model):
    text = lmtool("perplexity", "-q", tiny_model.lm, TINY_TEST)
    rows = [line.split("\t") for line in text.splitlines()]
    assert [row[0].rstrip(":") for row in rows] == list(SUMMARY_LABELS)
    values = dict((label, float(row[1])) for label, row in zip(SUMMARY_LABELS, rows))
    result = perplexity_json(tiny_model.lm, TINY_TEST)
    assert values["Perplexity including OOVs"] == pytest.approx(result["perplexity"], abs=1e-5)
    assert values["Perplexity excluding OOVs"] == pytest.approx(result["perplexity_excluding_oov"], abs=1e-5)
    assert (values["OOVs"], values["Tokens"], values["Sentences"]) == (159, 3220, 100)
    assert values["Log10 probability"] == pytest.approx(result["logprob10"], abs=1e-4)


def test_perplexity_several_files_stdin_and_gz(tiny_model, tmp_path):
    once = perplexity_json(tiny_model.lm, TINY_TEST)
    twice = perplexity_json(tiny_model.lm, TINY_TEST, TINY_TEST)
    assert (twice["tokens"], twice["oov"], twice["sentences"]) == (2 * once["tokens"], 2 * once["oov"], 200)
    assert twice["logprob10"] == pytest.approx(2 * once["logprob10"], rel=1e-12)
    assert twice["perplexity"] == pytest.approx(once["perplexity"], rel=1e-12)
    piped = perplexity_json(tiny_model.lm, "-", input=TINY_TEST.read_bytes())
    packed = tmp_path / "test.txt.gz"
    packed.write_bytes(gzip.compress(TINY_TEST.read_bytes()))
    for other in (piped, perplexity_json(tiny_model.lm, packed)):
        assert other["perplexity"] == once["perplexity"] and other["tokens"] == once["tokens"]


@pytest.mark.parametrize("name", ["tiny.o3", "tiny.o5"])
def test_perplexity_of_kenlm_arpa_matches_kenlm_query(name, tmp_path, kenlm_query):
    lm = tmp_path / f"{name}.lm"
    lmtool("convert", "-q", KENLM_DATA / f"{name}.arpa.gz", lm)
    result = perplexity_json(lm, TINY_TEST)
    expected = kenlm_query[name]
    assert (result["tokens"], result["oov"]) == (expected["tokens"], expected["oov"])
    assert result["perplexity"] == pytest.approx(expected["perplexity"], rel=1e-6)
    assert result["perplexity_excluding_oov"] == pytest.approx(expected["perplexity_excluding_oov"], rel=1e-6)


# --- score ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def score_input(tmp_path_factory):
    """The test text with empty and blank lines mixed in (each still one sentence: just </s>)."""
    lines = lines_of(TINY_TEST)[:40]
    mixed = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 7 == 3:
            mixed.append("")
        if i % 11 == 5:
            mixed.append("   ")
    path = tmp_path_factory.mktemp("score") / "mixed.txt"
    path.write_text("\n".join(mixed) + "\n", encoding="utf-8")
    return path, mixed


def tsv_rows(text):
    return [line.split("\t") for line in text.splitlines()]


def test_score_one_line_per_input_line_in_order(tiny_model, score_input, train_counts):
    path, lines = score_input
    rows = tsv_rows(lmtool("score", "-q", tiny_model.lm, path))
    assert len(rows) == len(lines)
    for row, line in zip(rows, lines):
        assert len(row) == 3
        words = line.split()
        assert int(row[1]) == len(words) + 1
        assert int(row[2]) == sum(w not in train_counts for w in words)
        assert float(row[0]) < 0
    empty = [row for row, line in zip(rows, lines) if not line.strip()]
    assert empty and all(row[1:] == ["1", "0"] and row[0] == empty[0][0] for row in empty)
    backwards = tsv_rows(lmtool("score", "-q", tiny_model.lm, "-", input="\n".join(reversed(lines)) + "\n"))
    assert backwards == rows[::-1]


def test_score_json_matches_tsv(tiny_model, score_input):
    path, lines = score_input
    rows = tsv_rows(lmtool("score", "-q", tiny_model.lm, path))
    records = [json.loads(line) for line in lmtool("score", "-q", "--json", tiny_model.lm, path).splitlines()]
    assert len(records) == len(lines)
    for record, row in zip(records, rows):
        assert record["logprob10"] == pytest.approx(float(row[0]), abs=1e-6)
        assert (record["tokens"], record["oov"]) == (int(row[1]), int(row[2]))


def test_score_per_token(tiny_model, score_input):
    path, lines = score_input
    rows = tsv_rows(lmtool("score", "-q", "--per-token", tiny_model.lm, path))
    records = [json.loads(line) for line in
               lmtool("score", "-q", "--json", "--per-token", tiny_model.lm, path).splitlines()]
    assert len(rows) == len(records) == len(lines)
    for row, record, line in zip(rows, records, lines):
        tokens = line.split() + ["</s>"]
        assert int(row[1]) == len(tokens) and len(row) == 3 + 3 * len(tokens)
        cells = row[3:]
        assert cells[0::3] == tokens
        assert all(1 <= int(n) <= 3 for n in cells[1::3])
        assert sum(map(float, cells[2::3])) == pytest.approx(float(row[0]), abs=1e-4)
        assert record["tokens"] == len(record["words"]) == len(tokens)
        assert [w["token"] for w in record["words"]] == tokens
        assert sum(w["oov"] for w in record["words"]) == record["oov"]


def test_perplexity_is_the_sum_of_scores(tiny_model):
    rows = tsv_rows(lmtool("score", "-q", tiny_model.lm, TINY_TEST))
    result = perplexity_json(tiny_model.lm, TINY_TEST)
    logprob = sum(float(r[0]) for r in rows)
    tokens = sum(int(r[1]) for r in rows)
    assert len(rows) == result["sentences"]
    assert tokens == result["tokens"]
    assert sum(int(r[2]) for r in rows) == result["oov"]
    assert logprob == pytest.approx(result["logprob10"], abs=len(rows) * 1e-6)
    assert 10 ** (-logprob / tokens) == pytest.approx(result["perplexity"], rel=1e-6)


def test_score_stupid_backoff_model(built):
    lm, _ = built["stupid-backoff"]
    rows = tsv_rows(lmtool("score", "-q", lm, "-", input="and god said\n\n"))
    assert [r[1:] for r in rows] == [["4", "0"], ["1", "0"]]


# --- generate ------------------------------------------------------------------------------------

def generate(model, *args):
    return lmtool("generate", "-q", model, *args)


def test_generate_seed(tiny_model):
    first = generate(tiny_model.lm, "-n", 5, "--seed", 7)
    assert generate(tiny_model.lm, "-n", 5, "--seed", 7) == first
    assert generate(tiny_model.lm, "-n", 5, "--seed", 8) != first
    assert generate(tiny_model.lm, "-n", 5) == generate(tiny_model.lm, "-n", 5, "--seed", 0)


def test_generate_count_prefix_and_vocabulary(tiny_model, train_counts):
    lines = generate(tiny_model.lm, "-n", 7, "--seed", 3, "--prefix", "and god said").splitlines()
    assert len(lines) == 7
    for line in lines:
        words = line.split()
        assert words[:3] == ["and", "god", "said"]
        assert all(w in train_counts for w in words[3:]), line  # never <s>, </s> or <unk>


@pytest.mark.parametrize("prefix", ["", "in the beginning"])
def test_generate_max_tokens(tiny_model, prefix):
    lines = generate(tiny_model.lm, "-n", 20, "--seed", 1, "--max-tokens", 3, "--prefix", prefix).splitlines()
    assert len(lines) == 20
    skip = len(prefix.split())
    assert all(0 <= len(line.split()) - skip <= 3 for line in lines), lines
    assert any(len(line.split()) - skip == 3 for line in lines)


def test_generate_top_k_1_is_greedy(tiny_model):
    outputs = {generate(tiny_model.lm, "-n", 2, "--top-k", 1, "--seed", seed, "--max-tokens", 30)
               for seed in range(5)}
    assert len(outputs) == 1
    first, second = outputs.pop().splitlines()
    assert first == second


def test_generate_temperature_and_top_k_change_the_text(tiny_model):
    base = generate(tiny_model.lm, "-n", 5, "--seed", 2)
    assert generate(tiny_model.lm, "-n", 5, "--seed", 2, "--temperature", 0.5) != base
    assert generate(tiny_model.lm, "-n", 5, "--seed", 2, "--top-k", 5) != base


# --- convert -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny.o3", "tiny.o5"])
def test_convert_kenlm_round_trip(name, tmp_path):
    source = KENLM_DATA / f"{name}.arpa.gz"
    lm, back = tmp_path / "m.lm", tmp_path / "back.arpa"
    lmtool("convert", "-q", source, lm)
    lmtool("convert", "-q", lm, back)
    assert_same_ngrams(read_arpa(back), read_arpa(source))
    header = info(lm)
    assert header["kind"] == "ngram" and header["order"] == int(name[-1])
    assert header["sizes"] == [read_arpa(source)[0][n] for n in range(1, header["order"] + 1)]


def test_convert_own_arpa_round_trip_scores_the_same(tiny_model, tmp_path):
    lm, back = tmp_path / "m.lm", tmp_path / "back.arpa"
    lmtool("convert", "-q", tiny_model.arpa, lm)
    lmtool("convert", "-q", lm, back)
    assert_same_ngrams(read_arpa(back), read_arpa(tiny_model.arpa))
    # ARPA holds 8 decimals, so a value may come back one float32 step away: scores agree to 1e-5
    converted = tsv_rows(lmtool("score", "-q", lm, TINY_TEST))
    original = tsv_rows(lmtool("score", "-q", tiny_model.lm, TINY_TEST))
    assert [r[1:] for r in converted] == [r[1:] for r in original]
    assert [float(r[0]) for r in converted] == pytest.approx([float(r[0]) for r in original], abs=1e-5)


def test_convert_model_to_arpa_is_what_count_wrote(tiny_model, tmp_path):
    out = tmp_path / "again.arpa"
    lmtool("convert", "-q", tiny_model.lm, out)
    assert_same_ngrams(read_arpa(out), read_arpa(tiny_model.arpa), tol=0.0)


@pytest.mark.parametrize("name", ["again.ARPA", "again.arpa.gz", "again.Arpa.GZ"])
def test_convert_writes_arpa_whatever_the_case_and_gzipped_for_gz(tiny_model, tmp_path, name):
    import gzip

    out = tmp_path / name
    lmtool("convert", "-q", tiny_model.lm, out)
    data = out.read_bytes()
    if name.lower().endswith(".gz"):
        data = gzip.decompress(data)
    assert data == tiny_model.arpa.read_bytes()


def test_convert_reads_an_arpa_file_through_a_pipe(tiny_model, tmp_path):
    """``lmtool convert <(zcat m.arpa.gz) m.lm``: a pipe gives its bytes once, so it is read as ARPA
    without a look at its start first (which would eat that start)."""
    from lmtool import modelfile

    piped, direct = tmp_path / "piped.lm", tmp_path / "direct.lm"
    done = run_lmtool("convert", "-q", "/dev/stdin", piped, stdin=tiny_model.arpa.read_bytes())  # stdin: a pipe
    assert done.returncode == 0, done.stderr
    lmtool("convert", "-q", tiny_model.arpa, direct)
    a, b = modelfile.read(piped), modelfile.read(direct)
    assert a.arrays.keys() == b.arrays.keys()
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


def test_stupid_backoff_stays_unnormalized_through_arpa(tmp_path):
    """ARPA has no field for it: a first comment line (which KenLM skips too) keeps a stupid-backoff
    model from passing for a probability model once converted back (perplexity said 3.66)."""
    lm, arpa, back, again = (tmp_path / n for n in ("sb.lm", "sb.arpa", "back.lm", "again.arpa"))
    lmtool("count", "-q", TINY_TRAIN, "--smoothing", "stupid-backoff", "-o", lm, "--arpa", arpa)
    assert arpa.read_bytes().startswith(b"# ")
    lmtool("convert", "-q", arpa, back)
    assert info(back)["normalized"] is False
    result = CliRunner().invoke(cli, ["perplexity", "-q", str(back), str(TINY_TEST)])
    assert result.exit_code != 0 and "not probabilities" in str(result.output) + str(result.exception)
    lmtool("convert", "-q", back, again)
    assert again.read_bytes() == arpa.read_bytes()


def test_arpa_comments_before_the_data_are_skipped(tiny_model, tmp_path):
    commented = tmp_path / "commented.arpa"
    commented.write_bytes(b"# made by some tool\n\n# another note\n" + tiny_model.arpa.read_bytes())
    lmtool("convert", "-q", commented, tmp_path / "m.lm")
    lmtool("convert", "-q", tiny_model.arpa, tmp_path / "plain.lm")
    assert info(tmp_path / "m.lm")["normalized"] is True
    plain = lmtool("score", "-q", tmp_path / "plain.lm", TINY_TEST)
    assert lmtool("score", "-q", tmp_path / "m.lm", TINY_TEST) == plain


def test_count_writes_through_dev_stdout_on_a_pipe(tiny_model, tmp_path):
    """``--arpa /dev/stdout | gzip`` and ``>(...)``: the real path of /dev/stdout on a pipe is
    /proc/N/fd/pipe:[M], which cannot be opened (it said "No such file or directory")."""
    done = run_lmtool("count", "-q", TINY_TRAIN, "--order", 3, "-o", tmp_path / "m.lm", "--arpa", "/dev/stdout",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == tiny_model.arpa.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.lm"]


# --- info ----------------------------------------------------------------------------------------

def test_info_json(tiny_model):
    header = info(tiny_model.lm)
    counts, _ = read_arpa(tiny_model.arpa)
    assert header["kind"] == "ngram"
    assert header["order"] == 3
    assert header["sizes"] == [counts[1], counts[2], counts[3]]
    assert header["bytes"] == tiny_model.lm.stat().st_size
    assert header["smoothing"] == "modified-kneser-ney"
    assert header["file"] == str(tiny_model.lm)


def test_info_text(tiny_model):
    fields = dict(line.split(":\t", 1) for line in lmtool("info", tiny_model.lm).splitlines())
    assert fields["kind"] == "ngram"
    assert fields["order"] == "3"
    assert json.loads(fields["sizes"]) == info(tiny_model.lm)["sizes"]
    assert lmtool("info", "-q", tiny_model.lm) == lmtool("info", tiny_model.lm)  # every command takes --quiet


@pytest.mark.parametrize("smoothing", ["modified-kneser-ney", "kneser-ney"])
def test_orders_with_no_ngrams_still_build(tmp_path, smoothing):
    corpus = tmp_path / "short.txt"
    corpus.write_text("a\nb\na\n")  # <s> w </s>: no 4-grams or 5-grams at all
    lmtool("count", corpus, "--order", "5", "--smoothing", smoothing, "-o", tmp_path / "m.lm", "--quiet")
    assert info(tmp_path / "m.lm")["sizes"][3:] == [0, 0]
