"""Relative-entropy pruning of a backoff n-gram model (``lmtool prune``): Stolcke (1998), as SRILM's
``ngram -prune`` does it, for any normalised model, lmtool's own or read from ARPA.

Removing the n-gram hw makes p(w | h) a backed-off b'(h) p(w | h'), where b'(h) is the backoff
weight recomputed without hw; the words already backed off after h scale by b'(h) / b(h). The
relative entropy this costs is (in log10, as SRILM)::

    dH = -P(h) [ p(w|h) (log p(w|h') + log b'(h) - log p(w|h)) + N(h) (log b'(h) - log b(h)) ]
    b'(h) = (N(h) + p(w|h)) / (D(h) + p(w|h')),  N(h) = 1 - sum_v p(v|h),  D(h) = 1 - sum_v p(v|h')

(the sums over the words v seen after h), with P(h) the probability of the context by the chain
rule (``<s>`` first counting as ``</s>``, as SRILM's ``contextProb``), or with ``history`` the
relative frequency of h in a corpus (SRILM takes a second model for it, ``-prune-history-lm``).
The lower orders of a Kneser-Ney model hold continuation probabilities, which make the chain
rule a poor estimate of P(h) (Chelba et al. 2010): pruning them by the training text's
frequencies keeps better models at every size (``bench/RESULTS.md``). The n-gram goes when the
relative change of the training-set perplexity this means, 10^dH - 1, is below the threshold.
Orders are pruned from the highest down, the n-grams of an order all at once against the model
as it was (SRILM removes them after deciding, and lower orders are not touched meanwhile), and
an n-gram that is the context of a kept longer one stays. Then the backoff weights are
recomputed, from the lowest order up, so every context sums to one again.

A kept n-gram whose suffix went is kept whole; the suffix comes back as a "blank" n-gram whose
probability is what backing off gives and whose backoff weight is 1 (as KenLM reads SRILM's
pruned files), so the trie stays closed and the model scores exactly as the pruned one.

Unigrams stay, unless ``prune_unigrams``: then words that no kept longer n-gram contains may go
too (never ``<unk>``, ``<s>``, ``</s>``), each scored as ``<unk>`` afterwards, ``<unk>`` taking its
probability. Backing off gives a unigram its own probability back, so Stolcke's estimate is 0 for
each alone; what merging w into ``<unk>`` loses is telling the two apart: dH = (p(w) + M)
H2(p(w) / (p(w) + M)), M the probability ``<unk>`` holds by then and H2 the binary entropy (log10).
That cost grows with p(w) and with M, so the words go from the least probable up, M growing with
each, while the cost stays below the threshold.
"""

import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import LmtoolError
from ..vocab import BOS, EOS, SPECIALS, UNK, Vocabulary
from .assemble import LOG10_ZERO

EPSILON = 3e-6
"""SRILM's Prob_Epsilon: sums of probabilities this close to 0 count as 0."""


@dataclass
class Costs:
    """What pruning ``model`` at any threshold needs: ``change`` float64[T], the relative perplexity
    change of removing each node alone (+inf where it may not go: unigrams, unless allowed, and the
    n-grams of contexts whose backoff weight cannot be formed), and the trie's links, global node
    numbers: ``parent`` int64[T] and ``suffix`` int64[T] (-1 for unigrams)."""

    model: object
    change: np.ndarray
    parent: np.ndarray
    suffix: np.ndarray
    prune_unigrams: bool
    unigram_p: np.ndarray = None  # float64[V] when unigrams may go
    history: list = None  # the corpus files P(h) was counted in, for the model's record


def check_prunable(model, path=None):
    """Refuse what relative-entropy pruning cannot work on: other model kinds and unnormalised scores."""
    if model.kind != "ngram":
        raise LmtoolError(f"a {model.kind} model has no n-grams to prune; prune n-gram models", path)
    if not model.normalized:
        raise LmtoolError(f"its {model.meta.get('smoothing')} scores are not probabilities, and relative-entropy "
                          "pruning needs a normalised backoff model", path)


