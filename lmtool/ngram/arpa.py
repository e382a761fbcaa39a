"""ARPA back-off files: write ours, read KenLM's and SRILM's.

Reading checks the structure line by line and names the line that breaks it. N-grams an ARPA file
lacks but its longer n-grams imply (prefixes and suffixes, which pruned SRILM models may drop) are
added as "blank" entries whose probability is what backing off gives and whose backoff is 1,
as KenLM does, so the model scores exactly as the file says.
"""

import gzip
import os
import re
import warnings
from contextlib import contextmanager

import numpy as np

from ..corpus import read_chunks
from ..errors import LmtoolError, LmtoolWarning
from ..outputs import atomic_output
from ..vocab import SPECIALS, UNK, Vocabulary, token_pool, token_table
from .assemble import LOG10_ZERO
from .model import NgramModel

_NGRAM_COUNT = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)$")
_WHITESPACE = re.compile(r"\s")
_LEADING = re.compile(rb"(?:\s*#[^\n]*(?:\n|$))*\s*")
UNNORMALIZED = b"# lmtool: unnormalized scores (stupid backoff), not probabilities"
"""The first line of the ARPA file of a model whose scores are not probabilities: ARPA has no field
for it, and a model read back from it must not pass for one (perplexity refuses such models)."""


ROWS_PER_BATCH = 1 << 18
MISSING_UNK = -100.0
"""log10 p(<unk>) of a file without a <unk> unigram: KenLM's (``Config::unknown_missing_logprob``), so
unknown words score as KenLM's ``query`` scores them; also the lowest value read from a file."""


def write_arpa(model, path):
    """Write ``model`` (an ``NgramModel``) as an ARPA file, atomically."""
    from ..kernels.arpa_text import format_lines

    tokens = model.vocab.tokens
    if any(_WHITESPACE.search(t) for t in tokens):
        raise LmtoolError("this vocabulary has tokens containing whitespace (a character-level model?), "
                          "which the ARPA format cannot represent", path)
    pool, offsets = token_pool(tokens)
    token_bytes = np.diff(offsets)
    with atomic_output(path, "wb") as file, _compressed_if_named(file, path) as out:
        if not model.normalized:  # a comment KenLM skips too; read_arpa takes the model back as it was
            out.write(UNNORMALIZED + b"\n")
        out.write(b"\\data\\\n")
        for n, size in enumerate(model.sizes, 1):
            out.write(f"ngram {n}={size}\n".encode())
        for n in range(1, model.order + 1):
            out.write(f"\n\\{n}-grams:\n".encode())
            rows = model.ngrams(n)
            prob = model.prob[model.level(n)]
            backoff = model.backoff[model.level(n)] if n < model.order else prob
            for lo in range(0, len(rows), ROWS_PER_BATCH):
                batch = np.ascontiguousarray(rows[lo:lo + ROWS_PER_BATCH])
                room = int(token_bytes[batch].sum()) + len(batch) * (n + 40)
                buffer = np.empty(room, np.uint8)
                used = format_lines(batch, prob[lo:lo + ROWS_PER_BATCH], backoff[lo:lo + ROWS_PER_BATCH],
                                    n < model.order, pool, offsets, buffer)
                out.write(memoryview(buffer[:used]))
        out.write(b"\n\\end\\\n")


def is_arpa_name(path):
    """Whether ``path`` names an ARPA file: ``.arpa``, or ``.arpa.gz`` (written gzipped), any case."""
    return os.fspath(path).lower().endswith((".arpa", ".arpa.gz"))


@contextmanager
def _compressed_if_named(file, path):
    """``file`` itself, or a gzip stream into it (no timestamp: the same model, the same bytes) for ``.gz``."""
    if not os.fspath(path).lower().endswith(".gz"):
        yield file
        return
    with gzip.GzipFile(fileobj=file, mode="wb", mtime=0, filename="") as out:
        yield out


