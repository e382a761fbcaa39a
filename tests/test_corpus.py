"""Corpus reading: compressed files, separators, markers, character level, and refusals."""

import bz2
import gzip
import io
import lzma
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lmtool import corpus
from lmtool.encoded_corpus import encode_corpus
from lmtool.errors import LmtoolError
from lmtool.vocab import BOS, EOS, UNK, TokenTally

from .conftest import KJV_VALID

TEXT = "the cat sat\n\nthe  dog\tsat on\r\nthe mat é\n"


def lines_of(paths, **kw):
    return b"".join(c.data for c in corpus.read_chunks(paths, **kw)).decode()


@pytest.mark.parametrize("opener", [open, gzip.open, bz2.open, lzma.open])
def test_compressed_files_read_alike(tmp_path, opener):
    path = tmp_path / "c.txt.x"
    with opener(path, "wb") as f:
        f.write(TEXT.encode())
    assert lines_of([str(path)]) == TEXT.replace("\r\n", "\n")


def test_small_chunks_keep_lines_whole(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT * 50, encoding="utf-8")
    chunks = list(corpus.read_chunks([str(path)], chunk_bytes=7))
    assert all(c.data.endswith(b"\n") for c in chunks)
    assert sum(c.n_lines for c in chunks) == 4 * 50
    assert chunks[1].first_line == chunks[0].first_line + chunks[0].n_lines


def test_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(TEXT.encode()))))
    assert lines_of(["-"]) == TEXT.replace("\r\n", "\n")


def test_tokens_split_like_kenlm(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a\u00a0b c\x0cd  e\n<s> x </s>\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="line 2 has <s> in its text"):
        data = encode_corpus([str(path)])
    words = [data.vocab.tokens[i] for i in data.ids]
    # only space, tab, CR and LF separate tokens; <s> and </s> in the text are dropped (and said)
    assert words == ["a\u00a0b", "c\x0cd", "e", "x"]
    assert data.lengths.tolist() == [3, 1]
    assert corpus.line_tokens("a\u00a0b c\x0cd  e") == ["a\u00a0b", "c\x0cd", "e"]


def test_a_byte_order_mark_is_not_part_of_the_first_word(tmp_path):
    with_bom, plain = tmp_path / "bom.txt", tmp_path / "plain.txt"
    with_bom.write_bytes(corpus.UTF8_BOM + "and god said\nand it was so\n".encode())
    plain.write_bytes(b"and god said\nand it was so\n")
    a, b = encode_corpus([with_bom, plain]), encode_corpus([plain, plain])
    assert a.vocab.tokens == b.vocab.tokens and (a.ids == b.ids).all()
    inner = tmp_path / "inner.txt"
    inner.write_bytes(b"and god said\n" + corpus.UTF8_BOM + b"and\n")  # only at the start of a file
    assert "\ufeffand" in encode_corpus([inner]).vocab.tokens


def test_word_level_ids_and_vocab_order(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT, encoding="utf-8")
    data = encode_corpus([str(path)], max_vocab=5)
    assert data.vocab.tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert data.vocab.tokens[3:] == ["the", "sat"]  # most frequent first
    assert data.lengths.tolist() == [3, 0, 4, 3]
    assert (data.ids == UNK).sum() == 10 - 5
    again = encode_corpus([str(path)], vocab=data.vocab)
    np.testing.assert_array_equal(again.ids, data.ids)


