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


def member_logprob(model, order, vocab, mixture_size, history, word):
    """log10 p_i(word | history) of one mixture member over the mixture's vocabulary: words it lacks
    are its <unk>, whose probability is shared equally among the ``mixture_size - len(vocab) + 1``
    mixture words it stands for (the ones it lacks and <unk> itself)."""
    lacking = mixture_size - len(vocab) + 1
    history = [w if w in vocab else UNK for w in history]
    mapped = word if word in vocab else UNK
    share = math.log10(lacking) if mapped == UNK else 0.0
    return backoff_logprob(model, order, history, mapped) - share


def static_mixture(members, weights):
    """SRILM's static interpolation, from the definition: members are (model {ngram: (log10 p, log10
    backoff)}, order, vocabulary set). Every n-gram of any member gets log10 sum_i w_i p_i(w | h);
    then each context's backoff is (1 - sum of its n-grams' p) / (1 - sum of what the merged lower
    orders give the same words), lowest order first. Returns the merged {ngram: (log10 p, log10 b)}."""
    vocab = set().union(*(v for _, _, v in members))
    order = max(o for _, o, _ in members)
    grams = set().union(*(m.keys() for m, _, _ in members))
    merged = {}
    for gram in grams:
        total = sum(w * 10.0 ** member_logprob(m, o, v, len(vocab), gram[:-1], gram[-1])
                    for (m, o, v), w in zip(members, weights) if w > 0)
        merged[gram] = [-99.0 if gram == (BOS,) else math.log10(total), 0.0]
    following = defaultdict(list)
    for gram in merged:
        following[gram[:-1]].append(gram[-1])
    for n in range(1, order):
        for context in [g for g in merged if len(g) == n]:
            words = following[context]
            kept = sum(10.0 ** merged[context + (w,)][0] for w in words)
            lower = sum(10.0 ** backoff_logprob(merged, order, context[1:], w) for w in words)
            merged[context][1] = math.log10((1.0 - kept) / (1.0 - lower))
    return {gram: tuple(v) for gram, v in merged.items()}


def levenshtein(a, b):
    """Word edit distance between the sequences ``a`` and ``b`` (substitutions, insertions, deletions)."""
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[len(a)][len(b)]
