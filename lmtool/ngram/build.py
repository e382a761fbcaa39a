"""The ``count`` pipeline: corpus -> vocabulary -> n-gram counts -> smoothing -> NgramModel."""

import os
import tempfile
import warnings
from contextlib import contextmanager

from .. import __version__, modelfile
from ..corpus import LEVELS
from ..dataset import read_corpus
from ..errors import LmtoolError, LmtoolWarning
from ..progress import silent
from ..vocab import check_limits
from .counts import chunk_tokens_for, count_ngrams
from .assemble import model_arrays
from .model import NgramModel, write_model_file
from .runs import Run
from .smoothing import DEFAULT_METHOD, METHODS, Estimation

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
        if tmp is not None:
            raise LmtoolError("--tmp holds the temporary files of --memory; give --memory too, or drop --tmp")
        return {"threads": threads}
    from ..scratch import check_parent

    tmp = tmp or os.environ.get("TMPDIR") or os.path.dirname(os.path.abspath(output or "."))
    check_parent(tmp)
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
    """Count ``paths`` and smooth the counts into an ``NgramModel`` held in memory.

    ``options`` go to the smoothing class (``k`` for add-k, ``discounts`` for modified
    Kneser-Ney), and ``prune`` (lmplz's ``--prune`` thresholds, see ``ngram.count_pruning``)
    drops the n-grams seen too rarely; ``keep`` limits the vocabulary to a set of tokens. Counting runs in memory on
    ``threads`` threads, or within ``memory`` bytes spilling to the folder ``tmp``
    (``ngram.external``), or on the Dask cluster at ``dask`` (``ngram.distributed``); the model is
    the same byte for byte. A ``stats`` dict receives how the counting went (chunks, runs, shards).
    """
    return _build(paths, None, order, smoothing, level, min_count, max_vocab, keep, progress, threads, memory, tmp,
                  dask, stats, options)


def write_ngram_model(paths, output, order=3, smoothing=DEFAULT_METHOD, level="word", min_count=1, max_vocab=None,
                      keep=None, progress=silent, threads=1, memory=None, tmp=None, dask=None, stats=None,
                      **options):
    """Build as ``build_ngram_model`` does and write the model file ``output``; returns the model.

    Within ``memory`` the counts, the smoothing and the model's arrays all go through files in
    the scratch folder, so the model is never held whole, and the model returned is opened from
    ``output`` (memory-mapped).
    """
    model = _build(paths, output, order, smoothing, level, min_count, max_vocab, keep, progress, threads, memory,
                   tmp, dask, stats, options)
    if model is None:
        return NgramModel.from_file(modelfile.read(output, verify=False))
    model.save(output)
    return model


def _build(paths, output, order, smoothing, level, min_count, max_vocab, keep, progress, threads, memory, tmp, dask,
           stats, options):
    """The model in memory, or None once it is written to ``output`` through the scratch folder."""
    check_order(order)
    if smoothing not in METHODS:
        raise LmtoolError(f"unknown smoothing {smoothing!r}; expected one of {', '.join(METHODS)}")
    if level not in LEVELS:
        raise LmtoolError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    check_limits(min_count, max_vocab)
    if options.get("prune") is not None:
        from .count_pruning import check_thresholds

        options = dict(options, prune=check_thresholds(options["prune"], order))
    limits = {"level": level, "min_count": min_count, "max_vocab": max_vocab, "keep": keep}
    with _counted(paths, order, limits, progress, threads, memory, tmp, dask) as (vocab, counts, training, how,
                                                                                  scratch):
        if stats is not None:
            stats.update(how)
        folder = scratch.join("model") if output is not None and scratch is not None else None
        if folder:
            os.mkdir(folder)
        estimation = Estimation(counts, smoothing, folder=folder, **options)
        if memory is not None:
            _warn_if_over_budget(memory, estimation.held_bytes())
        arrays = model_arrays(len(vocab), estimation, folder=folder, progress=progress, threads=threads)
        meta = _meta(smoothing, options, limits, training, estimation)
        if folder:
            if isinstance(counts, Run):  # spent: its files go while the model file is written
                scratch.remove_soon(counts.folder)
            write_model_file(output, vocab, estimation.model_sizes, meta, arrays)
            return None
    children = (arrays["children"], arrays["children_big_at"], arrays["children_big"])
    return NgramModel(vocab, estimation.model_sizes, arrays["word"], arrays["prob"], arrays["backoff"], children, meta)


def _warn_if_over_budget(memory, held):
    from ..memory import format_size

    if held > memory:
        warnings.warn(f"--memory {format_size(memory)} is too small for smoothing these counts, which holds "
                      f"{format_size(held)} at once (the probabilities of one order); the peak will exceed it",
                      LmtoolWarning, stacklevel=3)


def _meta(smoothing, options, limits, training, estimation):
    """What the model file records about how it was built."""
    return {
        "smoothing": smoothing,
        "options": {k: v for k, v in options.items() if v is not None},
        "vocabulary": {"level": limits["level"], "min_count": limits["min_count"], "max_vocab": limits["max_vocab"],
                       "limited_to_list": limits["keep"] is not None},
        "training": training,
        "estimated": _plain(estimation.info),
        "lmtool_version": __version__,
        "order": len(estimation.sizes),
        "sizes": estimation.model_sizes,
        "normalized": estimation.normalized,
    }


@contextmanager
def _counted(paths, order, limits, progress, threads, memory, tmp, dask):
    """Count ``paths``: yields ``(vocab, counts, training, how, scratch)``; within ``memory``,
    ``counts`` may be a run on disk in the ``ScratchFolder`` ``scratch``, which lasts as long as
    the context (``scratch`` is None otherwise)."""
    if dask is not None:
        from .distributed import count_distributed

        yield *count_distributed(paths, dask, order, progress=progress, **limits), None
    elif memory is not None:
        from ..scratch import ScratchFolder
        from .external import count_external

        with ScratchFolder(tmp or tempfile.gettempdir()) as scratch:
            yield *count_external(paths, order, memory, scratch, threads=threads, progress=progress, **limits), scratch
    else:
        data = read_corpus(paths, progress=progress, threads=threads, **limits)
        bar = progress("counting", total=-(-data.tokens // chunk_tokens_for(threads)), unit="chunk")
        try:
            counts = count_ngrams(data.ids, data.lengths, order, len(data.vocab), progress=bar.update,
                                  threads=threads)
        finally:
            bar.close()
        vocab, training = data.vocab, data.describe()
        del data
        yield vocab, counts, training, {}, None


def _plain(value):
    """JSON-friendly copy of smoothing info (NumPy scalars to floats and bools)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
