"""Corpus reading: compressed files, separators, markers, character level, and refusals."""

import bz2
import gzip
import io
import lzma
import sys

import numpy as np
import pytest

from lmtool import corpus
from lmtool.dataset import read_corpus
from lmtool.errors import LmtoolError
from lmtool.vocab import BOS, EOS, UNK

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
    data = read_corpus([str(path)])
    words = [data.vocab.tokens[i] for i in data.ids]
    # only space, tab, CR and LF separate tokens; <s> and </s> in the text are dropped
    assert words == ["a\u00a0b", "c\x0cd", "e", "x"]
    assert data.lengths.tolist() == [3, 1]
    assert corpus.line_tokens("a\u00a0b c\x0cd  e") == ["a\u00a0b", "c\x0cd", "e"]


def test_word_level_ids_and_vocab_order(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT, encoding="utf-8")
    data = read_corpus([str(path)], max_vocab=5)
    assert data.vocab.tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert data.vocab.tokens[3:] == ["the", "sat"]  # most frequent first
    assert data.lengths.tolist() == [3, 0, 4, 3]
    assert (data.ids == UNK).sum() == 10 - 5
    again = read_corpus([str(path)], vocab=data.vocab)
    np.testing.assert_array_equal(again.ids, data.ids)


def test_char_level(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("ab a\r\nb\n", encoding="utf-8")
    data = read_corpus([str(path)], level="char")
    assert [data.vocab.tokens[i] for i in data.ids] == list("ab a") + ["b"]
    assert data.lengths.tolist() == [4, 1]
    assert BOS not in data.ids and EOS not in data.ids


def test_min_count_and_keep(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert read_corpus([str(path)], min_count=2).vocab.tokens[3:] == ["the", "sat"]
    assert read_corpus([str(path)], keep={"dog", "zebra"}).vocab.tokens[3:] == ["dog"]


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
        read_corpus([str(path)])
