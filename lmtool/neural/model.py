"""RecurrentModel: a trained recurrent network behind the ``LanguageModel`` interface.

Sentences are scored independently, each from a zero state fed ``<s>``, as they were trained; for
speed they are packed back to back into the columns of a batch, with the state reset at every
sentence start, so no time step is wasted on padding. A stream model (``train --stream``, ``meta
["stream"]``) reads a file as one text (``score_continuing``): its lines are scored one after the
other by a single stream whose state runs on, ``</s>`` being the newline, and its generator writes
running text; ``score_ids`` still scores each line on its own, as the first line of a text (n-best
rescoring and mixtures ask for that).
"""

import math

import numpy as np

from .. import modelfile
from ..errors import LmtoolError
from ..language_model import LanguageModel, Scores, check_batch, check_ids
from ..vocab import BOS, Vocabulary
from .batches import packed_sentences, sentence_stream, text_stream
from .config import NetworkConfig

LN10 = math.log(10.0)
SCORE_BATCH = 64
SCORE_SEGMENT = 128
STREAM_SEGMENT = 1024
"""Steps per call when a stream model scores its single stream."""


class RecurrentModel(LanguageModel):
    """A ``RecurrentNetwork`` with its vocabulary and the metadata saved beside it (history...)."""

    kind = "recurrent"

    def __init__(self, vocab, network, meta):
        self.vocab = vocab
        self.network = network
        self.config = network.config
        self.meta = meta

    @classmethod
    def parts(cls):
        """(configuration class, network class) of this model kind."""
        from .network import RecurrentNetwork

        return NetworkConfig, RecurrentNetwork

    @classmethod
    def create(cls, vocab, config, classes=None, seed=0, meta=None):
        return cls(vocab, cls.parts()[1](config, classes, seed=seed), dict(meta or {}))

    # The model file

    def file_contents(self, extra_meta=None, extra_arrays=None):
        """(meta, arrays) of the model file: config, vocabulary, classes, weights, and extras."""
        meta = dict(self.meta, level=self.vocab.level, config=self.config.to_dict(), **(extra_meta or {}))
        arrays = {"vocab": np.frombuffer(self.vocab.to_bytes(), np.uint8), "params": self.network.params}
        if self.network.classes is not None:
            arrays.update({f"classes.{k}": v for k, v in self.network.classes.arrays().items()})
        arrays.update(extra_arrays or {})
        return meta, arrays

    def save(self, path):
        meta, arrays = self.file_contents()
        modelfile.write(path, self.kind, meta, arrays)

    @classmethod
    def from_file(cls, model, writable=False):
        """Rebuild from an opened ``ModelFile`` of this kind."""
        from .classes import WordClasses

        config_class, network_class = cls.parts()
        try:
            config = config_class.from_dict(model.meta["config"])
            vocab = Vocabulary.from_bytes(model["vocab"], model.meta.get("level", "word"))
            classes = None
            if config.softmax == "class":
                classes = WordClasses.from_arrays(model["classes.order"], model["classes.start"])
            params = np.array(model["params"]) if writable else model["params"]
            network = network_class(config, classes, params=params)
        except (KeyError, ValueError, TypeError) as err:
            raise LmtoolError(f"damaged {cls.kind} model ({err}); rebuild it", model.path) from None
        if len(vocab) != config.vocab_size:
            raise LmtoolError(f"damaged {cls.kind} model (vocabulary of {len(vocab)} tokens, network of "
                              f"{config.vocab_size}); rebuild it", model.path)
        return cls(vocab, network, model.meta)

    @property
    def stream(self):
        """Whether this model was trained on running text (``train --stream``)."""
        return bool(self.meta.get("stream", False))

    # Scoring

    def score_ids(self, ids, lengths, batch=SCORE_BATCH, segment=SCORE_SEGMENT):
        ids, lengths = check_batch(ids, lengths, len(self.vocab))
        n = len(ids) + len(lengths)
        token = np.zeros(n, np.float32)
        if len(lengths):
            batch = max(1, min(batch, len(lengths)))
            x, y, reset = sentence_stream(ids, lengths)
            column, offset, column_lengths = packed_sentences(lengths, batch)
            starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
            col = np.repeat(column, lengths + 1)
            pos = np.repeat(offset - starts, lengths + 1) + np.arange(n)
            T = int(column_lengths.max())
            X = np.zeros((T, batch), np.int32)
            Y = np.full((T, batch), -1, np.int32)
            R = np.ones((T, batch), bool)
            X[pos, col], Y[pos, col], R[pos, col] = x, y, reset
            logp = np.empty((T, batch), np.float64)
            state = self.network.init_state(batch)
            for t in range(0, T, segment):
                chunk, state = self.network.log_probs(X[t:t + segment], Y[t:t + segment], state,
                                                      reset=np.ascontiguousarray(R[t:t + segment]))
                logp[t:t + segment] = chunk
            token = (logp[pos, col] / LN10).astype(np.float32)
        sentence = np.add.reduceat(token.astype(np.float64), np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])) \
            if len(lengths) else np.zeros(0)
        return Scores(sentence, token, None)

    def score_continuing(self, ids, lengths, context=None):
        """As ``LanguageModel.score_continuing``; a stream model's context is (the state after the lines
        before, the last token they ended with)."""
        if not self.stream:
            return super().score_continuing(ids, lengths, context)
        ids, lengths = check_batch(ids, lengths, len(self.vocab))
        if not len(lengths):
            return Scores(np.zeros(0), np.zeros(0, np.float32), None), context
        x, y, _ = text_stream(ids, lengths)
        state = self.network.init_state(1) if context is None else context[0]
        if context is not None:
            x[0] = context[1]
        logp = np.empty(len(y), np.float64)
        for t in range(0, len(y), STREAM_SEGMENT):
            part, state = self.network.log_probs(x[t:t + STREAM_SEGMENT, None], y[t:t + STREAM_SEGMENT, None], state)
            logp[t:t + STREAM_SEGMENT] = part[:, 0]
        token = (logp / LN10).astype(np.float32)
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        return Scores(np.add.reduceat(token.astype(np.float64), starts), token, None), (state, y[-1])

    def worker(self):
        network = type(self.network)(self.config, self.network.classes, params=self.network.params)
        return type(self)(self.vocab, network, self.meta)

    # Generation

    def begin(self, prefixes):
        states = []
        for prefix in prefixes:
            state = self.network.init_state(1)
            for token in np.concatenate([[BOS], check_ids(prefix, len(self.vocab))]):
                state = self.network.step(np.array([token], np.int32), state)
            states.append(state)
        return type(states[0]).joined(states)

    def distribution(self, state):
        return self.network.next_distribution(state).astype(np.float64)

    def advance(self, state, tokens):
        return self.network.step(check_ids(tokens, len(self.vocab)), state)
