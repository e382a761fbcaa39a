"""Scoring text files with any model, chunk by chunk so memory stays flat, and formatting results.

``score_chunks`` yields one ``ScoredChunk`` per chunk of input lines; ``corpus_totals`` sums them
into ``Totals`` (perplexity); ``format_scores`` renders a chunk as TSV or JSON lines.
"""

import json
import queue
from dataclasses import dataclass

import numpy as np

from . import corpus
from .evaluate import Totals, sentence_of, word_positions
from .progress import bar, silent
from .threads import ordered_map, set_blas_threads
from .vocab import UNK


@dataclass
class ScoredChunk:
    """A chunk of input lines (``chunk``), their ids and lengths, and the model's ``Scores``."""

    chunk: corpus.Chunk
    ids: np.ndarray
    lengths: np.ndarray
    scores: object

    def totals(self):
        return Totals.of(self.scores, self.ids, self.lengths)

    def oov_per_sentence(self):
        return np.bincount(sentence_of(self.lengths, np.flatnonzero(self.ids == UNK)), minlength=len(self.lengths))


CHUNK_BYTES = 1 << 20
"""Input scored at a time: ``--threads`` share chunks out, ``--dask`` shards are runs of whole chunks."""


def score_chunks(model, paths, progress=silent, chunk_bytes=None, threads=1, then=None):
    """Yield a ``ScoredChunk`` for each chunk of lines of ``paths``, in input order, or what
    ``then(scored)`` makes of it (e.g. its formatted text), computed on the scoring thread.

    With ``threads`` > 1, chunks are scored on that many threads (each with its own ``worker()``
    copy of the model), a few chunks ahead of the consumer; ``then`` runs there too, so that
    formatting is not left to one thread. A chunk is scored the same way whatever the thread count
    (BLAS is held to one thread meanwhile), so the results are identical. A stream model
    (``model.stream``) scores each file as one text, chunk after chunk on one thread, each chunk
    in the context its file's earlier chunks leave.
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    model.prepare(corpus.input_size(paths))
    workers = queue.SimpleQueue()
    for _ in range(max(threads, 1)):
        workers.put(model.worker())
    blas_threads = set_blas_threads(1)  # the same sums whatever the thread count, no oversubscription

    def score(chunk):
        lm = workers.get()
        try:
            ids, lengths = lm.vocab.encode_bytes(chunk.data)
            scored = ScoredChunk(chunk, ids, lengths, lm.score_ids(ids, lengths))
        finally:
            workers.put(lm)
        return scored if then is None else then(scored)

    context = [None]

    def score_in_context(chunk):
        """``score`` for a stream model: the chunk continues its file's text (a file starts at line 1)."""
        ids, lengths = model.vocab.encode_bytes(chunk.data)
        scores, context[0] = model.score_continuing(ids, lengths, None if chunk.first_line == 1 else context[0])
        scored = ScoredChunk(chunk, ids, lengths, scores)
        return scored if then is None else then(scored)

    try:
        with bar(progress, "scoring", total=corpus.input_size(paths), unit="B") as shown:
            chunks = corpus.read_chunks(paths, chunk_bytes=chunk_bytes, progress=shown.update)
            if getattr(model, "stream", False):
                yield from map(score_in_context, chunks)
            else:
                yield from ordered_map(score, chunks, threads)
    finally:
        if blas_threads:
            set_blas_threads(blas_threads)


def corpus_totals(model, paths, progress=silent, threads=1):
    """``Totals`` of scoring every line of ``paths`` with ``model`` (on ``threads`` threads)."""
    totals = Totals()
    for chunk_totals in score_chunks(model, paths, progress=progress, threads=threads, then=ScoredChunk.totals):
        totals = totals + chunk_totals
    return totals


def format_scores(model, scored, as_json=False, per_token=False):
    """Text for a ``ScoredChunk``: a line per input line (TSV, or JSON with ``as_json``)."""
    s = scored.scores
    tokens = (scored.lengths + 1).tolist()
    oov = scored.oov_per_sentence().tolist()
    totals = s.sentence.tolist()
    if not per_token:
        if as_json:
            return "".join(json.dumps({"logprob10": round(t, 6), "tokens": n, "oov": o}) + "\n"
                           for t, n, o in zip(totals, tokens, oov))
        cells = [None] * (3 * len(totals))  # one % over the chunk: half the time of an f-string per line
        cells[0::3], cells[1::3], cells[2::3] = totals, tokens, oov
        return ("%.6f\t%d\t%d\n" * len(totals)) % tuple(cells)
    lines = scored.chunk.data.decode("utf-8").split("\n")
    level = model.vocab.level
    token_lp = s.token.tolist()
    ngram = s.ngram_length.tolist() if s.ngram_length is not None else None
    is_oov = np.zeros(len(token_lp), bool)
    is_oov[word_positions(scored.lengths, np.flatnonzero(scored.ids == UNK))] = True
    is_oov = is_oov.tolist()
    out = []
    at = 0
    for i, (t, n, o) in enumerate(zip(totals, tokens, oov)):
        words = corpus.line_tokens(lines[i], level) + ["</s>"]
        span = range(at, at + n)
        at += n
        if as_json:
            items = [{"token": w, "logprob10": round(token_lp[j], 6), "oov": is_oov[j]} for w, j in zip(words, span)]
            if ngram is not None:
                for item, j in zip(items, span):
                    item["ngram"] = ngram[j]
            out.append(json.dumps({"logprob10": round(t, 6), "tokens": n, "oov": o, "words": items}) + "\n")
        else:
            cells = [f"{w}\t{ngram[j] if ngram is not None else ''}\t{token_lp[j]:.6f}" for w, j in zip(words, span)]
            out.append(f"{t:.6f}\t{n}\t{o}\t" + "\t".join(cells) + "\n")
    return "".join(out)
