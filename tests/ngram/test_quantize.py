"""Quantised n-gram models: bit packing, centres against KenLM's bins, files that load back the same."""

import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lmtool import modelfile
from lmtool.errors import LmtoolError
from lmtool.kernels.bitpack import pack, packed_words, unpack, unpack_lookup
from lmtool.ngram import quantize as q
from lmtool.ngram.arpa import read_arpa, write_arpa
from tests import naive
from tests.conftest import KJV_TRAIN, TINY_TEST, TINY_TRAIN, run_lmtool
from tests.helpers import model_from_text


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 32), n=st.integers(0, 200), seed=st.integers(0, 2**31), first=st.integers(0, 50))
def test_packing_matches_python_integers(bits, n, seed, first):
    values = np.random.default_rng(seed).integers(0, 1 << bits, n, dtype=np.uint64).astype(np.uint32)
    packed = np.zeros(packed_words(n, bits), np.uint64)
    pack(values, bits, packed)
    assert packed.tolist() == naive.pack_bits(values.tolist(), bits)
    first = min(first, n)
    out = np.empty(n - first, np.uint32)
    unpack(packed, bits, first, out)
    assert np.array_equal(out, values[first:])
    assert np.array_equal(q.unpack(packed, bits, first, n - first), values[first:])  # NumPy's, for cold starts
    if bits <= 12:
        table = np.random.default_rng(seed).normal(size=1 << bits).astype(np.float32)
        looked = np.empty(n - first, np.float32)
        unpack_lookup(packed, bits, first, table, looked)
        assert np.array_equal(looked, table[values[first:]])


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(-8, 0, allow_nan=False, width=32), min_size=1, max_size=300),
       bits=st.integers(1, 6))
def test_centres_are_kenlms_bins_then_never_worse(values, bits):
    levels = 1 << bits
    kenlm = naive.kenlm_bins(values, levels)
    np.testing.assert_allclose(q.quantile_centres(values, levels), kenlm, rtol=1e-12, atol=1e-12)
    ours = q.lloyd_centres(values, levels)
    assert len(ours) <= levels and np.all(np.diff(ours) > 0)
    finite = np.unique([c for c in kenlm if np.isfinite(c)])
    assert q.squared_error(values, ours) <= q.squared_error(values, finite) * (1 + 1e-9) + 1e-15
    if len(set(values)) <= levels:
        assert q.squared_error(values, ours) == 0.0


def test_lloyd_beats_kenlm_on_real_probabilities(tiny4):
    model, _ = tiny4
    for n in (2, 3, 4):
        values = model.prob[model.level(n)]
        for bits in (4, 8):
            kenlm = q.quantile_centres(values, 1 << bits)
            assert q.squared_error(values, q.lloyd_centres(values, 1 << bits)) < \
                q.squared_error(values, np.unique(kenlm[np.isfinite(kenlm)]))


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory):
    folder = tmp_path_factory.mktemp("q")
    return model_from_text(folder, TINY_TRAIN.read_text(encoding="utf-8"), 4, name="t.txt"), folder


@pytest.mark.parametrize("bits", [4, 8, 16])
def test_a_quantised_file_loads_back_the_same_model(tiny4, bits):
    import lmtool

    model, folder = tiny4
    small = q.quantize(model, bits)
    path = folder / f"q{bits}.lm"
    small.save(path)
    again = lmtool.load(path)
    assert again.meta["quantized"]["bits"] == bits and again.quantized is not None
    for name in ("word", "prob", "backoff", "children"):
        assert np.array_equal(getattr(again, name), getattr(small, name)), name
    assert np.array_equal(again.word, model.word) and np.array_equal(again.children, model.children)
    for n in range(2, model.order + 1):
        assert len(np.unique(again.prob[model.level(n)])) <= 1 << bits
    np.testing.assert_array_equal(again.prob[:model.sizes[0]], model.prob[:model.sizes[0]])  # unigrams exact
    backoff = model.backoff[model.sizes[0]:]
    assert np.array_equal(again.backoff[model.sizes[0]:][backoff == 0], backoff[backoff == 0])  # 0 stays 0
    rms = np.sqrt(np.mean((again.prob.astype(np.float64) - model.prob) ** 2))
    assert rms < {4: 0.2, 8: 0.02, 16: 1e-3}[bits] and (rms > 0) == (bits < 16)  # 16 bits: every distinct value
    again.save(folder / "again.lm")  # saved again: the same quantised bytes
    assert (folder / "again.lm").read_bytes() == path.read_bytes()
    text = TINY_TEST.read_text(encoding="utf-8")
    assert again.perplexity(text) == pytest.approx(model.perplexity(text), rel=0.05 if bits == 4 else 0.005)