def test_char_level(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("ab a\r\nb\n", encoding="utf-8")
    data = encode_corpus([str(path)], level="char")
    assert [data.vocab.tokens[i] for i in data.ids] == list("ab a") + ["b"]
    assert data.lengths.tolist() == [4, 1]
    assert BOS not in data.ids and EOS not in data.ids


def test_min_count_and_keep(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert encode_corpus([str(path)], min_count=2).vocab.tokens[3:] == ["the", "sat"]
    assert encode_corpus([str(path)], keep={"dog", "zebra"}).vocab.tokens[3:] == ["dog"]


@pytest.mark.parametrize("level, limits", [("word", {}), ("word", {"max_vocab": 500, "min_count": 2}),
                                           ("char", {})])
def test_reading_on_threads_gives_the_same_corpus(level, limits):
    """Chunks encoded on several threads, each into a token table of its own, give the vocabulary
    and ids of one thread (the tables are joined, then ranked by frequency)."""
    one = encode_corpus([KJV_VALID], level=level, chunk_bytes=50_000, **limits)
    assert len(one.lengths) == len(KJV_VALID.read_text().splitlines())
    for threads in (2, 3):
        many = encode_corpus([KJV_VALID], level=level, chunk_bytes=50_000, threads=threads, **limits)
        assert many.vocab.tokens == one.vocab.tokens and many.fingerprint == one.fingerprint
        np.testing.assert_array_equal(many.ids, one.ids)
        np.testing.assert_array_equal(many.lengths, one.lengths)
    again = encode_corpus([KJV_VALID], level=level, vocab=one.vocab, chunk_bytes=50_000, threads=3)
    np.testing.assert_array_equal(again.ids, one.ids)


def test_token_tallies_absorb_each_other(tmp_path):
    first, second = TokenTally("word"), TokenTally("word")
    first.add(b"the cat sat\nthe dog\n")
    second.add(b"a dog <unk> the\ncat\n")
    ids = first.absorb(second)
    words = second.counter._table.tokens()
    assert [first.counter._table.tokens()[i] for i in ids] == words
    tokens, counts = first.token_counts()
    assert dict(zip(tokens, counts.tolist())) == {"the": 3, "cat": 2, "sat": 1, "dog": 2, "a": 1}
    assert (first.words, first.sentences) == (10, 4)


@pytest.mark.parametrize("content,message", [
    (b"", "empty file"),
    (b"abc\x00def\n", "binary file"),
    (b"caf\xe9\n", "not UTF-8 text: invalid byte 0xe9 on line 1"),
    (b"ok\nok\n\xff\n", "line 3"),
    (b"x" * 600_000 + b"\n", "more than the limit"),
    (b"x" * 3_000_000, "longer than"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(LmtoolError, match=message) as caught:
        lines_of([str(path)])
    assert str(path) in str(caught.value)


def test_missing_and_directory(tmp_path):
    with pytest.raises(LmtoolError, match="no such file"):
        lines_of([str(tmp_path / "nope.txt")])
    with pytest.raises(LmtoolError, match="directory"):
        lines_of([str(tmp_path)])


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "c.gz"
    path.write_bytes(gzip.compress(TEXT.encode() * 100)[:60])
    with pytest.raises(LmtoolError, match="corrupt or truncated compressed data"):
        lines_of([str(path)])


def test_only_empty_lines(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n\n\n")
    with pytest.raises(LmtoolError, match="no tokens"):
        encode_corpus([str(path)])


def owned_lines(data, start, end):
    """Naive reference: the lines of ``data`` whose first byte lies in [start, end), CR LF as LF."""
    lines, at = [], 0
    for line in data.splitlines(keepends=True):  # the texts below hold no lone CR
        if start <= at < end:
            lines.append(line)
        at += len(line)
    return b"".join(lines).replace(b"\r\n", b"\n")


def check_ranges(path, cuts, **kw):
    """Read ``path`` as the ByteRanges between ``cuts``; each must hold exactly its own lines."""
    data = path.read_bytes()
    edges = [0, *sorted(cuts), len(data)]
    ranges = [corpus.ByteRange(str(path), a, b) for a, b in zip(edges, edges[1:])]
    parts = [b"".join(c.data for c in corpus.read_chunks([r], **kw)) for r in ranges]
    assert parts == [owned_lines(data, r.start, r.end) for r in ranges]
    assert b"".join(parts) == data.replace(b"\r\n", b"\n")  # no line lost or read twice


def test_byte_ranges_at_every_cut(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("a é\n\nb€c\r\nd\nef".encode())  # multi-byte characters, CR LF, no final newline
    size = path.stat().st_size
    for a in range(size + 1):
        for b in range(a, size + 1):
            check_ranges(path, [a, b], chunk_bytes=3)


@st.composite
def texts_and_cuts(draw):
    lines = draw(st.lists(st.text(alphabet="ab é€\t", max_size=8), min_size=1, max_size=12))
    data = draw(st.sampled_from(["\n", "\r\n"])).join(lines).encode() + draw(st.sampled_from([b"", b"\n"]))
    return data, draw(st.lists(st.integers(0, len(data)), max_size=6))


@settings(max_examples=200, deadline=None)
@given(case=texts_and_cuts(), chunk_bytes=st.sampled_from([2, 7, corpus.CHUNK_BYTES]))
def test_byte_ranges_read_each_line_once(tmp_path_factory, case, chunk_bytes):
    data, cuts = case
    path = tmp_path_factory.getbasetemp() / "ranges.txt"
    path.write_bytes(data)
    check_ranges(path, cuts, chunk_bytes=chunk_bytes)


def test_byte_ranges_split_plain_files_only(tmp_path):
    plain, packed = tmp_path / "c.txt", tmp_path / "c.txt.gz"
    plain.write_bytes(TEXT.encode() * 100)
    packed.write_bytes(gzip.compress(TEXT.encode() * 2000))
    ranges = corpus.byte_ranges(str(plain), 1000)
    assert len(ranges) == -(-plain.stat().st_size // 1000) and ranges[0].start == 0
    assert ranges[-1].end == plain.stat().st_size
    assert all(a.end == b.start and a.end - a.start <= 1000 for a, b in zip(ranges, ranges[1:]))
    assert lines_of(ranges) == lines_of([str(plain)])
    assert corpus.byte_ranges(str(packed), 1000) == [str(packed)]
    assert corpus.byte_ranges(str(plain), 10**6) == [str(plain)]
    with pytest.raises(LmtoolError, match="no such file"):
        corpus.byte_ranges(str(tmp_path / "nope.txt"), 1000)


def test_bad_byte_in_a_range_names_file_and_bytes(tmp_path):
    path = tmp_path / "bad.txt"
    data = b"some good words\n" * 30 + b"bad \xff word\n" + b"some good words\n" * 29
    path.write_bytes(data)
    ranges = corpus.byte_ranges(str(path), len(data) // 3 + 1)
    second, bad = ranges[1], data.index(b"\xff")
    assert second.start <= bad < second.end and data[second.start - 1] != ord("\n")  # cut inside a line
    first = data.index(b"\n", second.start) + 1
    line = data.count(b"\n", first, bad) + 1  # counted from the range's first line
    with pytest.raises(LmtoolError) as caught:
        lines_of(ranges)
    assert str(caught.value) == (
        f"{path} (bytes {second.start}-{second.end}): not UTF-8 text: invalid byte 0xff on line {line} "
        f"(offset {bad:,}); convert it with iconv -t UTF-8")


def test_overlong_line_across_ranges(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"ok\n" + b"x" * 200 + b"\nok\n")
    ranges = [corpus.ByteRange(str(path), a, min(a + 30, 207)) for a in range(0, 207, 30)]
    with pytest.raises(LmtoolError, match="longer than|more than the limit"):
        lines_of(ranges, max_line=50)


def test_markers_in_training_text_are_said_once(tmp_path):
    """lmplz refuses <s> and </s> in its text; lmtool drops them, and says so once, naming the line."""
    import warnings

    from lmtool.ngram.build import build_ngram_model

    path = tmp_path / "m.txt"
    path.write_text("a b\nc <s>d e\na </s>\n<s> b c </s>\n")
    for options in ({}, {"memory": 1 << 20, "tmp": str(tmp_path)}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = build_ngram_model([str(path)], order=2, **options)
        said = [str(w.message) for w in caught if "is added" in str(w.message) or "are added" in str(w.message)]
        assert said == [f"{path}: line 3 has </s> in its text; <s> and </s> are added around every line, so "
                        "those written in the text are dropped, here and further on (lmplz refuses such text)"]
        assert "<s>d" in model.vocab and model.vocab.index["</s>"] == EOS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_ngram_model([str(path)], order=2, level="char")
    assert not [w for w in caught if "are added" in str(w.message)]


def test_first_marker_sees_words_only():
    chunk = corpus.Chunk("f", b"a<s> b\n</s>x\n\tb <s>\n", 7, 3)
    assert corpus.first_marker(chunk) == (9, "<s>")
    assert corpus.first_marker(corpus.Chunk("f", b"plain text\n", 1, 1)) is None
