"""The names ``count`` offers as choices: smoothing methods, each mapped to its class in
``ngram.smoothing`` (imported when first used, so the command line starts without NumPy)."""

from ..registry import Registry

SMOOTHING = Registry("smoothing", {
    "modified-kneser-ney": "lmtool.ngram.smoothing:ModifiedKneserNey",
    "kneser-ney": "lmtool.ngram.smoothing:KneserNey",
    "witten-bell": "lmtool.ngram.smoothing:WittenBell",
    "add-k": "lmtool.ngram.smoothing:AddK",
    "stupid-backoff": "lmtool.ngram.smoothing:StupidBackoff",
})
"""Smoothing methods: each class turns counts into probabilities and backoffs (``ngram.smoothing``)."""
DEFAULT_METHOD = "modified-kneser-ney"
"""Equal to KenLM's lmplz, number for number."""
