"""N-best lists: reading SRILM's and a tab-separated format, re-scoring them with any model, writing them back.

Formats, recognised by each file's first line (SRILM's ``nbest-format(5)``):

- ``nbest1``: a ``NBestList1.0`` header, then ``(score) w1 w2 ...`` lines, the score a composite
  on SRILM's bytelog scale (log base 1.0001, divided by 1024); another header starts another list;
- ``srilm``: ``ascore lscore nwords w1 w2 ...`` lines (log10 scores: acoustic, language model,
  and the number of words), one list per file;
- ``tsv``: ``id<TAB>score<TAB>hypothesis`` lines, the hypotheses of one list together (an id that
  comes back later starts a new list).

A hypothesis' new score is ``score + lm_weight * log10 P_lm(hypothesis) + word_penalty * words``,
where ``score`` is the list's (nbest1: the composite, turned into log10; srilm: the acoustic
score; tsv: the score column). Lists stream through: memory holds one batch of hypotheses.
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np

from . import corpus
from .errors import LmtoolError

BYTELOG = 1024 * math.log10(1.0001)
"""log10 of one bytelog unit: SRILM's NBestList1.0 scores are log10 p / BYTELOG, rounded."""
HEADER = "NBestList1.0"
BATCH_HYPOTHESES = 4096

_NBEST1_LINE = re.compile(r"\(\s*([^()\s]+)\s*\)\s*(.*)$")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf"
_SRILM_LINE = re.compile(rf"({_NUMBER})\s+({_NUMBER})\s+(\d+)(?:\s+(.*))?$")
_TSV_LINE = re.compile(rf"([^\t]+)\t\s*({_NUMBER})\s*(?:\t(.*))?$")


@dataclass
class NBestList:
    """One list: its ``id``, ``format``, the hypotheses' base scores (log10) and texts; ``fields``
    keeps what the output repeats verbatim (srilm: the acoustic score as written)."""

    id: str
    format: str
    scores: list = field(default_factory=list)
    hypotheses: list = field(default_factory=list)
    fields: list = field(default_factory=list)


def _bad_line(name, number, line, expected):
    shown = line if len(line) <= 60 else line[:57] + "..."
    return LmtoolError(f"line {number}: expected {expected}, found {shown!r}", name)


def detect_format(line):
    """The format a file's first non-empty line announces, or None."""
    if line.strip() == HEADER:
        return "nbest1"
    if _TSV_LINE.match(line):
        return "tsv"
    if _SRILM_LINE.match(line.strip()):
        return "srilm"
    return None


def _lines(path):
    """(line number, text) of each line of ``path``, through ``corpus``'s checked reader."""
    for chunk in corpus.read_chunks([path]):
        text = chunk.data.decode("utf-8")
        if text.endswith("\n"):
            text = text[:-1]
        for k, line in enumerate(text.split("\n")):
            yield chunk.first_line + k, line


def read_lists(paths):
    """Yield each ``NBestList`` of the files ``paths`` ('-': stdin) in order."""
    for path in paths:
        yield from _read_file(path)


def _read_file(path):
    name = corpus.display_name(path)
    fmt, current, count = None, None, 0
    for number, line in _lines(path):
        if not line.strip():
            continue
        if fmt is None:
            fmt = detect_format(line)
            if fmt is None:
                if line.strip().startswith("NBestList"):
                    raise LmtoolError(f"line {number}: {line.strip()} lists are not supported (only {HEADER}; "
                                      "SRILM's nbest2-to-nbest1 converts them)", name)
                raise _bad_line(name, number, line, f"an n-best list: a '{HEADER}' header, 'ascore lscore nwords "
                                                    "words...' or 'id<TAB>score<TAB>hypothesis'")
            if fmt == "srilm":
                current = NBestList(_list_id(path, 1, None), fmt)
        if fmt == "nbest1":
            if line.strip() == HEADER:
                if current is not None:
                    count += 1
                    current.id = _list_id(path, count, True)
                    yield current
                current = NBestList(None, fmt)
                continue
            match = _NBEST1_LINE.match(line.strip())
            score = _number(match.group(1)) if match else None
            if score is None:
                raise _bad_line(name, number, line, f"'(score) w1 w2 ...' in an {HEADER} list")
            current.scores.append(score * BYTELOG)
            current.hypotheses.append(match.group(2).strip())
            current.fields.append(None)
        elif fmt == "srilm":
            match = _SRILM_LINE.match(line.strip())
            if not match:
                raise _bad_line(name, number, line, "'ascore lscore nwords w1 w2 ...' (SRILM's n-best format)")
            current.scores.append(float(match.group(1)))
            current.hypotheses.append((match.group(4) or "").strip())
            current.fields.append(match.group(1))
        else:
            match = _TSV_LINE.match(line)
            if not match:
                raise _bad_line(name, number, line, "'id<TAB>score<TAB>hypothesis'")
            key = match.group(1)
            if current is None or current.id != key:
                if current is not None:
                    yield current
                current = NBestList(key, fmt)
            current.scores.append(float(match.group(2)))
            current.hypotheses.append((match.group(3) or "").strip())
            current.fields.append(None)
    if fmt is None:
        raise LmtoolError("no n-best list in it (only empty lines)", name)
    if current is not None:
        if fmt == "nbest1":
            current.id = _list_id(path, count + 1, count > 0)
        yield current


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if not math.isnan(value) else None


