"""The interface every model kind answers, so scoring, perplexity and generation are written once.

A model scores batches of sentences given as id arrays, and, for generation, keeps a batch of
states that it can turn into next-token distributions and advance by one token.
"""

from dataclasses import dataclass

import numpy as np

from .errors import LmtoolError


@dataclass
class Scores:
    """Scores of a batch of S sentences holding n words in all.

    ``sentence``: float64[S] total log10 probability of each sentence (its ``</s>`` included);
    ``token``: float32[n + S] log10 p of each word then ``</s>``, sentence after sentence;
    ``ngram_length``: int8[n + S] n-gram length used per token (n-gram models; None otherwise).
    """

    sentence: np.ndarray
    token: np.ndarray
    ngram_length: np.ndarray = None


def check_batch(ids, lengths, vocab_size):
    """Validate a batch before it reaches a kernel: int32 ids in [0, V), lengths summing to len(ids)."""
    ids = np.ascontiguousarray(ids, np.int32)
    lengths = np.ascontiguousarray(lengths, np.int32)
    if ids.ndim != 1 or lengths.ndim != 1:
        raise ValueError("ids and lengths must be one-dimensional")
    if (lengths < 0).any() or int(lengths.sum(dtype=np.int64)) != len(ids):
        raise ValueError(f"sentence lengths sum to {int(lengths.sum())}, but there are {len(ids)} ids")
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size})")
    return ids, lengths


def check_ids(ids, vocab_size):
    """int32 ids, refused (ValueError) unless all lie in [0, V): a kernel must never index past its tables."""
    ids = np.ascontiguousarray(ids, np.int32)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size})")
    return ids


class LanguageModel:
    """Base of ``NgramModel`` and ``RecurrentModel``.

    Subclasses set ``kind``, ``vocab`` (a ``Vocabulary``), ``meta`` (dict saved in the model file)
    and ``normalized`` (False where scores are not probabilities), and implement ``begin``,
    ``distribution``, ``advance``, ``save``, and either ``score_ids`` or the pair below.

    Two scoring paths (``lmtool.compiled``): ``score_ids_compiled`` runs Numba kernels, which pay
    for their start-up on large batches; ``score_ids_numpy`` needs no compilation, for small ones.
    ``score_ids`` checks the batch and asks ``numpy_pays`` which to take; ``prepare`` tells the
    model how much text is coming, so that it can take the kernels' start-up at once. A model kind
    made of others (a mixture) scores through their ``score_ids`` and so takes their paths.
    """

    kind = None
    normalized = True
    stream = False
    """Whether the model reads a file as one running text (``train --stream``): each line is scored in
    the context of the lines before it, ``</s>`` standing for the newline."""

    def score_ids(self, ids, lengths):
        """``Scores`` of sentences given as ids (int32[n]) and words per sentence (int32[S]), each on its
        own (a stream model's each as the first line of a text: ``score_continuing`` reads them as one)."""
        ids, lengths = check_batch(ids, lengths, len(self.vocab))
        if self.numpy_pays(ids, lengths):
            return self.score_ids_numpy(ids, lengths)
        return self.score_ids_compiled(ids, lengths)

    def score_continuing(self, ids, lengths, context=None):
        """``(Scores, context)`` of lines that continue a text: ``context`` is what this returned for
        the lines before, None at a file's start. A stream model scores each line in the context of
        the lines before it; a model that scores each line on its own ignores ``context`` (and
        returns None), which makes this its ``score_ids``."""
        return self.score_ids(ids, lengths), None

    def numpy_pays(self, ids, lengths):
        """Whether a checked batch goes to ``score_ids_numpy`` (default: never)."""
        return False

    def score_ids_numpy(self, ids, lengths):
        """``score_ids`` for a checked batch, in NumPy: the kernels' numbers without compiling them."""
        raise NotImplementedError

    def score_ids_compiled(self, ids, lengths):
        """``score_ids`` for a checked batch, through the Numba kernels."""
        raise NotImplementedError

    def prepare(self, input_bytes):
        """About ``input_bytes`` of text will be scored (None: unknown): load what that calls for."""

    def begin(self, prefixes):
        """Generation state for a batch: one sentence per prefix (int32 id arrays, may be empty)."""
        raise NotImplementedError

    def distribution(self, state):
        """float64[B, V]: p(next token | state) for each row; zero for ``<s>``."""
        raise NotImplementedError

    def advance(self, state, tokens):
        """The state after appending ``tokens`` (int32[B]) to each row."""
        raise NotImplementedError

    def save(self, path):
        raise NotImplementedError

    def worker(self):
        """A model to score with on another thread: shares the weights, owns its scratch space.

        ``self`` where scoring keeps no mutable state (n-gram models); recurrent networks reuse
        workspaces between calls, so they answer with a copy sharing the parameters.
        """
        return self

    # Conveniences for Python users, built on the methods above.

    def encode(self, text):
        """Ids and words per line of ``text`` (str, one sentence per line)."""
        data = text.encode("utf-8")
        if not data.endswith(b"\n"):
            data += b"\n"
        return self.vocab.encode_bytes(data)

    def score(self, sentence):
        """Total log10 probability of one sentence (``</s>`` included), like KenLM's ``model.score``."""
        ids, lengths = self.encode(sentence.replace("\n", " "))
        return float(self.score_ids(ids, lengths).sentence.sum())

    def check_normalized(self, path=None):
        """Refuse to compute perplexity from scores that are not probabilities (stupid backoff's)."""
        if not self.normalized:
            raise LmtoolError(f"its {self.meta.get('smoothing')} scores are not probabilities (they do not sum "
                              "to one), so perplexity is meaningless; use 'lmtool score' for the raw scores", path)

    def perplexity(self, text):
        """Perplexity of ``text`` (one sentence per line; a stream model's one running text), OOVs
        included, as KenLM reports it."""
        from .evaluate import Totals

        self.check_normalized()
        ids, lengths = self.encode(text)
        totals = Totals.of(self.score_continuing(ids, lengths)[0], ids, lengths)
        return totals.summary()["perplexity"]

    def next_token_probs(self, prefix=""):
        """p(token | <s> prefix) for every token of the vocabulary (float64[V])."""
        ids, _ = self.encode(prefix.replace("\n", " "))
        return self.distribution(self.begin([ids]))[0]

    @property
    def vocab_size(self):
        return len(self.vocab)