def read_arpa(path, progress=None):
    """Read an ARPA file into an ``NgramModel``; raises ``LmtoolError`` naming the line at fault."""
    data = b"".join(chunk.data for chunk in read_chunks([path]))

    def fail(pos, message):
        line = data.count(b"\n", 0, pos) + 1
        raise LmtoolError(f"broken ARPA file, line {line}: {message}", path)

    start = _LEADING.match(data).end()  # blank lines and '#' comments may come first (KenLM's rule)
    unnormalized = UNNORMALIZED in data[:start]
    if not data.startswith(b"\\data\\", start):
        fail(start, "expected '\\data\\' at the start of an ARPA file")
    body_at = data.find(b"\n\\1-grams:", start)
    if body_at < 0:
        fail(len(data), "no '\\1-grams:' section")
    counts = []
    pos = start + len(b"\\data\\")
    for raw in data[pos:body_at].split(b"\n"):
        line = raw.decode().strip()
        if line:
            match = _NGRAM_COUNT.match(line)
            if not match or int(match.group(1)) != len(counts) + 1:
                fail(pos, f"expected 'ngram {len(counts) + 1}=COUNT', found '{line}'")
            counts.append(int(match.group(2)))
        pos += len(raw) + 1
    if not counts:
        fail(body_at, "the \\data\\ header lists no n-gram counts")
    if counts[0] == 0:  # a pruned model may have lost a whole higher order, but not its words
        fail(pos, "the \\data\\ header lists no 1-grams (ngram 1=0): an empty model")
    order = len(counts)
    sections = []
    at = body_at + 1
    for n in range(1, order + 1):
        head = f"\\{n}-grams:".encode()
        if not data.startswith(head, at):
            fail(at, f"expected '{head.decode()}'")
        at += len(head)
        end_mark = f"\n\\{n + 1}-grams:" if n < order else "\n\\end\\"
        end = data.find(end_mark.encode(), at)
        if end < 0:
            fail(len(data), f"missing '{end_mark.strip()}'")
        if n == 1:
            sections.append(_parse_unigrams(data, at, end, counts[0], order > 1, fail))
            table = token_table(sections[0][0], "word")
        else:
            sections.append(_parse_section(data, at, end, n, counts[n - 1], n < order, table, fail))
        at = end + 1
        if progress:
            progress(1)
    if data[at + len(b"\\end\\"):].strip():
        fail(at + len(b"\\end\\"), "text after '\\end\\'")
    return _model_from_sections(sections, path, normalized=not unnormalized)


def _parse_unigrams(data, start, end, expected, with_backoff, fail):
    """(tokens: list[str], prob: float64[M], backoff: float64[M]) of the unigram section."""
    lines = data[start:end].decode("utf-8").split("\n")
    tokens, probs, backs = [], [], []
    offset = start
    for line in lines:
        fields = line.split()
        if fields:
            if len(fields) not in ((2, 3) if with_backoff else (2,)):
                backoff = " and an optional backoff" if with_backoff else ""
                fail(offset, f"expected a log10 probability, a word{backoff}, found '{line.strip()}'")
            try:
                probs.append(float(fields[0]))
                backs.append(float(fields[2]) if len(fields) == 3 else 0.0)
            except ValueError:
                fail(offset, f"a unigram probability or backoff is not a number: '{line.strip()}'")
            tokens.append(fields[1])
        offset += len(line.encode("utf-8")) + 1
    if len(tokens) != expected:
        fail(start, f"the header announces {expected:,} 1-grams, the section has {len(tokens):,}")
    if len(set(tokens)) != len(tokens):
        seen = set()
        twice = next(k for k, t in enumerate(tokens) if t in seen or seen.add(t))
        fail(_line_of_entry(data, start, end, twice), f"the unigram '{tokens[twice]}' is listed twice")
    prob, backoff = _checked(np.array(probs), np.array(backs), 1, data, start, end, fail)
    return tokens, prob, backoff