def _list_id(path, number, several):
    """A SRILM list's id: its file name (``FILE:N`` when the file holds several), its number on stdin."""
    if str(path) == "-":
        return str(number)
    return f"{path}:{number}" if several else str(path)


@dataclass
class ScoredList:
    """An ``NBestList`` with each hypothesis' ``lm`` (float64 log10 P) and ``words`` (int64)."""

    nbest: NBestList
    lm: np.ndarray
    words: np.ndarray

    def totals(self, lm_weight, word_penalty):
        """float64[k]: score + lm_weight * lm + word_penalty * words."""
        return np.asarray(self.nbest.scores, np.float64) + lm_weight * self.lm + word_penalty * self.words

    def best(self, lm_weight, word_penalty):
        """Index of the hypothesis with the highest new score (the first of equals), or None if empty."""
        if not self.nbest.hypotheses:
            return None
        return int(np.argmax(self.totals(lm_weight, word_penalty)))


def scored_lists(model, lists, batch=BATCH_HYPOTHESES):
    """Yield a ``ScoredList`` for each of ``lists``, in order: their hypotheses scored by ``model``
    ``batch`` at a time (one ``score_ids`` call per batch)."""
    pending, size = [], 0
    for nbest in lists:
        pending.append(nbest)
        size += len(nbest.hypotheses)
        if size >= batch:
            yield from _score_batch(model, pending)
            pending, size = [], 0
    if pending:
        yield from _score_batch(model, pending)


def _score_batch(model, lists):
    texts = [h for nbest in lists for h in nbest.hypotheses]
    if texts:
        data = ("\n".join(texts) + "\n").encode("utf-8")
        ids, lengths = model.vocab.encode_bytes(data)
        lm = model.score_ids(ids, lengths).sentence.astype(np.float64)
        if model.vocab.level == "word":
            words = lengths.astype(np.int64)
        else:
            words = np.array([len(corpus.line_tokens(t)) for t in texts], np.int64)
    else:
        lm, words = np.zeros(0), np.zeros(0, np.int64)
    at = 0
    for nbest in lists:
        k = len(nbest.hypotheses)
        yield ScoredList(nbest, lm[at:at + k], words[at:at + k])
        at += k


def format_list(scored, lm_weight, word_penalty, sort=False):
    """The list in its own format, each hypothesis' score filled in: nbest1 the new composite (in
    bytelogs), srilm the language model score and word count, tsv the new score. ``sort``: best first."""
    nbest = scored.nbest
    totals = scored.totals(lm_weight, word_penalty)
    order = np.argsort(-totals, kind="stable") if sort else range(len(totals))
    lines = [HEADER] if nbest.format == "nbest1" else []
    for k in order:
        hyp = nbest.hypotheses[k]
        if nbest.format == "nbest1":
            lines.append(f"({int(round(totals[k] / BYTELOG))}) {hyp}".rstrip())
        elif nbest.format == "srilm":
            lines.append(f"{nbest.fields[k]} {scored.lm[k]:.6f} {scored.words[k]} {hyp}".rstrip())
        else:
            lines.append(f"{nbest.id}\t{totals[k]:.6f}\t{hyp}")
    return "".join(line + "\n" for line in lines)


def format_best(scored, lm_weight, word_penalty):
    """``id<TAB>best hypothesis`` (an empty list: the id and an empty hypothesis)."""
    k = scored.best(lm_weight, word_penalty)
    return f"{scored.nbest.id}\t{'' if k is None else scored.nbest.hypotheses[k]}\n"
