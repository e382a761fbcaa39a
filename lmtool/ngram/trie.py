"""The n-gram trie searched in NumPy: scoring and next-token distributions that need no compilation.

For small inputs, where Numba's start-up (``lmtool.compiled``) would be most of the time, these
answer what the kernels of ``kernels.ngram_hash`` and ``kernels.ngram_query`` answer, with the same
numbers: the same lookups, and float64 sums in the same order. Trie arrays are as in
``kernels.ngram_query``: ``child_start[g]:child_start[g+1]`` holds node g's children, sorted by
``word``, so finding a child is a binary search over that range (``child_start`` may be the array,
or for a few searches ``ChildStarts``). Sentences are scored side by side, position by position,
each search vectorised over the sentences that reach it.
"""

import numpy as np

FEW = 8
"""Below this many searches at once, each is a ``searchsorted`` on its range (NumPy's per-call
cost then beats a vectorised search's per-round cost)."""


class ChildStarts:
    """``child_start`` of a few nodes, computed when asked for from the stored children counts (as
    ``NgramModel`` keeps them: one byte per node, counts of 255 and more aside), for inputs too small
    to pay for the whole array (8 bytes per node: 8.6 MB for the KJV 5-gram, a pass over the trie).

    ``first``: the node id of the first child (the number of unigrams); ``small``: uint8[C] counts;
    ``big_at``, ``big``: int64[k] the nodes with 255 children or more, and their counts. Indexed like
    the array, by a node id or an array of them (each a sum over at most ``BLOCK`` counts).
    """

    BLOCK = 1024

    def __init__(self, first, small, big_at, big):
        self.first, self.small = int(first), small
        order = np.argsort(big_at, kind="stable")
        self.big_at = np.asarray(big_at, np.int64)[order]
        self.extra = (np.asarray(big, np.int64) - small[big_at].astype(np.int64))[order]
        sums = (np.add.reduceat(small, np.arange(0, len(small), self.BLOCK), dtype=np.int64) if len(small)
                else np.zeros(0, np.int64))
        np.add.at(sums, self.big_at // self.BLOCK, self.extra)
        self.prefix = np.concatenate([[0], np.cumsum(sums)]).astype(np.int64)

    def __len__(self):
        return len(self.small) + 1

    def _start(self, g):
        block = g // self.BLOCK
        at = block * self.BLOCK
        lo, hi = np.searchsorted(self.big_at, (at, g))
        return (self.first + int(self.prefix[block]) + int(self.small[at:g].sum(dtype=np.int64))
                + int(self.extra[lo:hi].sum()))

    def __getitem__(self, index):
        if np.ndim(index) == 0:
            return self._start(int(index))
        index = np.asarray(index)
        return np.array([self._start(int(g)) for g in index.ravel()], np.int64).reshape(index.shape)


def find_children(parents, words, child_start, word):
    """int64[k]: the child of each ``parents[i]`` whose word is ``words[i]``, or -1 (binary search).

    parents: int64[k] node ids; words: int[k]; child_start, word: the trie's arrays.
    """
    parents = np.asarray(parents, np.int64)
    words = np.asarray(words, np.int64)
    lo = child_start[parents]
    hi = child_start[parents + 1]
    if len(parents) < FEW:
        out = np.full(len(parents), -1, np.int64)
        for i in range(len(parents)):
            a, b = int(lo[i]), int(hi[i])
            at = a + int(np.searchsorted(word[a:b], words[i]))
            if at < b and word[at] == words[i]:
                out[i] = at
        return out
    end = hi.copy()
    last = len(word) - 1
    while True:
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) >> 1
        below = word[np.minimum(mid, last)] < words
        lo = np.where(open_ & below, mid + 1, lo)
        hi = np.where(open_ & ~below, mid, hi)
    found = (lo < end) & (word[np.minimum(lo, last)] == words)
    return np.where(found, lo, -1)


def score_sentences(ids, lengths, order, child_start, word, prob, backoff, bos, eos):
    """What ``kernels.ngram_hash.score_sentences_hashed`` returns and writes, found in the trie.

    ids: int32[n] word ids of all sentences back to back; lengths: int32[S] words per sentence.
    Returns (float64[S] sentence totals, float32[n+S] log10 p of each word then ``</s>``, int8[n+S]
    n-gram length per token). Each token's log10 p is the longest n-gram's, plus the backoffs of the
    longer contexts that exist (added shortest first, in float64, as the kernel adds them).
    """
    S = len(lengths)
    n = len(ids)
    token = np.empty(n + S, np.float32)
    ngram_length = np.empty(n + S, np.int8)
    totals = np.zeros(S, np.float64)
    if S == 0:
        return totals, token, ngram_length
    max_context = order - 1
    rows = np.argsort(-lengths.astype(np.int64), kind="stable")  # longest first: the active rows are a prefix
    steps = lengths[rows].astype(np.int64) + 1
    starts = np.zeros(S, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    src = starts[rows]  # where each row's words start in ids
    dst = src + rows  # where its tokens start in the output (one </s> per earlier sentence)
    context = np.zeros((S, max(max_context, 1)), np.int64)
    context[:, 0] = bos
    n_context = np.full(S, 1 if max_context > 0 else 0, np.int64)
    found = np.empty((S, order), np.int64)
    total = np.zeros(S, np.float64)
    active = S
    for j in range(int(steps[0])):
        while active and steps[active - 1] <= j:
            active -= 1
        a = slice(0, active)
        w = np.full(active, eos, np.int64)
        inside = j < steps[a] - 1
        w[inside] = ids[src[a][inside] + j]
        found[a, 0] = w
        m = np.ones(active, np.int64)
        searching = np.arange(active)
        for k in range(max_context):
            searching = searching[n_context[searching] > k]
            if not len(searching):
                break
            g = find_children(context[searching, k], w[searching], child_start, word)
            hit = g >= 0
            searching = searching[hit]
            found[searching, k + 1] = g[hit]
            m[searching] = k + 2
        lp = prob[found[np.arange(active), m - 1]].astype(np.float64)
        for k in range(max_context):
            add = (k >= m - 1) & (k < n_context[a])
            if add.any():
                lp[add] += backoff[context[:active][add, k]].astype(np.float64)
        n_context[a] = np.minimum(m, max_context)
        context[a, :max_context] = found[a, :max_context]
        at = dst[a] + j
        token[at] = lp
        ngram_length[at] = m
        total[a] += lp
    totals[rows] = total
    return totals, token, ngram_length


def context_nodes(history, order, child_start, word):
    """``kernels.ngram_query.context_nodes`` in NumPy: nodes of the suffixes of ``history`` (int32[h],
    most recent last) that the model knows, the last word's first, at most order - 1 of them."""
    nodes = []
    h = len(history)
    for k in range(min(order - 1, h)):
        node = int(history[h - 1 - k])
        for j in range(h - k, h):
            node = int(find_children([node], [history[j]], child_start, word)[0])
            if node < 0:
                return np.array(nodes, np.int64)
        nodes.append(node)
    return np.array(nodes, np.int64)


def next_logprobs(contexts, vocab_size, child_start, word, prob, backoff, bos, out):
    """``kernels.ngram_query.next_logprobs`` in NumPy: log10 p(w | context) for every word into
    out: float64[V], the same float64 sums (``<s>`` gets -inf)."""
    out[:] = prob[:vocab_size]
    for c in contexts:
        out += np.float64(backoff[c])
        lo, hi = child_start[c], child_start[c + 1]
        out[word[lo:hi]] = prob[lo:hi]
    out[bos] = -np.inf
