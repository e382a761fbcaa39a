"""The ``count`` pipeline: corpus -> vocabulary -> n-gram counts -> smoothing -> NgramModel."""

import os

from .. import __version__
from ..corpus import LEVELS
from ..dataset import read_corpus
from ..errors import LmtoolError
from ..progress import silent
from ..vocab import check_limits
from .counts import CHUNK_TOKENS, count_ngrams
from .model import NgramModel
from .smoothing import DEFAULT_METHOD, METHODS, estimate

MAX_ORDER = 16


def check_order(order):
    """Refuse orders outside 1..MAX_ORDER with a message that says what is allowed."""
    if not 1 <= order <= MAX_ORDER:
        raise LmtoolError(f"--order must be between 1 and {MAX_ORDER}, got {order}")


def counting_plan(memory=None, tmp=None, threads=1, dask=None, output=None):
    """Check ``count``'s --memory, --tmp, --threads and --dask together and fill in defaults.

    Returns the ``build_ngram_model`` keywords. --dask leaves the work to the cluster's workers,
    so it refuses --memory and --threads; --tmp (default $TMPDIR, else the output's folder)
    matters only with --memory.
    """
    from ..memory import parse_memory
    from ..threads import check_threads

    check_threads(threads)
    if dask is not None:
        if memory is not None or threads != 1:
            raise LmtoolError("--dask counts on the cluster's workers, one shard per worker thread; drop "
                              "--memory and --threads and size the cluster instead")
        return {"dask": dask}
    if memory is None:
        return {"threads": threads}
    tmp = tmp or os.environ.get("TMPDIR") or os.path.dirname(os.path.abspath(output or "."))
    if not os.path.isdir(tmp):
        raise LmtoolError("--tmp: no such folder; create it or choose another", tmp)
    return {"memory": parse_memory(memory), "tmp": tmp, "threads": threads}


def describe_counting(stats, plan):
    """One line on how counting went (chunks and spilled runs, or shards), or None."""
    from ..memory import format_size

    if "runs" in stats:
        spilled = (f", spilled {stats['runs']} runs ({format_size(stats['spilled_bytes'])}) to {plan['tmp']}"
                   if stats["runs"] else ", nothing spilled")
        return f"counted {stats['chunks']} chunks within --memory {format_size(plan['memory'])}{spilled}"
    if "shards" in stats:
        return f"counted {stats['shards']} shards on {stats['workers']} Dask workers"
    return None


def build_ngram_model(paths, order=3, smoothing=DEFAULT_METHOD, level="word", min_count=1, max_vocab=None,
                      keep=None, progress=silent, threads=1, memory=None, tmp=None, dask=None, stats=None,
                      **options):
    """Count ``paths`` and smooth the counts into an ``NgramModel``.

    ``options`` go to the smoothing function (``k`` for add-k, ``discounts`` for modified
    Kneser-Ney); ``keep`` limits the vocabulary to a set of tokens. Counting runs in memory on
    ``threads`` threads, or within ``memory`` bytes spilling to the folder ``tmp``
    (``ngram.external``), or on the Dask cluster at ``dask`` (``ngram.distributed``); the model is
    the same byte for byte. A ``stats`` dict receives how the counting went (chunks, runs, shards).
    """
    check_order(order)
    if smoothing not in METHODS:
        raise LmtoolError(f"unknown smoothing {smoothing!r}; expected one of {', '.join(METHODS)}")
    if level not in LEVELS:
        raise LmtoolError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    check_limits(min_count, max_vocab)
    limits = {"level": level, "min_count": min_count, "max_vocab": max_vocab, "keep": keep}
    if dask is not None:
        from .distributed import count_distributed

        vocab, counts, training, how = count_distributed(paths, dask, order, progress=progress, **limits)
    elif memory is not None:
        from .external import count_external

        vocab, counts, training, how = count_external(paths, order, memory, tmp, threads=threads,
                                                      progress=progress, **limits)
    else:
        data = read_corpus(paths, progress=progress, **limits)
        bar = progress("counting", total=-(-data.tokens // CHUNK_TOKENS), unit="chunk")
        try:
            counts = count_ngrams(data.ids, data.lengths, order, len(data.vocab), progress=bar.update,
                                  threads=threads)
        finally:
            bar.close()
        vocab, training, how = data.vocab, data.describe(), {}
        del data
    if stats is not None:
        stats.update(how)
    result = estimate(counts, smoothing, **options)
    meta = {
        "smoothing": smoothing,
        "options": {k: v for k, v in options.items() if v is not None},
        "vocabulary": {"level": level, "min_count": min_count, "max_vocab": max_vocab,
                       "limited_to_list": keep is not None},
        "training": training,
        "estimated": _plain(result.info),
        "lmtool_version": __version__,
    }
    return NgramModel.from_estimate(vocab, counts, result, meta)


def _plain(value):
    """JSON-friendly copy of smoothing info (NumPy scalars to floats and bools)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
