"""Word classes of the class-factored softmax: which words share a class, and in what order.

Frequency binning (``make_classes``, as Mikolov's RNNLM) groups words by count alone, so one class
mixes words that follow unrelated contexts, and p(class | h) has to spread its mass over them.
Exchange clustering (``exchange_classes``; Kneser and Ney 1993, in the one-sided "predictive" form
of Uszkoreit and Brants 2008) instead moves one word at a time to the class that most raises the
likelihood of the class bigram model

    p(w | v) = p(c(w) | v) p(w | c(w)),

the class softmax's own factorisation with the previous word as the history (the arithmetic, and
the penalty per logit that keeps classes of frequent words small, are in
``lmtool.kernels.word_clusters``).
"""

import math
from dataclasses import dataclass

import numpy as np


PASSES = 20
"""Most passes ``exchange_classes`` makes: on KJV the class bigram perplexity moves by under 0.1%
after about 10 (57.92 after 7, 57.89 after 14, with no penalty)."""
MAX_TABLE = 1 << 26
"""Cells of the int64 N(context, class) table (512 MB); more contexts than fit share its last row."""


@dataclass(frozen=True, eq=False)
class WordClasses:
    """Words binned into classes, with word <-> output-position maps.

    order: int32[V], the word id at each output position (positions sorted by falling frequency);
    rank: int32[V], the position of each word id (inverse of order);
    start: int32[C+1], class c holds positions start[c] .. start[c+1]-1;
    word_class: int32[V], the class of each position.
    """

    order: np.ndarray
    rank: np.ndarray
    start: np.ndarray
    word_class: np.ndarray

    @property
    def n_classes(self):
        return len(self.start) - 1

    @classmethod
    def from_arrays(cls, order, start):
        """Rebuild from ``order`` and ``start`` (what a model file stores)."""
        order = np.ascontiguousarray(order, np.int32)
        start = np.ascontiguousarray(start, np.int32)
        V = len(order)
        if start[0] != 0 or start[-1] != V or np.any(np.diff(start) <= 0):
            raise ValueError(f"class starts must rise strictly from 0 to {V}, found {start[:5]}...")
        rank = np.empty(V, np.int32)
        rank[order] = np.arange(V, dtype=np.int32)
        if not np.array_equal(order[rank], np.arange(V)):
            raise ValueError("class order is not a permutation of the word ids")
        word_class = np.repeat(np.arange(len(start) - 1, dtype=np.int32), np.diff(start))
        return cls(order, rank, start, word_class)

    def arrays(self):
        """{name: int32 array} to save; ``from_arrays(**arrays())`` rebuilds the classes."""
        return {"order": self.order, "start": self.start}


def make_classes(counts, n_classes=None, method="sqrt"):
    """Bin words into about ``n_classes`` (default round(sqrt(V))) frequency classes.

    counts: int[V] unigram counts by word id. Words are sorted by falling count (ties by id) and cut
    into consecutive classes of about equal mass, where a word weighs sqrt(count) (``"sqrt"``, the
    default, as in Mikolov's RNNLM) or its count (``"mass"``: equal probability per class, RNNLM's
    -old-classes). A word goes to the class containing the midpoint of its mass; classes left empty by
    very frequent words are dropped, so the result may have fewer classes than asked for.

    Cost per token is C + the size of the target's class. On KJV (V = 12,388, C = 111): "sqrt" gives
    131 logits per token (largest class 391 words); "mass" gives 194, because equal-probability classes
    of rare words are huge (5,802 words). With "sqrt", 60 classes would give 97 logits per token.
    """
    counts = np.asarray(counts, np.float64)
    V = len(counts)
    if counts.ndim != 1 or V == 0 or np.any(counts < 0):
        raise ValueError(f"counts: expected non-negative counts per word, found shape {counts.shape}")
    C = int(round(math.sqrt(V))) if n_classes is None else int(n_classes)
    if not 1 <= C <= V:
        raise ValueError(f"n_classes: expected 1..{V} (the vocabulary size), found {C}")
    if method not in ("sqrt", "mass"):
        raise ValueError(f"method: expected 'sqrt' or 'mass', found {method!r}")
    order = np.argsort(-counts, kind="stable").astype(np.int32)
    weight = counts[order] if method == "mass" else np.sqrt(counts[order])
    total = weight.sum()
    if total == 0:
        weight, total = np.ones(V), float(V)
    mid = np.cumsum(weight) - weight / 2
    cls = np.minimum((mid * C / total).astype(np.int64), C - 1)
    firsts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
    start = np.r_[firsts, V].astype(np.int32)
    return WordClasses.from_arrays(order, start)