def links(model):
    """(parent, suffix): int64[T] each, the node of every n-gram's first n-1 words and of its last
    n-1 words (-1 for unigrams). Raises ``LmtoolError`` if a suffix is missing (a trie that is not
    closed; models read from ARPA are closed)."""
    sizes, V = model.sizes, model.sizes[0]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    T = int(starts[-1])
    parent = np.full(T, -1, np.int64)
    suffix = np.full(T, -1, np.int64)
    children = model.children
    word = np.asarray(model.word, np.int64)
    for n in range(2, model.order + 1):
        lo, hi = starts[n - 1], starts[n]
        parent[lo:hi] = np.repeat(np.arange(starts[n - 2], starts[n - 1]), children[starts[n - 2]:starts[n - 1]])
        if n == 2:
            suffix[lo:hi] = word[lo:hi]
            continue
        keys = (parent[starts[n - 2]:starts[n - 1]] - starts[n - 3]) * V + word[starts[n - 2]:starts[n - 1]]
        wanted = (suffix[parent[lo:hi]] - starts[n - 3]) * V + word[lo:hi]
        at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
        if len(wanted) and (len(keys) == 0 or not np.array_equal(keys[at], wanted)):
            raise LmtoolError(f"the model lacks {n - 1}-grams that its {n}-grams end with; convert it from ARPA again")
        suffix[lo:hi] = at + starts[n - 2]
    return parent, suffix


def _level(model, n):
    s = model.level(n)
    return s.start, s.stop


def _sums(index, weights, size):
    """float64[size]: the weights added up by index (in index order)."""
    return np.bincount(index, weights=weights, minlength=size) if len(index) else np.zeros(size)


def _clipped(x):
    """SRILM's rounding guard: sums just below 0 are 0."""
    x = x.copy()
    x[(x < 0) & (x > -EPSILON)] = 0.0
    return x


def costs(model, prune_unigrams=False, history=None):
    """The ``Costs`` of ``model`` (an ``NgramModel``, normalised). ``history``: float64[C], log10 P(h)
    of each context node (orders below the highest) where known, NaN elsewhere (``ngram.context_frequency``);
    where it is NaN, or without it, P(h) comes from the model by the chain rule."""
    check_prunable(model)
    parent, suffix = links(model)
    lp = np.asarray(model.prob, np.float64)
    p = 10.0 ** lp
    V, T = model.sizes[0], len(lp)
    change = np.full(T, np.inf)
    context = np.zeros(T - model.sizes[-1]) if model.order > 1 else np.zeros(0)  # log10 P(h), orders below the top
    if model.order > 1:
        context[:V] = lp[:V]
        context[BOS] = lp[EOS]
    for n in range(2, model.order):
        lo, hi = _level(model, n)
        context[lo:hi] = context[parent[lo:hi]] + lp[lo:hi]
    if history is not None:
        context = np.where(np.isnan(history), context, history)
    implied = blank_nodes(model, parent, suffix)
    explicit = np.where(implied, 0.0, p)  # blanks are no n-grams of the file: they count in no sum
    for n in range(2, model.order + 1):
        lo, hi = _level(model, n)
        c_lo, c_hi = _level(model, n - 1)
        h = parent[lo:hi] - c_lo
        s = suffix[lo:hi]
        numerator = _clipped(1.0 - _sums(h, explicit[lo:hi], c_hi - c_lo))
        denominator = _clipped(1.0 - _sums(h, np.where(implied[lo:hi], 0.0, p[s]), c_hi - c_lo))
        proper = (numerator >= 0) & (denominator > 0)
        num, den = numerator[h], denominator[h]
        bow = np.asarray(model.backoff[c_lo:c_hi], np.float64)[h]
        with np.errstate(divide="ignore", invalid="ignore"):
            new_bow = np.log10(num + p[lo:hi]) - np.log10(den + p[s])
            delta_prob = lp[s] + new_bow - lp[lo:hi]
            delta_h = -(10.0 ** context[c_lo:c_hi][h]) * (p[lo:hi] * delta_prob + num * (new_bow - bow))
            change[lo:hi] = np.where(proper[h], np.expm1(delta_h * math.log(10.0)), np.inf)
    change[implied] = -np.inf  # removing one changes nothing; it comes back if a kept n-gram needs it
    return Costs(model, change, parent, suffix, prune_unigrams, unigram_p=p[:V].copy() if prune_unigrams else None)


