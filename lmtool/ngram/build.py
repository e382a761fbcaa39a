"""The ``count`` pipeline: corpus -> vocabulary -> n-gram counts -> smoothing -> NgramModel."""

from .. import __version__
from ..dataset import read_corpus
from ..errors import LmtoolError
from ..progress import silent
from .counts import CHUNK_TOKENS, count_ngrams
from .model import NgramModel
from .smoothing import DEFAULT_METHOD, METHODS, estimate

MAX_ORDER = 16


def check_order(order):
    """Refuse orders outside 1..MAX_ORDER with a message that says what is allowed."""
    if not 1 <= order <= MAX_ORDER:
        raise LmtoolError(f"--order must be between 1 and {MAX_ORDER}, got {order}")


def build_ngram_model(paths, order=3, smoothing=DEFAULT_METHOD, level="word", min_count=1, max_vocab=None,
                      keep=None, progress=silent, **options):
    """Count ``paths`` and smooth the counts into an ``NgramModel``.

    ``options`` go to the smoothing function (``k`` for add-k, ``discounts`` for modified
    Kneser-Ney); ``keep`` limits the vocabulary to a set of tokens.
    """
    check_order(order)
    if smoothing not in METHODS:
        raise LmtoolError(f"unknown smoothing {smoothing!r}; expected one of {', '.join(METHODS)}")
    data = read_corpus(paths, level=level, min_count=min_count, max_vocab=max_vocab, keep=keep,
                       progress=progress)
    bar = progress("counting", total=-(-data.tokens // CHUNK_TOKENS), unit="chunk")
    try:
        counts = count_ngrams(data.ids, data.lengths, order, len(data.vocab), progress=bar.update)
    finally:
        bar.close()
    result = estimate(counts, smoothing, **options)
    meta = {
        "smoothing": smoothing,
        "options": {k: v for k, v in options.items() if v is not None},
        "vocabulary": {"level": level, "min_count": min_count, "max_vocab": max_vocab,
                       "limited_to_list": keep is not None},
        "training": data.describe(),
        "estimated": _plain(result.info),
        "lmtool_version": __version__,
    }
    return NgramModel.from_estimate(data.vocab, counts, result, meta)


def _plain(value):
    """JSON-friendly copy of smoothing info (NumPy scalars to floats and bools)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
