"""Counting within a memory budget (``count --memory``): chunk counts are merged and spilled to
disk as runs when they pass a share of the budget, and the runs are merged on disk at the end.

Pass 1 builds the vocabulary (and the data's fingerprint); stdin and other pipes are spooled
into the scratch folder first so that they can be read twice. Pass 2 counts chunks sized so that
the chunks in flight fit the budget. The result is the same counts as in memory (merging is exact and
order-free), as a ``spilled_runs.Run`` that the smoothing reads slice by slice, so the model file is the
same byte for byte.
"""

import itertools

from .. import corpus
from ..encoded_corpus import check_not_empty, training_record
from ..memory import release_free_memory
from ..progress import bar, silent
from ..scratch import readable_twice
from . import spilled_runs
from .counts import merge_counts, merge_levels
from .two_pass import chunk_counts, nbytes, tally_tokens

MIN_CHUNK_BYTES = 1 << 10
SPILL_SHARE = 5
"""Chunk counts waiting to be merged may hold 1/5 of the budget, and the chunks being counted
another 1/5; merging the waiting counts into a run needs about twice what they hold."""


def chunk_bytes_for(memory, order, threads):
    """Bytes of text per chunk so that the chunks in flight take about 1/``SPILL_SHARE`` of ``memory``:
    counting a chunk of order N needs about 5N + 8 bytes per byte of text (ids, positions, and
    20 bytes per distinct n-gram of each order)."""
    in_flight = 2 * threads + 1
    size = memory // (SPILL_SHARE * in_flight * (5 * order + 8))
    return int(min(corpus.CHUNK_BYTES, max(MIN_CHUNK_BYTES, size)))


def count_external(paths, order, memory, scratch, level="word", min_count=1, max_vocab=None, keep=None, threads=1,
                   progress=silent):
    """Count ``paths`` in two passes spilling into the ``ScratchFolder`` ``scratch``; returns
    ``(vocab, counts, training, stats)``.

    ``counts`` is in memory when nothing had to be spilled, else a ``spilled_runs.Run`` in ``scratch``;
    ``training`` is what the model records about its data, ``stats`` says how many chunks were
    counted and runs spilled.
    """
    readable = [readable_twice(scratch, p, k) for k, p in enumerate(paths)]
    hasher = corpus.data_hasher()
    with bar(progress, "reading", total=corpus.input_size(readable), unit="B") as shown:
        tally = tally_tokens(readable, level, hasher=hasher, progress=shown.update, threads=threads)
    check_not_empty(tally.words, paths)
    vocab, _ = tally.vocabulary(min_count=min_count, max_vocab=max_vocab, keep=keep)
    training = training_record(paths, hasher.hexdigest(), tally.words, tally.sentences)
    del tally
    numbers = itertools.count()

    def new_name():
        return scratch.join(f"run{next(numbers):05d}")

    runs, counts, n_chunks = _spill_chunks(readable, vocab, order, memory, threads, new_name, progress)
    release_free_memory()
    stats = {"chunks": n_chunks, "runs": len(runs), "spilled_bytes": sum(r.nbytes for r in runs)}
    if len(runs) == 1:
        counts = runs[0]
    elif runs:
        with bar(progress, "merging runs", total=sum(sum(r.sizes()[1:]) for r in runs), unit="n-gram") as shown:
            counts = spilled_runs.merge_runs(runs, new_name(), progress=shown.update, threads=threads)
        scratch.remove_soon(*(run.folder for run in runs))
        release_free_memory()
    return vocab, counts, training, stats


def _spill_chunks(paths, vocab, order, memory, threads, new_name, progress):
    """Pass 2: count chunks; whenever the waiting chunk counts pass the share of the budget, merge
    them and write the merged run. Returns (runs, None, chunks counted), or when nothing had to
    be spilled ([], the in-memory ``NgramCounts``, chunks counted)."""
    share = memory // SPILL_SHARE
    pending, held, runs, n_chunks = [], 0, [], 0
    with bar(progress, "counting", total=corpus.input_size(paths), unit="B") as shown:
        for counts in chunk_counts(paths, vocab, order, threads=threads,
                                   chunk_bytes=chunk_bytes_for(memory, order, threads), progress=shown.update):
            n_chunks += 1
            pending.append(counts)
            held += nbytes(counts)
            if held >= share:
                runs.append(_spill(pending, new_name(), threads))
                held = 0
    if not runs:
        return [], merge_counts(pending, threads) if len(pending) > 1 else pending[0], n_chunks
    if pending:
        runs.append(_spill(pending, new_name(), threads))
    return runs, None, n_chunks


def _spill(pending, folder, threads=1):
    """Merge the waiting chunk counts into a run on disk, level by level, and empty ``pending``.

    On ``threads`` threads, by key ranges: the ranges together hold what one merge holds, and no
    chunk is read meanwhile (those already being counted finish)."""
    parts = merge_levels(pending, threads) if len(pending) > 1 else spilled_runs.levels(pending[0])
    run = spilled_runs.write_run(parts, folder, pending[0].vocab_size)
    pending.clear()
    release_free_memory()
    return run

