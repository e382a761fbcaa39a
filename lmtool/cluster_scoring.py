"""Scoring on a Dask cluster (``score --dask``, ``perplexity --dask``): workers score shards of the
input, and the client writes their results in input order, as one process would.

One process reads each file in chunks (``scoring.CHUNK_BYTES``) and scores chunk by chunk; a
chunk's scores depend on nothing else (a recurrent model's path and batching are chosen per chunk).
So a plain file is cut exactly where that process would cut its chunks (``corpus.chunk_cuts``),
consecutive chunks are grouped into shards of about the shard size (``LMTOOL_DASK_SHARD_BYTES``, by
default a quarter of each worker's share of the input, at least 1 MiB), and a worker reading a
shard reads the same chunks, byte for byte. A compressed file is one shard. ``score`` gets each
shard's formatted lines and writes them in order; ``perplexity`` gets each chunk's ``Totals`` and
adds them in order, the same float sums as one process. The model file and the inputs must be
visible to the workers at the paths given, which run the same lmtool (``lmtool.cluster``).
"""

import collections
import os

from . import corpus
from .cluster import MIN_SHARD_BYTES, connect, expand_paths, load_distributed, shard_bytes_setting
from .evaluate import Totals
from .progress import bar, silent

_MODELS = {}
"""Models opened by this worker process, by (path, size, modification time): tasks reuse them."""


def plan_score_shards(files, workers, chunk_bytes, shard_bytes=None):
    """Worker (where the files are), before scoring: ``files`` cut into shards of whole chunks.

    Returns a list of paths and ``corpus.ByteRange``s, in input order. A plain file of more than
    one chunk is cut at ``corpus.chunk_cuts`` into ranges of about ``shard_bytes``.
    """
    if shard_bytes is None:
        total = corpus.input_size(files) or 0
        shard_bytes = max(total // (4 * max(workers, 1)), MIN_SHARD_BYTES)
    shards = []
    for path in files:
        if corpus.byte_ranges(path, chunk_bytes) == [path]:  # compressed, or a single chunk
            shards.append(path)
            continue
        edges = [0]
        for cut in corpus.chunk_cuts(path, chunk_bytes):
            if cut - edges[-1] >= shard_bytes or cut == os.path.getsize(path):
                edges.append(cut)
        shards.extend(corpus.ByteRange(path, a, b) for a, b in zip(edges[:-1], edges[1:]))
    return shards


def _model(path):
    """The model at ``path``, opened once per worker process (again if the file changes)."""
    import lmtool

    try:
        st = os.stat(path)
    except OSError:
        return lmtool.load(path)  # which says what is wrong with it
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = lmtool.load(path)
    return _MODELS[key]


def score_shard(model_path, shard, chunk_bytes, as_json=False, per_token=False):
    """Worker: ``score``'s text for one shard, its chunks scored as one process scores them."""
    from .scoring import format_scores, score_chunks

    lm = _model(model_path)
    return "".join(score_chunks(lm, [shard], chunk_bytes=chunk_bytes,
                                then=lambda scored: format_scores(lm, scored, as_json, per_token)))


def shard_totals(model_path, shard, chunk_bytes):
    """Worker: the ``Totals`` of each chunk of one shard, in order (the client adds them in order)."""
    from .scoring import ScoredChunk, score_chunks

    return list(score_chunks(_model(model_path), [shard], chunk_bytes=chunk_bytes, then=ScoredChunk.totals))


def scored_shards(task, model_path, paths, address, chunk_bytes, progress=silent, shard_bytes=None, **options):
    """Yield ``task(model_path, shard, chunk_bytes, **options)`` of each shard of ``paths``, in input
    order, computed on the cluster at ``address``; at most a few shards per worker wait to be taken."""
    load_distributed()  # before any work: a missing dask.distributed is one line
    files = expand_paths(paths)
    if shard_bytes is None:
        shard_bytes = shard_bytes_setting()
    with connect(address) as client:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        shards = client.submit(plan_score_shards, files, workers, chunk_bytes, shard_bytes, pure=False).result()
        pending = collections.deque()
        with bar(progress, "scoring", total=len(shards), unit="shard") as shown:
            for shard in shards:
                pending.append(client.submit(task, model_path, shard, chunk_bytes, pure=False, **options))
                if len(pending) >= 3 * workers:
                    yield pending.popleft().result()
                    shown.update(1)
            while pending:
                yield pending.popleft().result()
                shown.update(1)


def score_text_distributed(model_path, paths, address, chunk_bytes, as_json=False, per_token=False,
                           progress=silent):
    """``score``'s output for ``paths``, shard by shard in input order, scored on the cluster."""
    yield from scored_shards(score_shard, model_path, paths, address, chunk_bytes, progress=progress,
                             as_json=as_json, per_token=per_token)


def corpus_totals_distributed(model_path, paths, address, chunk_bytes, progress=silent):
    """``scoring.corpus_totals`` on the cluster: the chunks' ``Totals`` added in input order."""
    totals = Totals()
    for chunk_totals in scored_shards(shard_totals, model_path, paths, address, chunk_bytes, progress=progress):
        for part in chunk_totals:
            totals = totals + part
    return totals
