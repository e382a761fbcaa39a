"""Counting on a Dask cluster (``count --dask``): workers read shards of the input files.

A plain file larger than the shard size is cut at line boundaries into ``corpus.ByteRange``s, so
that one big file keeps every worker busy; a compressed file is one shard. The shard size
defaults to a quarter of each worker's share of the input (at least 1 MiB); the environment
variable ``LMTOOL_DASK_SHARD_BYTES`` sets it in bytes. Connecting, local clusters and the paths
workers read are ``lmtool.cluster``'s.

Pass 1: workers count the tokens of their shards; the client sums them by token and ranks the
vocabulary exactly as ``encode_corpus`` would. Pass 2: workers encode their shards with that
vocabulary and return sorted ``NgramCounts``, which the client merges (merging is exact and
order-free) and smooths. Meanwhile one task hashes the whole files in order, since the
fingerprint is a sequential BLAKE2b of every file's bytes and cannot be combined from per-shard
digests. The model file is the one the local path writes, byte for byte. Workers must see the
same paths and run the same lmtool.
"""

from .. import corpus
from ..cluster import MIN_SHARD_BYTES, connect, expand_paths, load_distributed, shard_bytes_setting
from ..encoded_corpus import check_not_empty, training_record
from ..progress import bar, silent
from ..vocab import SPECIALS, rank_vocabulary
from .counts import merge_counts
from .two_pass import count_shard, tally_tokens


def plan_shards(files, workers, shard_bytes=None):
    """Worker, before pass 1: ``files`` with each plain file larger than ``shard_bytes`` cut into ``ByteRange``s.

    It runs where the files are. By default each worker gets about four shards of at least
    ``MIN_SHARD_BYTES``, so that a shard that is slow to read holds the others up little.
    """
    if shard_bytes is None:
        total = corpus.input_size(files) or 0
        shard_bytes = max(total // (4 * max(workers, 1)), MIN_SHARD_BYTES)
    return [shard for path in files for shard in corpus.byte_ranges(path, shard_bytes)]


def shard_tokens(shard, level):
    """Worker, pass 1: ``(tokens, counts, words, sentences, marker)`` of one file or ``ByteRange``;
    ``marker`` is where ``<s>`` or ``</s>`` first appear in its text (``corpus.MarkerWatch``), or None."""
    watch = corpus.MarkerWatch(level, say=False)  # said on the client, which the user sees
    tally = tally_tokens([shard], level, markers=watch)
    tokens, counts = tally.token_counts()
    return tokens, counts, tally.words, tally.sentences, watch.found


def shard_counts(shard, vocab, order):
    """Worker, pass 2: the ``NgramCounts`` of one file or ``ByteRange`` encoded with ``vocab``."""
    return count_shard([shard], vocab, order)


def count_distributed(paths, address, order, level="word", min_count=1, max_vocab=None, keep=None, progress=silent,
                      shard_bytes=None):
    """Count ``paths`` (globs allowed) on the cluster at ``address``; returns ``(vocab, counts, training, stats)``.

    ``shard_bytes`` (default ``LMTOOL_DASK_SHARD_BYTES``, else see ``plan_shards``) is the size
    above which a plain file is split.
    """
    distributed = load_distributed()
    files = expand_paths(paths)
    if shard_bytes is None:
        shard_bytes = shard_bytes_setting()
    with connect(address) as client:
        digest = client.submit(corpus.fingerprint, files, pure=False)
        workers = len(client.scheduler_info().get("workers", {}))
        shards = client.submit(plan_shards, files, workers, shard_bytes, pure=False).result()
        with bar(progress, "counting tokens", total=len(shards), unit="shard") as shown:
            futures = client.map(shard_tokens, shards, level=level, pure=False)
            for _ in distributed.as_completed(futures):
                shown.update(1)
            tallies = client.gather(futures)
        totals, words, sentences = {}, 0, 0
        marker = next((t[4] for t in tallies if t[4] is not None), None)
        if marker is not None:
            corpus.warn_marker(*marker)
        for tokens, counts, shard_words, shard_sentences, _ in tallies:
            for token, n in zip(tokens, counts.tolist()):
                totals[token] = totals.get(token, 0) + n
            words += shard_words
            sentences += shard_sentences
        del tallies
        check_not_empty(words, files)
        vocab, _ = rank_vocabulary(list(SPECIALS) + list(totals), [0] * len(SPECIALS) + list(totals.values()),
                                   level, min_count, max_vocab, keep)
        del totals
        shared = client.scatter(vocab, broadcast=True)
        with bar(progress, "counting n-grams", total=len(shards), unit="shard") as shown:
            futures = client.map(shard_counts, shards, vocab=shared, order=order, pure=False)
            for _ in distributed.as_completed(futures):
                shown.update(1)
            parts = client.gather(futures)
        counts = merge_counts(parts) if len(parts) > 1 else parts[0]
        training = training_record(files, digest.result(), words, sentences)
        stats = {"shards": len(shards), "workers": len(client.scheduler_info().get("workers", {}))}
    return vocab, counts, training, stats
