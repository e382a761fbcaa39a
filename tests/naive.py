"""Slow, obviously-correct versions of the n-gram machinery, to check the kernels against.

Everything here works on Python tuples and dicts, one n-gram at a time, written from the
definitions (Chen & Goodman 1998; KenLM's conventions for <s>, </s> and <unk>) rather than from
lmtool's code.
"""

import math
import re
from collections import Counter, defaultdict

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


def mkn(sents, order, vocab, prune=None):
    """Interpolated modified Kneser-Ney as KenLM estimates it: {ngram: (log10 p, log10 backoff)}.

    ``vocab`` lists every token (specials included); unigrams of words never seen get the
    interpolated mass only. ``prune`` (thresholds per order, lmplz's ``--prune``) drops the
    n-grams of order >= 2 whose raw count is at most their order's threshold, and gives their
    whole adjusted count to the context's interpolation weight (lmplz's AddRight: gamma(h) =
    (sum of kept D(a) + sum of dropped a) / sum of a); discounts come from all the n-grams.
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

    discounts = {}
    for n in range(1, order + 1):
        t = Counter(min(a, 5) for a in adjusted[n].values())
        y = t[1] / (t[1] + 2 * t[2])
        discounts[n] = [0.0] + [k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3)]

    def discount(n, a):
        return discounts[n][min(a, 3)]

    def dropped(gram):
        return prune is not None and len(gram) > 1 and raw[len(gram)][gram] <= prune[len(gram) - 1]

    totals, gammas = {}, {}
    for n in range(1, order + 1):
        total = defaultdict(float)
        mass = defaultdict(float)
        for gram, a in adjusted[n].items():
            total[gram[:-1]] += a
            if dropped(gram):
                mass[gram[:-1]] += a
            elif a > 0:
                mass[gram[:-1]] += discount(n, a)
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
    prob[(BOS,)] = 1.0
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
