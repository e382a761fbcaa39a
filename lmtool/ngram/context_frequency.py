"""How often each context of an n-gram model occurs in a corpus: P(h) for relative-entropy pruning.

``ngram.prune`` weighs the cost of removing an n-gram by the probability of its context. The
model's own chain rule gives it for models whose lower orders are relative frequencies; the lower
orders of a Kneser-Ney model are continuation probabilities, and the training text's frequencies
estimate P(h) far better (``prune --history``).
"""

import numpy as np

from ..vocab import BOS
from .prune import links


def history_of(model, paths, progress=None, threads=1):
    """float64[C]: log10 of the relative frequency of each context node of ``model`` (the n-grams below
    its highest order) in the corpus ``paths``, read with the model's vocabulary; NaN for contexts
    the corpus does not hold. ``<s>`` counts once per sentence; the total is the tokens scored
    (words and one ``</s>`` per sentence)."""
    from ..encoded_corpus import encode_corpus
    from ..progress import silent
    from .counts import count_ngrams

    C = sum(model.sizes[:-1])
    out = np.full(C, np.nan)
    if model.order < 2:
        return out
    data = encode_corpus(paths, vocab=model.vocab, progress=progress or silent, threads=threads)
    counts = count_ngrams(data.ids, data.lengths, model.order - 1, len(model.vocab), threads=threads)
    tokens = data.tokens
    V = model.sizes[0]
    found = counts.count[0].astype(np.float64)
    found[BOS] = len(data.lengths)
    with np.errstate(divide="ignore"):
        out[:V] = np.where(found > 0, np.log10(found / tokens), np.nan)
    node = np.arange(V, dtype=np.int64)  # each counted n-gram's node in the model, -1 if absent
    word = np.asarray(model.word, np.int64)
    parent = links(model)[0]
    for n in range(2, model.order):
        lo, hi = model.level(n).start, model.level(n).stop
        p_lo = model.level(n - 1).start
        keys = (parent[lo:hi] - p_lo) * V + word[lo:hi]
        above = node[counts.parent[n - 1]]
        wanted = (above - p_lo) * V + counts.word[n - 1]
        at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
        hit = (above >= 0) & (len(keys) > 0) & (keys[at] == wanted)
        node = np.where(hit, at + lo, -1)
        c = counts.count[n - 1][hit].astype(np.float64)
        out[node[hit]] = np.log10(c / tokens)
    return out
