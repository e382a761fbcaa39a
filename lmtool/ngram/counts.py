"""N-gram counts of every order 1..N, as the levels of a trie sorted by (parent, word)."""

from dataclasses import dataclass

import numpy as np

from ..vocab import BOS, EOS


@dataclass
class NgramCounts:
    """Raw counts of every n-gram seen, order by order (index 0 holds unigrams).

    For order n (list index n-1), arrays of length M_n: ``parent[n-1]`` the node of the first n-1
    words in order n-1 (-1 for unigrams), ``word[n-1]`` the last word, ``count[n-1]`` occurrences,
    ``suffix[n-1]`` the node in order n-1 of the last n-1 words (-1 for unigrams). Unigram node i
    is word id i, for every word of the vocabulary, seen or not. N-grams never cross a sentence
    boundary; ``<s>`` appears only first, ``</s>`` only last.
    """

    parent: list
    word: list
    count: list
    suffix: list
    vocab_size: int

    @property
    def order(self):
        return len(self.word)

    def sizes(self):
        """Number of distinct n-grams of each order."""
        return [len(w) for w in self.word]

    def starts_with_bos(self, n):
        """bool[M_n]: whether each n-gram of order n begins with ``<s>``."""
        flag = np.arange(self.vocab_size) == BOS
        for k in range(1, n):
            flag = flag[self.parent[k]]
        return flag

    def ends_with(self, n, word_id):
        """bool[M_n]: whether each n-gram of order n ends with ``word_id``."""
        return self.word[n - 1] == word_id

    def continuation_counts(self, n):
        """int64[M_n]: distinct words seen before each n-gram of order n (n < N), ``<s>`` included."""
        return np.bincount(self.suffix[n], minlength=len(self.word[n - 1])).astype(np.int64)

    def context_totals(self, n):
        """int64[M_{n-1}]: for each context node of order n-1, the summed counts of its children."""
        if n == 1:
            return np.array([self.count[0].sum()], np.int64)
        return np.bincount(self.parent[n - 1], weights=self.count[n - 1],
                           minlength=len(self.word[n - 2])).astype(np.int64)


def count_ngrams(ids, lengths, order, vocab_size, progress=None):
    """Count all n-grams of orders 1..order in sentences given as ids.

    ids: int32[n] word ids of all sentences back to back; lengths: int32[S] words per sentence.
    ``progress(k)`` is called after each order. Returns ``NgramCounts``.
    """
    from ..kernels.ngram_count import extend_order, pad_sentences, unigram_counts

    stream = pad_sentences(np.ascontiguousarray(ids, np.int32), np.ascontiguousarray(lengths, np.int32),
                           BOS, EOS)
    unigrams = np.arange(vocab_size, dtype=np.int32)
    counts = NgramCounts(parent=[np.full(vocab_size, -1, np.int32)], word=[unigrams],
                         count=[unigram_counts(stream, vocab_size, BOS)],
                         suffix=[np.full(vocab_size, -1, np.int32)], vocab_size=vocab_size)
    if progress:
        progress(1)
    nodes = stream
    for n in range(2, order + 1):
        nodes, parent, word, count, suffix = extend_order(stream, nodes, len(counts.word[-1]), BOS)
        counts.parent.append(parent)
        counts.word.append(word)
        counts.count.append(count)
        counts.suffix.append(suffix)
        if progress:
            progress(1)
    return counts
