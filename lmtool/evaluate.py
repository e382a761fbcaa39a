"""Gather statistics, then score: log-prob, token and OOV sums that merge across files and batches,
and one pure function that turns them into perplexity the way KenLM's query reports it.

Tokens are the words plus one ``</s>`` per sentence (``<s>`` is context, never predicted); an OOV is
a word outside the vocabulary, scored as ``<unk>``. Perplexity excluding OOVs drops their tokens and
their log-probability.
"""

import math
from dataclasses import dataclass

import numpy as np

from .vocab import UNK


def word_positions(lengths, words=None):
    """Index in a ``Scores.token`` array of each word (skipping each sentence's ``</s>``), or of the
    words at indices ``words`` (int[k], sorted) of the ids only."""
    if words is None:
        return np.arange(int(lengths.sum())) + np.repeat(np.arange(len(lengths)), lengths)
    return words + sentence_of(lengths, words)


def sentence_of(lengths, words):
    """The sentence of each word at indices ``words`` (int[k]) of the ids of sentences of ``lengths``."""
    return np.searchsorted(np.cumsum(lengths, dtype=np.int64), words, side="right")


@dataclass
class Totals:
    """Sums over scored sentences: merge with ``+``, turn into figures with ``summary()``."""

    sentences: int = 0
    tokens: int = 0
    oov: int = 0
    logprob10: float = 0.0
    oov_logprob10: float = 0.0

    @classmethod
    def of(cls, scores, ids, lengths):
        """Totals of one batch: its ``Scores`` and the ids and lengths that were scored."""
        oov = np.flatnonzero(ids == UNK)
        n_oov = len(oov)
        oov_lp = float(scores.token[word_positions(lengths, oov)].astype(np.float64).sum()) if n_oov else 0.0
        return cls(len(lengths), int(len(ids) + len(lengths)), n_oov, float(scores.sentence.sum()), oov_lp)

    def __add__(self, other):
        return Totals(self.sentences + other.sentences, self.tokens + other.tokens, self.oov + other.oov,
                      self.logprob10 + other.logprob10, self.oov_logprob10 + other.oov_logprob10)

    def summary(self):
        """The figures KenLM's ``query`` prints, as a dict (JSON-ready)."""
        return perplexity_summary(self)


def perplexity_summary(t):
    """Perplexity including and excluding OOVs from ``Totals``: 10^(-sum log10 p / tokens)."""
    in_vocab = t.tokens - t.oov
    return {
        "perplexity": 10.0 ** (-t.logprob10 / t.tokens) if t.tokens else math.nan,
        "perplexity_excluding_oov": (10.0 ** (-(t.logprob10 - t.oov_logprob10) / in_vocab)
                                     if in_vocab else math.nan),
        "sentences": t.sentences,
        "tokens": t.tokens,
        "oov": t.oov,
        "logprob10": t.logprob10,
        "oov_logprob10": t.oov_logprob10,
    }
