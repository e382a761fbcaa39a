"""The ``count`` pipeline: corpus -> vocabulary -> n-gram counts -> smoothing -> NgramModel."""

import os
import warnings
from contextlib import contextmanager

from .. import __version__, modelfile
from ..encoded_corpus import encode_corpus
from ..errors import LmtoolWarning
from ..progress import bar, silent
from ..vocab import read_vocab_file
from .assemble import model_arrays
from .counts import chunk_tokens_for, count_ngrams
from .model import NgramModel, write_model_file
from .options import CountOptions
from .smoothing import Estimation
from .spilled_runs import Run

def describe_counting(stats, options):
    """One line on how counting went (chunks and spilled runs, or shards), or None."""
    from ..memory import format_size

    if "runs" in stats:
        spilled = (f", spilled {stats['runs']} runs ({format_size(stats['spilled_bytes'])}) to "
                   f"{options.scratch_folder()}" if stats["runs"] else ", nothing spilled")
        return f"counted {stats['chunks']} chunks within --memory {format_size(options.memory_bytes())}{spilled}"
    if "shards" in stats:
        return f"counted {stats['shards']} shards on {stats['workers']} Dask workers"
    return None


def count_options(paths, options=None, **fields):
    """A checked ``CountOptions`` for ``paths``: ``options`` as given, or one made of ``fields``."""
    if options is None:
        options = CountOptions(corpus=list(paths), **fields)
    elif fields:
        raise TypeError(f"give either options or fields, not both ({', '.join(fields)})")
    return options.check()


def build_ngram_model(paths, options=None, progress=silent, stats=None, **fields):
    """Count ``paths`` and smooth the counts into an ``NgramModel`` held in memory.

    ``options``: a ``CountOptions`` (what ``count`` runs with), or its fields as keywords
    (``order=5, smoothing="witten-bell"``, ``prune=[0, 1, 1]``...). Counting runs in memory on
    ``threads`` threads, or within ``memory`` spilling to ``tmp`` (``ngram.external``), or on the
    Dask cluster at ``dask`` (``ngram.distributed``); the model is the same byte for byte. A
    ``stats`` dict receives how the counting went (chunks, runs, shards).
    """
    return _estimate(count_options(paths, options, **fields), None, progress, stats)


def write_ngram_model(paths, output, options=None, progress=silent, stats=None, **fields):
    """Build as ``build_ngram_model`` does and write the model file ``output``; returns the model.

    Within ``memory`` the counts, the smoothing and the model's arrays all go through files in
    the scratch folder, so the model is never held whole, and the model returned is opened from
    ``output`` (memory-mapped).
    """
    model = _estimate(count_options(paths, options, **fields), output, progress, stats)
    if model is None:
        return NgramModel.from_file(modelfile.read(output, verify=False))
    model.save(output)
    return model


def _estimate(options, output, progress, stats):
    """The model in memory, or None once it is written to ``output`` through the scratch folder."""
    with _counted(options, progress) as (vocab, counts, training, how, scratch):
        if stats is not None:
            stats.update(how)
        folder = scratch.join("model") if output is not None and scratch is not None else None
        if folder:
            os.mkdir(folder)
        method_options = options.smoothing_options()
        estimation = Estimation(counts, options.smoothing, folder=folder, **method_options)
        if options.memory is not None:
            _warn_if_over_budget(options.memory_bytes(), estimation.held_bytes())
        arrays = model_arrays(len(vocab), estimation, folder=folder, progress=progress, threads=options.threads)
        meta = _meta(options, method_options, training, estimation)
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


def _meta(options, method_options, training, estimation):
    """What the model file records about how it was built."""
    return {
        "smoothing": options.smoothing,
        "options": {k: v for k, v in method_options.items() if v is not None},
        "vocabulary": {"level": options.level, "min_count": options.min_count, "max_vocab": options.max_vocab,
                       "limited_to_list": options.vocab_file is not None},
        "training": training,
        "estimated": _plain(estimation.info),
        "lmtool_version": __version__,
        "order": len(estimation.sizes),
        "sizes": estimation.model_sizes,
        "normalized": estimation.normalized,
    }


@contextmanager
def _counted(options, progress):
    """Count as ``options`` say: yields ``(vocab, counts, training, how, scratch)``; within
    ``--memory``, ``counts`` may be a run on disk in the ``ScratchFolder`` ``scratch``, which lasts
    as long as the context (``scratch`` is None otherwise)."""
    keep = read_vocab_file(options.vocab_file) if options.vocab_file else None
    limits = {"level": options.level, "min_count": options.min_count, "max_vocab": options.max_vocab, "keep": keep}
    paths, order = list(options.corpus), options.order
    if options.dask is not None:
        from .distributed import count_distributed

        yield *count_distributed(paths, options.dask, order, progress=progress, **limits), None
    elif options.memory is not None:
        from ..scratch import ScratchFolder
        from .external import count_external

        with ScratchFolder(options.scratch_folder()) as scratch:
            yield *count_external(paths, order, options.memory_bytes(), scratch, threads=options.threads,
                                  progress=progress, **limits), scratch
    else:
        data = encode_corpus(paths, progress=progress, threads=options.threads, **limits)
        with bar(progress, "counting", total=-(-data.tokens // chunk_tokens_for(options.threads)),
                 unit="chunk") as chunks:
            counts = count_ngrams(data.ids, data.lengths, order, len(data.vocab), progress=chunks.update,
                                  threads=options.threads)
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
