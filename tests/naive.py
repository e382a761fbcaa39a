"""Slow, obviously-correct versions of the n-gram machinery and the optimisers, to check lmtool against.

The n-gram code works on Python tuples and dicts, one n-gram at a time, written from the
definitions (Chen & Goodman 1998 for the Kneser-Ney family, Witten & Bell 1991, add-k as SRILM's
-addsmooth, Brants et al. 2007 for stupid backoff; KenLM's conventions for <s>, </s> and <unk>)
rather than from lmtool's code. Each smoothing method returns an ARPA-style table
{ngram: (log10 p, log10 backoff)}, which ``backoff_logprob`` and ``sentence_logprob`` score.
The optimisers (SGD, Adam, clipping by the global norm) follow their papers and PyTorch, in float64.
"""

import math
import re
from collections import Counter, defaultdict

import numpy as np

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def sentences(text, level="word"):
    """Token lists of each line: words split on space, tab and CR (KenLM), or characters."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if level == "char":
        return [list(line) for line in lines]
    return [[t for t in re.split("[ \t\r]+", line) if t and t not in (BOS, EOS)] for line in lines]


def count_ngrams(sents, order):
    """{n: Counter of n-gram tuples} for n = 1..order; n-grams stay inside <s> w1 .. wk </s>."""
    counts = {n: Counter() for n in range(1, order + 1)}
    for words in sents:
        padded = [BOS] + list(words) + [EOS]
        for end in range(1, len(padded)):
            for n in range(1, order + 1):
                start = end - n + 1
                if start < 0:
                    break
                counts[n][tuple(padded[start:end + 1])] += 1
    return counts


def in_vocabulary(sents, vocab):
    """The sentences with every word outside ``vocab`` replaced by ``<unk>`` (a cut vocabulary)."""
    known = set(vocab)
    return [[w if w in known else UNK for w in words] for words in sents]


def adjusted_counts(sents, order, vocab):
    """Kneser-Ney's adjusted counts {n: {ngram: a}}: the raw count at the highest order and for
    n-grams starting with <s> (nothing precedes them); below, the number of distinct words seen
    just before the n-gram. Every unigram of ``vocab`` but <s> is listed (0 if never seen); <s> has 0.
    """
    raw = count_ngrams(sents, order)
    adjusted = {}
    for n in range(1, order + 1):
        if n == order:
            adjusted[n] = dict(raw[n])
            continue
        left = defaultdict(set)
        for gram in raw[n + 1]:
            left[gram[1:]].add(gram[0])
        adjusted[n] = {gram: (c if gram[0] == BOS else len(left[gram])) for gram, c in raw[n].items()}
    for token in vocab:
        if token != BOS:
            adjusted[1].setdefault((token,), 0)
    adjusted[1][(BOS,)] = 0
    return adjusted


def count_of_counts(counts):
    """t[k]: how many of ``counts`` (a dict of n-gram -> count) equal k."""
    return Counter(counts.values())


def mkn_discounts(adjusted):
    """Chen & Goodman's (eq. 26) D1, D2, D3+ for each order, from its adjusted counts:
    D_k = k - (k+1) Y t_{k+1} / t_k with Y = t_1 / (t_1 + 2 t_2). None for an order where they
    cannot be estimated (some t_k, k = 1..3, is zero, or some D_k lies outside [0, k])."""
    discounts = {}
    for n, counts in adjusted.items():
        t = count_of_counts(counts)
        if any(t[k] == 0 for k in (1, 2, 3)):
            discounts[n] = None
            continue
        y = t[1] / (t[1] + 2 * t[2])
        d = [k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3)]
        discounts[n] = d if all(0 <= d[k - 1] <= k for k in (1, 2, 3)) else None
    return discounts


def kn_discounts(adjusted):
    """Ney et al.'s single discount per order, D = t_1 / (t_1 + 2 t_2) over its adjusted counts;
    None for an order without adjusted counts of 1."""
    discounts = {}
    for n, counts in adjusted.items():
        t = count_of_counts(counts)
        discounts[n] = t[1] / (t[1] + 2 * t[2]) if t[1] else None
    return discounts


def mkn(sents, order, vocab, discounts=None, prune=None):
    """Interpolated modified Kneser-Ney as KenLM estimates it: {ngram: (log10 p, log10 backoff)}.

    ``vocab`` lists every token (specials included); unigrams of words never seen get the
    interpolated mass only. ``discounts`` (one (D1, D2, D3+) per order, e.g. those the model
    recorded) replaces the estimates of ``mkn_discounts``. ``prune`` (thresholds per order, lmplz's
    ``--prune``) drops the n-grams of order >= 2 whose raw count is at most their order's
    threshold, and gives their whole adjusted count to the context's interpolation weight (lmplz's
    AddRight: gamma(h) = (sum of kept D(a) + sum of dropped a) / sum of a); discounts come from
    all the n-grams.
    """
    adjusted = adjusted_counts(sents, order, vocab)
    if discounts is None:
        discounts = [mkn_discounts(adjusted)[n] for n in range(1, order + 1)]
        if None in discounts:
            raise ValueError("modified Kneser-Ney discounts cannot be estimated here: give them")

    def discount(n, a):
        d1, d2, d3 = discounts[n - 1]
        return {0: 0.0, 1: d1, 2: d2}.get(a, d3)

    def dropped(gram):
        return prune is not None and len(gram) > 1 and raw[len(gram)][gram] <= prune[len(gram) - 1]

    raw = count_ngrams(sents, order) if prune is not None else None
    return _interpolated_absolute_discounting(adjusted, order, vocab, discount, dropped)


def kneser_ney(sents, order, vocab, discounts=None):
    """Interpolated Kneser-Ney with one discount per order: modified Kneser-Ney with D1 = D2 = D3+.

    ``discounts`` (one D per order) replaces the estimates of ``kn_discounts``.
    """
    adjusted = adjusted_counts(sents, order, vocab)
    if discounts is None:
        discounts = [kn_discounts(adjusted)[n] for n in range(1, order + 1)]
        if None in discounts:
            raise ValueError("Kneser-Ney discounts cannot be estimated here: give them")
    return _interpolated_absolute_discounting(adjusted, order, vocab, lambda n, a: discounts[n - 1] if a else 0.0)


def _interpolated_absolute_discounting(adjusted, order, vocab, discount, dropped=None):
    """p(w | h) = (a(hw) - D(a(hw))) / sum_v a(hv) + gamma(h) p(w | h'), gamma(h) = sum_v D(a(hv)) /
    sum_v a(hv): the discounted mass, spread by the next lower order (uniform below unigrams).
    ``dropped(gram)``: the n-grams left out of the model, whose whole adjusted count goes to their
    context's gamma (lmplz's pruning)."""
    dropped = dropped or (lambda gram: False)
    totals, gammas = {}, {}
    for n in range(1, order + 1):
        total = defaultdict(float)
        mass = defaultdict(float)
        for gram, a in adjusted[n].items():
            total[gram[:-1]] += a
            mass[gram[:-1]] += a if dropped(gram) else discount(n, a)
        totals[n] = total
        gammas[n] = {h: mass[h] / total[h] for h in total}

    uniform = 1.0 / (len(vocab) - 1)
    prob = {}
    for n in range(1, order + 1):
        for gram, a in adjusted[n].items():
            h = gram[:-1]
            u = (a - discount(n, a)) / totals[n][h]
            lower = uniform if n == 1 else prob[gram[1:]]
            prob[gram] = u + gammas[n][h] * lower
    return _table(prob, gammas, order, dropped)


def witten_bell(sents, order, vocab):
    """Interpolated Witten-Bell on raw counts: {ngram: (log10 p, log10 backoff)}.

    p(w | h) = (c(hw) + T(h) p(w | h')) / (c(h.) + T(h)), T(h) the number of distinct words seen
    after h, c(h.) the number of words seen after h; below unigrams the uniform distribution over
    the vocabulary without <s>. The backoff weight of h is T(h) / (c(h.) + T(h)).
    """
    counts = _with_vocabulary(count_ngrams(sents, order), vocab)
    following, types = _followers(counts)
    uniform = 1.0 / (len(vocab) - 1)
    prob, gammas = {}, {}
    for n in range(1, order + 1):
        gammas[n] = {h: types[h] / (following[h] + types[h]) for h in _contexts(counts[n])}
        for gram, c in counts[n].items():
            h = gram[:-1]
            lower = uniform if n == 1 else prob[gram[1:]]
            prob[gram] = (c + types[h] * lower) / (following[h] + types[h])
    return _table(prob, gammas, order)


def add_k(sents, order, vocab, k=1.0):
    """Add-k as a backoff model (SRILM's -addsmooth): {ngram: (log10 p, log10 backoff)}.

    A word seen after h gets (c(hw) + k) / (c(h.) + k V), V the vocabulary without <s>; the mass
    left, 1 - sum of those, goes to the words not seen after h in proportion to p(w | h'), so the
    backoff weight of h is that mass over sum_{w unseen after h} p(w | h') = 1 - sum_{w seen after h}
    p(w | h') (p(. | h') sums to one over the vocabulary without <s>). Unigrams are add-k over it.
    """
    counts = _with_vocabulary(count_ngrams(sents, order), vocab)
    following, following_types = _followers(counts)
    V = len(vocab) - 1
    prob, gammas = {}, {}
    for n in range(1, order + 1):
        for gram, c in counts[n].items():
            prob[gram] = (c + k) / (following[gram[:-1]] + k * V)
        if n > 1:
            seen, lower_seen = defaultdict(float), defaultdict(float)
            for gram in counts[n]:
                seen[gram[:-1]] += prob[gram]
                lower_seen[gram[:-1]] += prob[gram[1:]]
            gammas[n] = {h: 1.0 if following_types[h] == V else (1 - seen[h]) / (1 - lower_seen[h])
                         for h in seen}  # a context followed by every word leaves nothing to back off to
    return _table(prob, gammas, order)


def stupid_backoff(sents, order, vocab, alpha=0.4):
    """Stupid backoff (Brants et al. 2007): {ngram: (log10 S, log10 backoff)}.

    S(w | h) = c(hw) / c(h.) for hw seen, alpha S(w | h') otherwise (the backoff weight alpha of
    every h seen before a word); S(w) = c(w) / N for unigrams, N the number of tokens (</s>
    included), with words never seen (<unk> included) scored as if seen once.
    """
    counts = _with_vocabulary(count_ngrams(sents, order), vocab)
    following, _ = _followers(counts)
    prob, gammas = {}, {}
    for n in range(1, order + 1):
        for gram, c in counts[n].items():
            prob[gram] = (max(c, 1) if n == 1 else c) / following[gram[:-1]]
        gammas[n] = {h: alpha for h in _contexts(counts[n])}
    return _table(prob, gammas, order)


def _with_vocabulary(counts, vocab):
    """``counts`` with every unigram of ``vocab`` listed (count 0 if never seen; <s> is never counted)."""
    for token in vocab:
        counts[1].setdefault((token,), 0)
    return counts


def _followers(counts):
    """c(h.) and T(h) of every context h: the words seen after it, and the distinct ones."""
    following, types = Counter(), Counter()
    for grams in counts.values():
        for gram, c in grams.items():
            following[gram[:-1]] += c
            types[gram[:-1]] += c > 0
    return following, types


def _contexts(grams):
    return {gram[:-1] for gram in grams}


def _table(prob, gammas, order, dropped=None):
    """{ngram: (log10 p, log10 backoff)} as an ARPA file holds it: <s> has probability 1, a backoff
    weight is gamma of the n-gram as a context (1 if nothing follows it; none at the top order);
    the n-grams ``dropped`` (a predicate) are left out."""
    dropped = dropped or (lambda gram: False)
    prob = {**prob, (BOS,): 1.0}
    model = {}
    for gram, p in prob.items():
        n = len(gram)
        if dropped(gram):
            continue
        backoff = gammas[n + 1].get(gram, 1.0) if n < order else 1.0
        model[gram] = (min(0.0, math.log10(p)), math.log10(backoff))
    return model


def backoff_logprob(model, order, history, word):
    """log10 p(word | history) in an ARPA-style model {ngram: (log10 p, log10 backoff)}."""
    history = tuple(history)[-(order - 1):] if order > 1 else ()
    for start in range(len(history) + 1):
        gram = history[start:] + (word,)
        if gram in model:
            backoffs = sum(model.get(history[s:], (0.0, 0.0))[1] for s in range(start))
            return model[gram][0] + backoffs
    raise KeyError(word)


def sentence_logprob(model, order, words, vocab):
    """log10 p of a sentence (</s> included), unknown words scored as <unk>."""
    history = [BOS]
    total = 0.0
    for w in list(words) + [EOS]:
        w = w if w in vocab else UNK
        total += backoff_logprob(model, order, history, w)
        history.append(w)
    return total


def clip_grad_norm(grad, max_norm):
    """``grad`` scaled down to the global L2 norm ``max_norm`` when above it, as
    torch.nn.utils.clip_grad_norm_ does (coefficient max_norm / (norm + 1e-6), capped at 1), in
    float64; returns (clipped gradient, norm before clipping)."""
    grad = np.asarray(grad, np.float64)
    norm = math.sqrt(sum(g * g for g in grad.tolist()))
    return grad * min(1.0, max_norm / (norm + 1e-6)), norm


def sgd(params, grads, lrs):
    """``params`` after the steps theta <- theta - lr g, one per (gradient, learning rate), in float64."""
    theta = np.asarray(params, np.float64).copy()
    for grad, lr in zip(grads, lrs):
        theta -= lr * np.asarray(grad, np.float64)
    return theta


def adam(params, grads, lrs, beta1=0.9, beta2=0.999, eps=1e-8):
    """``params`` after Adam's steps (Kingma & Ba 2015, Algorithm 1; torch.optim.Adam without weight
    decay or amsgrad), one per (gradient, learning rate), in float64; returns (params, m, v).

    m_t = beta1 m + (1 - beta1) g;  v_t = beta2 v + (1 - beta2) g^2;
    theta_t = theta - lr m_t / (1 - beta1^t) / (sqrt(v_t / (1 - beta2^t)) + eps).
    """
    theta = np.asarray(params, np.float64).copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, (grad, lr) in enumerate(zip(grads, lrs), 1):
        g = np.asarray(grad, np.float64)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta, m, v


def class_bigram_loglik(contexts, targets, word_class):
    """Log-likelihood of p(w | v) = p(c(w) | v) p(w | c(w)), counted from the (v, w) pairs one by one."""
    from collections import Counter

    pairs = Counter()
    context_count, context_class, word_count, class_count = Counter(), Counter(), Counter(), Counter()
    for v, w in zip(contexts.tolist(), targets.tolist()):
        c = int(word_class[w])
        pairs[v, w] += 1
        context_count[v] += 1
        context_class[v, c] += 1
        word_count[w] += 1
        class_count[c] += 1
    total = 0.0
    for (v, w), n in pairs.items():
        c = int(word_class[w])
        total += n * (math.log(context_class[v, c] / context_count[v]) + math.log(word_count[w] / class_count[c]))
    return total


# Relative-entropy pruning (Stolcke 1998), as SRILM's Ngram::pruneProbs and recomputeBOWs do it

PROB_EPSILON = 3e-6


def _clip(x):
    return 0.0 if -PROB_EPSILON < x < 0 else x


def context_logprob(model, order, h):
    """log10 P(h) by the chain rule, the first word <s> counted as </s> (SRILM's contextProb)."""
    total = 0.0
    for i, w in enumerate(h):
        if i == 0 and w == BOS:
            w = EOS
        total += backoff_logprob(model, order, h[:i], w)
    return total


def _groups(model):
    """{context: [n-grams of ``model`` with that context]}, in the model's order."""
    groups = defaultdict(list)
    for gram in model:
        if len(gram) > 1:
            groups[gram[:-1]].append(gram)
    return groups


def perplexity_change(model, order, gram, siblings, history=None):
    """10^dH - 1 of removing ``gram`` alone (dH: SRILM's relative entropy change; ``siblings``: every
    n-gram of its context), or None where the context's backoff weight cannot be formed."""
    h, w = gram[:-1], gram[-1]
    numerator = _clip(1.0 - sum(10 ** model[g][0] for g in siblings))
    denominator = _clip(1.0 - sum(10 ** backoff_logprob(model, order, h[1:], g[-1]) for g in siblings))
    if not (numerator >= 0 and denominator > 0):
        return None
    context = history[h] if history is not None and h in history else context_logprob(model, order, h)
    p = 10 ** model[gram][0]
    backed = backoff_logprob(model, order, h[1:], w)
    new_bow = math.log10(numerator + p) - math.log10(denominator + 10 ** backed)
    delta_h = -(10 ** context) * (p * (backed + new_bow - model[gram][0]) + numerator * (new_bow - model[h][1]))
    return math.expm1(delta_h * math.log(10))


def merge_change(p, held):
    """10^dH - 1 of merging a word of probability ``p`` into <unk> holding ``held``: dH = (p + held)
    H2(p / (p + held)) in log10, the information that told them apart."""
    both = p + held
    delta_h = -((p * math.log10(p / both) if p > 0 else 0.0) + (held * math.log10(held / both) if held > 0 else 0.0))
    return math.expm1(delta_h * math.log(10))


def entropy_prune(model, order, threshold, history=None, prune_unigrams=False):
    """A model {ngram: (log10 p, log10 backoff)} pruned at ``threshold``: for each order from the highest
    down, every n-gram's change is computed on the original model and those below the threshold go
    at once, unless a kept longer n-gram extends them; then the backoff weights are recomputed from
    the lowest order up over the n-grams kept. ``history``: {context: log10 P(h)} to use instead of
    the chain rule where it has the context. Returns the pruned {ngram: (log10 p, log10 backoff)},
    without blank n-grams."""
    groups = _groups(model)
    current = dict(model)
    for n in range(order, 1, -1):
        extended = {g[:-1] for g in current if len(g) == n + 1}
        gone = []
        for h, siblings in groups.items():
            if len(h) != n - 1:
                continue
            for gram in siblings:
                change = perplexity_change(model, order, gram, siblings, history)
                if threshold > 0 and change is not None and change < threshold and gram not in extended:
                    gone.append(gram)
        for gram in gone:
            del current[gram]
    if prune_unigrams:  # the least probable first, each merged into what <unk> holds by then
        used = {w for g in current if len(g) > 1 for w in g}
        words = [g for g in current if len(g) == 1 and g[0] not in (UNK, BOS, EOS) and g[0] not in used]
        words.sort(key=lambda g: 10 ** current[g][0])  # stable: ties stay in the model's order
        held = 10 ** current[(UNK,)][0]
        for gram in words:
            p = 10 ** current[gram][0]
            if not (threshold > 0 and merge_change(p, held) < threshold):
                break
            held += p
            del current[gram]
        current[(UNK,)] = (math.log10(held), current[(UNK,)][1])
    groups = _groups(current)
    for n in range(1, order):
        for h in [g for g in current if len(g) == n]:
            children = groups.get(h, [])
            if not children:
                current[h] = (current[h][0], 0.0)
                continue
            numerator = _clip(1.0 - sum(10 ** current[g][0] for g in children))
            denominator = _clip(1.0 - sum(10 ** backoff_logprob(current, order, h[1:], g[-1]) for g in children))
            if numerator < PROB_EPSILON and denominator < PROB_EPSILON:
                bow = 0.0
            elif numerator > 0 and denominator > 0:
                bow = max(math.log10(numerator) - math.log10(denominator), -99.0)
            else:
                bow = -99.0
            current[h] = (current[h][0], bow)
    return current


# Quantisation and bit packing


def kenlm_bins(values, levels):
    """KenLM's MakeBins (lm/quantize.cc): sorted values in ``levels`` runs of equal length, each at its
    mean; an empty run repeats the centre before it."""
    values = sorted(float(v) for v in values)
    centres = []
    start = 0
    for i in range(levels):
        finish = len(values) * (i + 1) // levels
        if finish == start:
            centres.append(centres[-1] if centres else float("-inf"))
        else:
            centres.append(sum(values[start:finish]) / (finish - start))
        start = finish
    return centres


def pack_bits(values, bits):
    """The values as one Python integer of ``bits`` bits each, value i at bit i*bits, cut into 64-bit words."""
    whole = 0
    for i, v in enumerate(values):
        whole |= int(v) << (i * bits)
    words = (len(values) * bits + 63) // 64
    return [(whole >> (64 * k)) & ((1 << 64) - 1) for k in range(words)]
