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


def mkn(sents, order, vocab):
    """Interpolated modified Kneser-Ney as KenLM estimates it: {ngram: (log10 p, log10 backoff)}.

    ``vocab`` lists every token (specials included); unigrams of words never seen get the
    interpolated mass only.
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

    totals, gammas = {}, {}
    for n in range(1, order + 1):
        total = defaultdict(float)
        mass = defaultdict(float)
        for gram, a in adjusted[n].items():
            total[gram[:-1]] += a
            if a > 0:
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
