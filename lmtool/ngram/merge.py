"""A linear mixture of n-gram models merged into one backoff n-gram model (SRILM's
``ngram -mix-lm ... -write-lm``), for a decoder that takes one ARPA file.

The merged model holds every n-gram of any member (the vocabulary is their union, see
``mixture.MemberMaps``), with the interpolated probability p(w | h) = sum_i w_i p_i(w | h), each
member's p_i by its own backoff (a word it lacks takes its share of its ``<unk>``). The backoff
weights are then recomputed, order by order from the lowest, so that every context sums to one:

    b(h) = (1 - sum_{w: hw kept} p(w | h)) / (1 - sum_{w: hw kept} p'(w | h'))

where h' drops h's first word and p' is the merged model itself (backing off through the weights
already computed). A word unseen after h then gets b(h) p'(w | h') instead of the exact mixture, so
the merged model is close to the dynamic mixture, not equal to it.
"""

import numpy as np

from ..errors import LmtoolError
from ..vocab import BOS
from .assemble import LOG10_ZERO
from .model import NgramModel

BATCH = 1 << 18
"""N-grams queried at once per member."""


def check_mergeable(mixture):
    """Refuse a mixture that has no one backoff model: log-linear, with weights by context, or with
    members other than n-gram models."""
    from ..mixture import LINEAR

    if mixture.mode != LINEAR:
        raise LmtoolError("only a linear mixture merges into one n-gram model (a log-linear one is normalised "
                          "at every position, which no backoff model stores)")
    if mixture.context is not None:
        raise LmtoolError("weights that change with the context are not one backoff model's probabilities; "
                          "a mixture with weights by context does not merge into one n-gram model")
    for model, name in zip(mixture.members, mixture.names):
        if model.kind != "ngram":
            raise LmtoolError(f"a {model.kind} model has no n-grams to merge; --static takes n-gram members only",
                              name)


def merge_ngram_models(mixture):
    """The ``NgramModel`` of a linear ``MixtureModel`` whose members are all n-gram models."""
    check_mergeable(mixture)
    maps, weights = mixture.maps, mixture.weights
    V = len(mixture.vocab)
    order = max(m.order for m in mixture.members)
    # each level as sorted keys parent * V + word (parent: index within the level below)
    levels = [np.arange(V, dtype=np.int64)]
    member_nodes = [maps.from_member[i].astype(np.int64) for i in range(len(mixture.members))]
    for n in range(2, order + 1):
        keys = []
        for i, model in enumerate(mixture.members):
            if model.order < n:
                continue
            parents = np.repeat(np.arange(model.sizes[n - 2]), model.children[model.level(n - 1)])
            words = model.word[model.level(n)].astype(np.int64)
            keys.append(member_nodes[i][parents] * V + maps.from_member[i][words])
        merged = np.unique(np.concatenate(keys))
        for i, model in enumerate(mixture.members):
            if model.order >= n:
                member_nodes[i] = np.searchsorted(merged, keys.pop(0))
        levels.append(merged)
    sizes = [len(level) for level in levels]
    word = np.concatenate([levels[0]] + [level % V for level in levels[1:]])
    children = np.concatenate([np.bincount(level // V, minlength=size)
                               for level, size in zip(levels[1:], sizes[:-1])]) if order > 1 else np.zeros(0, np.int64)
    rows = _rows(levels, V)
    prob = np.concatenate([_interpolated(mixture, r) for r in rows])
    prob[BOS] = LOG10_ZERO
    backoff = np.zeros(sum(sizes[:-1]), np.float64)
    child_start = np.concatenate([[sizes[0]], sizes[0] + np.cumsum(children)])
    word32 = word.astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for n in range(2, order + 1):
        backoff[starts[n - 2]:starts[n - 1]] = _backoffs(rows[n - 1], levels[n - 1] // V, sizes[n - 2],
                                                         prob[starts[n - 1]:starts[n]], order, child_start, word32,
                                                         prob, backoff)
    meta = {"smoothing": "static mixture", "order": order, "sizes": sizes, "normalized": True,
            "mixture": {"weights": [float(w) for w in weights],
                        "members": mixture.describe_members(mixture.member_bytes)},
            "level": mixture.vocab.level}
    word_dtype = np.uint16 if V <= 1 << 16 else np.uint32
    return NgramModel(mixture.vocab, sizes, word.astype(word_dtype), prob.astype(np.float32),
                      backoff.astype(np.float32), children.astype(np.int64), meta)


def _rows(levels, V):
    """int32[M_n, n]: the words of every n-gram of each level, in trie order."""
    rows = [levels[0][:, None].astype(np.int32)]
    for level in levels[1:]:
        rows.append(np.column_stack([rows[-1][level // V], (level % V).astype(np.int32)]))
    return rows


def _interpolated(mixture, grams):
    """float64[G]: log10 sum_i w_i p_i(w | h) of n-grams grams: int32[G, n] (mixture ids)."""
    from ..kernels.ngram_context import conditional_logprobs

    ln10 = np.log(10.0)
    total = np.full(len(grams), -np.inf)  # natural log
    for i, model in enumerate(mixture.members):
        if mixture.weights[i] <= 0:
            continue
        lp = np.empty(len(grams))
        for lo in range(0, len(grams), BATCH):
            part = np.ascontiguousarray(mixture.maps.to_member[i][grams[lo:lo + BATCH]])
            conditional_logprobs(part, model.order, model.child_start, model.word, model.prob, model.backoff,
                                 lp[lo:lo + BATCH])
        lp -= mixture.maps.share[i][grams[:, -1]]
        total = np.logaddexp(total, (lp + np.log10(mixture.weights[i])) * ln10)
    return np.maximum(total / ln10, LOG10_ZERO)


def _backoffs(grams, parents, n_contexts, prob, order, child_start, word, all_prob, backoff):
    """log10 b(h) for the ``n_contexts`` contexts of the n-grams grams: int32[G, n] (their parents:
    int64[G], their log10 probabilities prob: float64[G]), from the merged lower orders."""
    from ..kernels.ngram_context import conditional_logprobs

    lower = np.empty(len(grams))
    bo32 = backoff.astype(np.float32)
    prob32 = all_prob.astype(np.float32)
    for lo in range(0, len(grams), BATCH):
        conditional_logprobs(np.ascontiguousarray(grams[lo:lo + BATCH, 1:]), order, child_start, word, prob32, bo32,
                             lower[lo:lo + BATCH])
    kept = np.bincount(parents, weights=10.0 ** prob.astype(np.float32).astype(np.float64), minlength=n_contexts)
    kept_lower = np.bincount(parents, weights=10.0 ** lower, minlength=n_contexts)
    left, left_lower = 1.0 - kept, 1.0 - kept_lower
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.log10(left) - np.log10(left_lower)
    b[(left <= 0) | ~np.isfinite(b)] = LOG10_ZERO
    b[(left > 0) & (left_lower <= 0)] = 0.0
    return b