def test_numpy_decoding_loads_the_kernels_model_and_scores_as_they_do(tiny4, tmp_path, monkeypatch):
    """Without Numba loaded a quantised file is decoded in NumPy (``quantize.unpack``): the same
    arrays, and the NumPy trie search on them gives the hash kernel's scores bit for bit."""
    import lmtool
    from lmtool import compiled

    model, _ = tiny4
    path = tmp_path / "q7.lm"
    q.quantize(model, 7).save(path)
    kernels = lmtool.load(path)
    monkeypatch.setattr(compiled, "numba_loaded", lambda: False)
    numpy_loaded = lmtool.load(path)
    for name in ("word", "prob", "backoff", "children"):
        assert np.array_equal(getattr(numpy_loaded, name), getattr(kernels, name)), name
    ids, lengths = model.vocab.encode_bytes(TINY_TEST.read_bytes())
    a, b = numpy_loaded.score_ids_numpy(ids, lengths), kernels.score_ids_compiled(ids, lengths)
    assert a.token.tobytes() == b.token.tobytes() and a.sentence.tobytes() == b.sentence.tobytes()


def test_quantised_files_are_version_2_and_others_stay_version_1(tiny4, monkeypatch):
    model, folder = tiny4
    q.quantize(model, 8).save(folder / "v2.lm")
    model.save(folder / "v1.lm")
    version = lambda path: struct.unpack("<I", path.read_bytes()[8:12])[0]  # noqa: E731
    assert version(folder / "v2.lm") == 2 and version(folder / "v1.lm") == 1
    monkeypatch.setattr(modelfile, "FORMAT_VERSION", 1)  # an lmtool from before quantised files
    with pytest.raises(LmtoolError, match="version 2 is newer than this lmtool .* reads .up to 1.; upgrade"):
        modelfile.read(folder / "v2.lm")


def test_a_quantised_model_converts_to_arpa_with_its_values(tiny4):
    model, folder = tiny4
    small = q.quantize(model, 6)
    write_arpa(small, folder / "q.arpa")
    back = read_arpa(str(folder / "q.arpa"))
    assert back.sizes == small.sizes
    np.testing.assert_allclose(back.prob, small.prob, atol=1e-6)
    np.testing.assert_allclose(back.backoff, small.backoff, atol=1e-6)


def test_a_damaged_quantised_file_is_one_error(tiny4):
    import lmtool

    model, folder = tiny4
    path = folder / "bad.lm"
    small = q.quantize(model, 8)
    small.quantized = dict(small.quantized, word_codes=small.quantized["word_codes"][:-1])
    small.save(path)
    with pytest.raises(LmtoolError, match="damaged n-gram model .* rebuild it"):
        lmtool.load(path)


@pytest.mark.parametrize("bits", [0, 3, 17, 40, 8.5])
def test_bit_widths_outside_4_to_16_are_refused(bits):
    with pytest.raises(LmtoolError, match="--quantize takes 4 to 16 bits"):
        q.check_bits(bits)


def test_kjv_5gram_at_8_bits_is_small_and_close(tmp_path):
    """The issue's target: at most 8.0 MB (KenLM's q8 trie: 8.79 MB), test perplexity within 0.5%."""
    done = run_lmtool("count", "-q", KJV_TRAIN, "--order", 5, "-o", tmp_path / "plain.lm")
    assert done.returncode == 0, done.stderr.decode()
    done = run_lmtool("convert", "-q", tmp_path / "plain.lm", tmp_path / "q8.lm", "--quantize", 8)
    assert done.returncode == 0, done.stderr.decode()
    assert os.path.getsize(tmp_path / "q8.lm") <= 8.0e6
    import lmtool

    text = (KJV_TRAIN.parent / "test.txt").read_text(encoding="utf-8")
    plain, small = lmtool.load(tmp_path / "plain.lm").perplexity(text), lmtool.load(tmp_path / "q8.lm").perplexity(text)
    assert abs(small / plain - 1) < 0.005


def test_count_quantize_writes_the_model_and_arpa_together(tmp_path):
    done = run_lmtool("count", "-q", TINY_TRAIN, "--order", 3, "-o", tmp_path / "m.lm", "--arpa", tmp_path / "m.arpa",
                      "--quantize", 8, "--prune", 0, 1)
    assert done.returncode == 0, done.stderr.decode()
    import lmtool

    model = lmtool.load(tmp_path / "m.lm")
    assert model.meta["quantized"]["bits"] == 8 and model.meta["options"]["prune"] == [0, 1, 1]
    np.testing.assert_allclose(read_arpa(str(tmp_path / "m.arpa")).prob, model.prob, atol=1e-6)


@pytest.mark.parametrize("command", ["count", "convert"])
@pytest.mark.parametrize("bits, message", [("0", b"--quantize takes 4 to 16 bits"), ("40", b"--quantize takes 4 to 16"),
                                           ("x", b"'x' is not a valid integer")])
def test_cli_bad_bits_are_one_line_and_write_nothing(tmp_path, tiny_model, command, bits, message):
    out = tmp_path / "out.lm"
    args = (TINY_TRAIN, "-o", out) if command == "count" else (tiny_model.lm, out)
    done = run_lmtool(command, *args, "--quantize", bits)
    assert done.returncode != 0
    assert done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"lmtool: error: ") and message in done.stderr
    assert not out.exists()