def _parse_section(data, start, end, n, expected, with_backoff, table, fail):
    """(rows: int32[M, n] indices into the unigram section, prob: float64[M], backoff: float64[M])."""
    from ..kernels.arpa_text import parse_lines

    body = np.frombuffer(data, np.uint8, end - start, start)
    prob = np.empty(expected, np.float64)
    backoff = np.empty(expected, np.float64)
    rows = np.empty((expected, n), np.int32)
    got, bad, why = parse_lines(body, n, with_backoff, table.slots, table.pool, table.offsets, table.hashes,
                                prob, backoff, rows)
    if why == 3:
        found = sum(1 for line in bytes(body).split(b"\n") if line.strip())
        fail(start, f"the header announces {expected:,} {n}-grams, the section has {found:,}")
    if bad >= 0:
        lines = bytes(body).split(b"\n")
        pos = start + sum(len(x) + 1 for x in lines[:bad])
        text = " ".join(lines[bad].decode("utf-8", "replace").split())
        if why == 2:
            fail(pos, f"a word of the {n}-gram '{text}' is not a unigram")
        if why == 4:
            fail(pos, f"a {n}-gram probability or backoff is not a number: '{text}'")
        fail(pos, f"expected a log10 probability, {n} words{' and an optional backoff' if with_backoff else ''}, "
                  f"found '{text}'")
    if got != expected:
        fail(start, f"the header announces {expected:,} {n}-grams, the section has {got:,}")
    prob, backoff = _checked(prob, backoff, n, data, start, end, fail)
    return rows, prob, backoff


def _checked(prob, backoff, n, data, start, end, fail):
    """prob and backoff, unless a value is not finite or a probability is above 1: then the line of
    the first such n-gram is named (the k-th entry of the section is its k-th line with text)."""
    bad = ~(np.isfinite(prob) & np.isfinite(backoff))
    if bad.any():
        fail(_line_of_entry(data, start, end, int(np.argmax(bad))), f"a {n}-gram probability or backoff is not finite")
    above = prob > 1e-6
    if above.any():
        fail(_line_of_entry(data, start, end, int(np.argmax(above))), f"a {n}-gram has a log10 probability above 0")
    return prob, backoff


def _line_of_entry(data, start, end, k):
    """Where the k-th line with text in data[start:end] begins (start itself if there are fewer)."""
    pos = start
    while pos < end:
        stop = data.find(b"\n", pos, end)
        stop = end if stop < 0 else stop
        if data[pos:stop].strip():
            if k == 0:
                return pos
            k -= 1
        pos = stop + 1
    return start


def _model_from_sections(sections, path, normalized=True):
    """Turn parsed sections into a closed trie (adding blank n-grams) and an ``NgramModel``."""
    unigrams, uni_prob, uni_backoff = sections[0]
    tokens = list(SPECIALS) + [w for w in unigrams if w not in SPECIALS]
    vocab = Vocabulary(tokens)
    index = vocab.index
    V = len(tokens)
    order = len(sections)

    rows = [np.arange(V, dtype=np.int32)[:, None]]
    probs = [np.full(V, np.nan)]
    backs = [np.zeros(V)]
    ids = np.fromiter(map(index.__getitem__, unigrams), np.int64, len(unigrams))
    probs[0][ids] = uni_prob
    backs[0][ids] = uni_backoff
    missing = np.isnan(probs[0])
    probs[0][missing] = LOG10_ZERO
    if missing[UNK]:
        probs[0][UNK] = MISSING_UNK
        warnings.warn(f"{path}: no <unk> unigram; unknown words get log10 probability {MISSING_UNK:g}, as in KenLM",
                      LmtoolWarning, stacklevel=2)

    for n in range(2, order + 1):
        file_rows, prob, backoff = sections[n - 1]
        rows.append(ids[file_rows].astype(np.int32))
        probs.append(prob)
        backs.append(backoff)

    # Files from KenLM hold every prefix and suffix; add the missing ones only when needed.
    links = _trie_order(rows, probs, backs, V, path)
    blanks = 0
    if links is None:
        blanks = _close(rows, probs, backs)
        links = _trie_order(rows, probs, backs, V, path)
    parent_of, suffix_of = links

    # Blank n-grams: p(w | h) = b(h) p(w | h'), in log10; their own backoff stays 0 (weight 1).
    for n in range(2, order + 1):
        blank = np.isnan(probs[n - 1])
        if blank.any():
            probs[n - 1][blank] = (backs[n - 2][parent_of[n - 1][blank]]
                                   + probs[n - 2][suffix_of[n - 1][blank]])

    sizes = [len(r) for r in rows]
    word_dtype = np.uint16 if V <= 1 << 16 else np.uint32
    word = np.concatenate([r[:, -1] for r in rows]).astype(word_dtype)
    prob = np.maximum(np.concatenate(probs), MISSING_UNK).astype(np.float32)
    backoff = (np.concatenate(backs[:-1]) if order > 1 else np.zeros(0)).astype(np.float32)
    children = (np.concatenate([np.bincount(parent_of[n - 1], minlength=sizes[n - 2]) for n in range(2, order + 1)])
                if order > 1 else np.zeros(0, np.int64))
    meta = {"order": order, "sizes": sizes, "smoothing": "arpa" if normalized else "stupid-backoff",
            "normalized": normalized,
            "source": str(path), "missing_specials": [t for t, m in zip(SPECIALS, missing[:3]) if m],
            "blank_ngrams": blanks}
    return NgramModel(vocab, sizes, word, prob, backoff, children.astype(np.int64), meta)