def blank_nodes(model, parent, suffix):
    """bool[T]: the blank n-grams of ``model``, those an ARPA file lacked but its longer n-grams imply
    (``ngram.arpa``): below the highest order, without children, backoff 0 (weight 1), and the
    probability backing off gives. A pruned SRILM file lacks them, and SRILM prunes as if they were
    not there."""
    T = len(model.prob)
    out = np.zeros(T, bool)
    if model.order < 3:
        return out
    C = T - model.sizes[-1]
    lo = model.sizes[0]
    inner = np.arange(lo, C)
    backoff = np.asarray(model.backoff, np.float64)
    prob = np.asarray(model.prob, np.float64)
    candidate = (model.children[lo:C] == 0) & (backoff[lo:C] == 0)
    at = inner[candidate]
    backed = backoff[parent[at]] + prob[suffix[at]]
    out[at[np.isclose(prob[at], backed, rtol=1e-6, atol=1e-7)]] = True
    return out


def merge_changes(p, held):
    """Relative perplexity change of merging words of probability ``p`` into ``<unk>`` holding ``held``:
    10^dH - 1 with dH = (p + held) H2(p / (p + held)) in log10 (the information that told them apart)."""
    both = p + held
    with np.errstate(divide="ignore", invalid="ignore"):
        h2 = -(np.where(p > 0, p * np.log10(p / both), 0.0) + np.where(held > 0, held * np.log10(held / both), 0.0))
    return np.expm1(h2 * math.log(10.0))


def unigrams_merged(p, candidates, threshold):
    """The ``candidates`` (word ids) that go at ``threshold``: the least probable first, each costing
    ``merge_changes`` against what ``<unk>`` holds by then, while the cost stays below the threshold."""
    candidates = candidates[np.argsort(p[candidates], kind="stable")]
    q = p[candidates]
    held = p[UNK] + np.concatenate([[0.0], np.cumsum(q)[:-1]])
    go = np.cumprod(merge_changes(q, held) < threshold).astype(bool) if threshold > 0 else np.zeros(len(q), bool)
    return candidates[go]


def kept(c, threshold):
    """bool[T]: the n-grams kept at ``threshold`` (explicit ones; blanks are added by ``present``)."""
    model = c.model
    go = c.change < threshold if threshold > 0 else np.zeros(len(c.change), bool)
    keep = np.ones(len(go), bool)
    needed = None  # of order n: has a kept child
    for n in range(model.order, 1, -1):
        lo, hi = _level(model, n)
        k = ~go[lo:hi]
        if needed is not None:
            k |= needed
        keep[lo:hi] = k
        c_lo, c_hi = _level(model, n - 1)
        needed = np.bincount(c.parent[lo:hi][k] - c_lo, minlength=c_hi - c_lo) > 0
    V = model.sizes[0]
    if c.prune_unigrams:
        used = np.zeros(V, bool)  # every word of a kept n-gram ends it or a kept prefix, or starts a bigram
        used[np.asarray(model.word, np.int64)[V:][keep[V:]]] = True
        lo, hi = _level(model, 2) if model.order > 1 else (V, V)
        used[c.parent[lo:hi][keep[lo:hi]]] = True
        used[:len(SPECIALS)] = True
        keep[unigrams_merged(c.unigram_p, np.flatnonzero(~used), threshold)] = False
    return keep


def present(c, keep):
    """bool[T]: ``keep`` plus the blank n-grams its kept n-grams need as suffixes."""
    model = c.model
    out = keep.copy()
    for n in range(model.order, 2, -1):
        lo, hi = _level(model, n)
        out[c.suffix[lo:hi][out[lo:hi]]] = True
    return out