def frequency_classes(contexts, targets, vocab_size, n_classes=None, log=None):
    """Frequency bins (``make_classes``) of the words as targets, each counted once more so that
    unseen words still get a class; ``contexts`` and ``log`` are unused (the signature is the one
    every entry of ``config.CLASS_METHODS`` has)."""
    return make_classes(np.bincount(np.asarray(targets), minlength=vocab_size) + 1, n_classes)


def exchange_classes(contexts, targets, vocab_size, n_classes=None, penalty=1e-3, passes=PASSES, tolerance=0.001,
                     log=None):
    """Word classes clustered by predictive exchange over (context, target) id pairs.

    contexts, targets: int[n] token ids, each target following its context (for the recurrent LM:
    the inputs and targets of ``batches.sentence_stream``, so ``</s>`` counts as a target).
    Starts from ``make_classes``' frequency bins (so about ``n_classes`` classes, default sqrt(V)),
    then runs passes over the words, most frequent first, until fewer than ``tolerance`` x V words
    move or ``passes`` are done; ``log(pass, moved, loglik)`` is called after each pass if given
    (loglik: the class bigram log-likelihood, without the penalty). Classes left empty are dropped;
    within a class, positions are in falling frequency.

    penalty: nats per logit per target token. On KJV (sqrt(V) = 111 classes) the class bigram
    perplexity and the logits per token are 57.9 and 229 with no penalty, 58.9 and 156 with the
    default 1e-3, 63.7 and 135 with 1e-2; frequency bins give 138 and 131.
    """
    contexts = np.asarray(contexts, np.int64)
    targets = np.asarray(targets, np.int64)
    V = int(vocab_size)
    if contexts.shape != targets.shape or contexts.ndim != 1:
        raise ValueError(f"contexts and targets: expected two int arrays of one length, found "
                         f"{contexts.shape} and {targets.shape}")
    if len(targets) and (min(contexts.min(), targets.min()) < 0 or max(contexts.max(), targets.max()) >= V):
        raise ValueError(f"contexts and targets: ids must lie in 0..{V - 1}")
    target_count = np.bincount(targets, minlength=V).astype(np.int64)
    initial = make_classes(target_count + 1, n_classes)
    C = initial.n_classes
    word_class = initial.word_class[initial.rank].astype(np.int32)

    # Contexts as table rows, most frequent first; the rarest share the last row if V x C is too big.
    rows = max(1, min(V, MAX_TABLE // C))
    row_of = np.empty(V, np.int64)
    row_of[np.argsort(-np.bincount(contexts, minlength=V), kind="stable")] = np.minimum(np.arange(V), rows - 1)
    pairs, pair_count = np.unique(targets * rows + row_of[contexts], return_counts=True)
    pair_target = pairs // rows
    context = (pairs % rows).astype(np.int32)
    indptr = np.searchsorted(pair_target, np.arange(V + 1)).astype(np.int64)
    pair_count = pair_count.astype(np.int64)

    from ..kernels.word_clusters import class_bigram_loglik, class_tables, exchange_pass

    table, class_count = class_tables(indptr, context, pair_count, target_count, word_class, rows, C)
    class_size = np.bincount(word_class, minlength=C).astype(np.int64)
    visit = np.argsort(-target_count, kind="stable").astype(np.int64)
    for p in range(passes):
        moved = exchange_pass(indptr, context, pair_count, target_count, word_class, table, class_count,
                              class_size, visit, float(penalty))
        if log is not None:
            log(p + 1, moved, class_bigram_loglik(table, class_count, target_count))
        if moved <= tolerance * V:
            break
    order = np.lexsort((np.arange(V), -target_count, word_class)).astype(np.int32)
    sorted_class = word_class[order]
    start = np.r_[np.flatnonzero(np.r_[True, sorted_class[1:] != sorted_class[:-1]]), V].astype(np.int32)
    return WordClasses.from_arrays(order, start)