def _close(rows, probs, backs):
    """Add, from the top order down, the prefixes and suffixes that longer n-grams imply, with
    probability NaN (filled in later) and backoff 0. Returns how many were added."""
    added = 0
    for n in range(len(rows), 1, -1):
        implied = np.concatenate([rows[n - 1][:, :-1], rows[n - 1][:, 1:]])
        new = _missing_rows(implied, rows[n - 2])
        if len(new):
            rows[n - 2] = np.concatenate([rows[n - 2], new])
            probs[n - 2] = np.concatenate([probs[n - 2], np.full(len(new), np.nan)])
            backs[n - 2] = np.concatenate([backs[n - 2], np.zeros(len(new))])
            added += len(new)
    return added


def _trie_order(rows, probs, backs, V, path):
    """Sort each order (in place) by (parent, word); return (parent_of, suffix_of), lists indexed by
    order - 1 of each n-gram's parent and suffix node, or None if a prefix or suffix is missing."""
    keys, parent_of, suffix_of = [None], [None], [None]
    for n in range(2, len(rows) + 1):
        r = rows[n - 1]
        parent, found = _lookup(r[:, :-1], keys, V)
        if not found.all():
            return None
        key = parent * V + r[:, -1]
        perm = np.argsort(key, kind="stable")
        key = key[perm]
        if len(key) > 1 and (np.diff(key) == 0).any():
            raise LmtoolError(f"broken ARPA file: a {n}-gram is listed twice", path)
        rows[n - 1], probs[n - 1], backs[n - 1] = r[perm], probs[n - 1][perm], backs[n - 1][perm]
        parent_of.append(parent[perm])
        keys.append(key)
        suffix, found = _lookup(rows[n - 1][:, 1:], keys, V)
        if not found.all():
            return None
        suffix_of.append(suffix)
    return parent_of, suffix_of


def _as_void(rows):
    rows = np.ascontiguousarray(rows, np.int32)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def _missing_rows(candidates, have):
    """Distinct rows of ``candidates`` that are not rows of ``have`` (both int32[:, k])."""
    cand = np.unique(_as_void(candidates))
    known = np.sort(_as_void(have))
    at = np.searchsorted(known, cand)
    present = (at < len(known)) & (known[np.minimum(at, len(known) - 1)] == cand)
    absent = cand[~present]
    return np.frombuffer(absent.tobytes(), np.int32).reshape(-1, candidates.shape[1])


def _lookup(rows, keys, V):
    """Local node index in order k = rows.shape[1] of each row, and whether the row is there."""
    node = rows[:, 0].astype(np.int64)
    found = np.ones(len(rows), bool)
    for k in range(2, rows.shape[1] + 1):
        key = node * V + rows[:, k - 1]
        node = np.minimum(np.searchsorted(keys[k - 1], key), max(len(keys[k - 1]) - 1, 0))
        found &= keys[k - 1][node] == key if len(keys[k - 1]) else False
    return node, found