def size_at(c, threshold):
    """Number of n-grams (all orders, blanks included) the model pruned at ``threshold`` holds."""
    return int(np.count_nonzero(present(c, kept(c, threshold))))


def threshold_for_size(c, size):
    """The smallest threshold that leaves at most ``size`` n-grams (blanks included), found by
    bisection over the thresholds that make a difference; LmtoolError if none does."""
    total = len(c.change)
    if size > total:
        raise LmtoolError(f"--size {size:,} is more than the model's {total:,} n-grams; give a smaller size")
    if size == total:
        return 0.0
    candidates = c.change[np.isfinite(c.change)]
    if c.prune_unigrams:  # the costs of the words in turn, were every one free to go
        every = np.arange(len(SPECIALS), len(c.unigram_p))
        ordered = np.sort(c.unigram_p[every])
        held = c.unigram_p[UNK] + np.concatenate([[0.0], np.cumsum(ordered)[:-1]])
        candidates = np.concatenate([candidates, merge_changes(ordered, held)])
    candidates = np.unique(candidates)
    candidates = candidates[candidates > 0]
    if len(candidates) == 0:
        candidates = np.array([np.finfo(np.float64).tiny])
    last = np.nextafter(candidates[-1], np.inf)
    thresholds = np.append(candidates, last)  # threshold j drops the n-grams whose change is below it
    least = size_at(c, last)
    if least > size:
        raise LmtoolError(f"--size {size:,} is below what pruning can reach: {least:,} n-grams remain at any threshold"
                          + ("" if c.prune_unigrams else " (unigrams stay; --prune-unigrams lets them go too)"))
    lo, hi = 0, len(thresholds) - 1  # size_at(thresholds[hi]) <= size
    while lo < hi:
        mid = (lo + hi) // 2
        if size_at(c, thresholds[mid]) <= size:
            hi = mid
        else:
            lo = mid + 1
    return float(thresholds[lo])


def pruned_model(c, threshold):
    """The ``NgramModel`` pruned at ``threshold``: kept n-grams with their probabilities, blanks, and
    every backoff weight recomputed from the lowest order up."""
    model = c.model
    keep = kept(c, threshold)
    here = present(c, keep)
    V, order = model.sizes[0], model.order
    lp = np.asarray(model.prob, np.float64).copy()
    if c.prune_unigrams:
        gone = ~keep[:V]
        lp[UNK] = math.log10(float(np.sum(10.0 ** lp[:V][gone | (np.arange(V) == UNK)])))
    backoff = np.zeros(len(lp) - model.sizes[-1])
    for n in range(2, order + 1):
        lo, hi = _level(model, n)
        c_lo, c_hi = _level(model, n - 1)
        h = c.parent[lo:hi] - c_lo
        s = c.suffix[lo:hi]
        explicit = keep[lo:hi]
        numerator = _clipped(1.0 - _sums(h[explicit], 10.0 ** lp[lo:hi][explicit], c_hi - c_lo))
        denominator = _clipped(1.0 - _sums(h[explicit], 10.0 ** lp[s[explicit]], c_hi - c_lo))
        backoff[c_lo:c_hi] = backoff_weights(numerator, denominator)
        has_explicit = np.bincount(h[explicit], minlength=c_hi - c_lo) > 0
        backoff[c_lo:c_hi][~has_explicit] = 0.0
        blank = here[lo:hi] & ~explicit
        lp[lo:hi][blank] = backoff[c_lo:c_hi][h[blank]] + lp[s[blank]]
    return _compacted(model, c, here, lp, backoff, keep, threshold)


def backoff_weights(numerator, denominator):
    """log10 of numerator / denominator, as SRILM's ``computeBOWs`` forms a backoff weight: 1 when both
    are (about) 0, the floor when the numerator is 0 or the weight cannot be formed."""
    out = np.full(len(numerator), LOG10_ZERO)
    ok = (numerator > 0) & (denominator > 0)
    out[ok] = np.log10(numerator[ok]) - np.log10(denominator[ok])
    out[(numerator < EPSILON) & (denominator < EPSILON)] = 0.0
    return np.maximum(out, LOG10_ZERO)


