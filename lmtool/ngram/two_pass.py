"""Counting without holding the corpus: pass 1 counts tokens (the vocabulary), pass 2 re-reads the
text chunk by chunk, encodes it with the final vocabulary and counts each chunk's n-grams.

Vocabulary ids depend on the counts of the whole corpus, so n-grams can only be counted once
every token has been seen; ``ngram.external`` and ``ngram.distributed`` run these two passes over
files, one process or many. Both give the vocabulary, counts and fingerprint that
``encode_corpus`` + ``count_ngrams`` give.
"""

from .. import corpus
from ..vocab import ThreadTallies
from .counts import count_chunk, merge_counts


def tally_tokens(paths, level, hasher=None, progress=None, threads=1, markers=None):
    """Pass 1 over ``paths``: a ``TokenTally`` (and ``hasher`` updated with the decompressed bytes),
    the chunks encoded on ``threads`` threads (``ThreadTallies``); ``markers`` (a
    ``corpus.MarkerWatch``, one that warns by default) sees every chunk."""
    from ..threads import for_each

    tallies = ThreadTallies(level)
    chunks = map(markers or corpus.MarkerWatch(level),
                 corpus.read_chunks(paths, chunk_bytes=corpus.CHUNK_BYTES, progress=progress, hasher=hasher))
    for_each(lambda chunk: tallies.add(chunk.data), chunks, threads)
    return tallies.joined()[0]


def chunk_counts(paths, vocab, order, threads=1, chunk_bytes=corpus.CHUNK_BYTES, progress=None):
    """Pass 2: ``NgramCounts`` of each chunk of ``paths`` encoded with ``vocab``, in input order.

    Encoding and counting both release the GIL, so ``threads`` chunks are worked on at a time.
    """
    from ..threads import ordered_map

    size = len(vocab)

    def count(chunk):
        ids, lengths = vocab.encode_bytes(chunk.data)
        return count_chunk(ids, lengths, order, size)

    chunks = corpus.read_chunks(paths, chunk_bytes=chunk_bytes, progress=progress)
    return ordered_map(count, chunks, threads)


def count_shard(paths, vocab, order, batch=16):
    """Pass 2 over ``paths`` entirely in memory: their ``NgramCounts``, merged every ``batch`` chunks."""
    pending = []
    for counts in chunk_counts(paths, vocab, order):
        pending.append(counts)
        if len(pending) > batch:
            pending = [merge_counts(pending)]
    return merge_counts(pending) if len(pending) > 1 else pending[0]


def nbytes(counts):
    """Bytes held by the arrays of an ``NgramCounts``."""
    return sum(a.nbytes for field in (counts.parent, counts.word, counts.count, counts.suffix) for a in field)