def _compacted(model, c, here, lp, backoff, keep, threshold):
    """The nodes ``here`` as a new ``NgramModel`` (words renumbered when unigrams went)."""
    from .model import NgramModel

    V, order = model.sizes[0], model.order
    sizes = [int(np.count_nonzero(here[slice(*_level(model, n))])) for n in range(1, order + 1)]
    new_id = np.cumsum(here[:V]) - 1
    word = np.asarray(model.word, np.int64)[here]
    word = new_id[word]
    vocab = model.vocab
    if sizes[0] != V:
        vocab = Vocabulary([t for t, k in zip(model.vocab.tokens, here[:V]) if k], model.vocab.level)
    new_node = np.cumsum(here) - 1
    C = sum(sizes[:-1])
    children = np.zeros(C, np.int64)
    if order > 1:  # the parents of the nodes here are here too (a trie closed under prefixes)
        inner = here.copy()
        inner[:V] = False
        children = np.bincount(new_node[c.parent[inner]], minlength=C).astype(np.int64)
    word = word.astype(np.uint16 if len(vocab) <= 1 << 16 else np.uint32)
    prob = np.maximum(lp[here], LOG10_ZERO).astype(np.float32)
    inner_nodes = np.flatnonzero(here[:len(backoff)])
    bow = backoff[inner_nodes].astype(np.float32)
    blanks = int(np.count_nonzero(here & ~keep))
    meta = {k: v for k, v in model.meta.items() if k not in ("quantized", "sizes", "order")}
    meta.update(order=order, sizes=sizes, pruned={
        "method": "relative-entropy", "threshold": float(threshold), "prune_unigrams": bool(c.prune_unigrams),
        "history": c.history, "from_sizes": list(model.sizes), "blank_ngrams": blanks})
    return NgramModel(vocab, sizes, word, prob, bow, children, meta)


def check_request(threshold, size):
    """Refuse a threshold that is negative or not a number, a size below 1, or both or neither given."""
    if (threshold is None) == (size is None):
        raise LmtoolError("give either --threshold or --size (not both)")
    if threshold is not None and not (math.isfinite(threshold) and threshold >= 0):
        raise LmtoolError(f"--threshold must be a number >= 0 (a relative change of perplexity, e.g. 1e-7), "
                          f"got {threshold}")
    if size is not None and size < 1:
        raise LmtoolError(f"--size must be a positive number of n-grams, got {size}")


def recorded_training_text(model):
    """The training files an lmtool model records, when they are still there and hash to the digest
    it recorded: the best estimate of P(h) there is, so ``prune``'s default history. None otherwise
    (an ARPA file records none)."""
    from ..corpus import fingerprint

    training = (model.meta or {}).get("training") or {}
    files, digest = training.get("files"), training.get("blake2b")
    if not files or not digest or not all(os.path.isfile(f) for f in files):
        return None
    try:
        return list(files) if fingerprint(files) == digest else None
    except (OSError, LmtoolError):
        return None


def prune(model, threshold=None, size=None, prune_unigrams=False, history=None, path=None):
    """``model`` pruned at ``threshold``, or at the threshold that leaves about ``size`` n-grams (the
    most that stays at or below it); ``history`` (corpus paths) gives P(h) its relative frequency
    there. Returns ``(pruned model, threshold)``."""
    check_prunable(model, path)
    check_request(threshold, size)
    if history is not None:
        from .context_frequency import history_of

        history_paths, history = history, history_of(model, history)
    c = costs(model, prune_unigrams, history)
    if history is not None:
        from ..corpus import display_name

        c.history = [display_name(p) for p in history_paths]
    if size is not None:
        threshold = threshold_for_size(c, size)
    return pruned_model(c, threshold), threshold
