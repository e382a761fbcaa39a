"""RecurrentModel: a trained recurrent network behind the ``LanguageModel`` interface.

Sentences are scored independently, each from a zero state fed ``<s>``, as they were trained; for
speed they are packed back to back into the columns of a batch, with the state reset at every
sentence start, so no time step is wasted on padding. Small batches run the NumPy forward pass
(``neural.forward``), large ones the kernels (``neural.network``), which a model opened from a file
builds only when first needed: scoring one sentence does not load Numba. A stream model (``train
--stream``, ``meta["stream"]``) reads a file as one text (``score_continuing``): its lines are
scored one after the other by a single stream whose state runs on, ``</s>`` being the newline, and
its generator writes running text; ``score_ids`` still scores each line on its own, as the first
line of a text (n-best rescoring and mixtures ask for that). A stream model's text starts from a
fresh state fed the newline, as its training read each file (``batches``).
"""

import math

import numpy as np

from .. import modelfile
from .. import compiled
from ..errors import LmtoolError
from ..language_model import LanguageModel, Scores, check_batch, check_ids
from ..vocab import BOS, EOS, Vocabulary
from .batches import packed_sentences, sentence_stream, text_stream
from .config import NetworkConfig

LN10 = math.log(10.0)
SCORE_BATCH = 64
SCORE_SEGMENT = 128
STREAM_SEGMENT = 1024
"""Steps per call when a stream model scores its single stream."""
FEW_ROWS = 8
"""Generation batches of at most this many rows step through the NumPy forward pass (by size alone,
so that a command and its seed always give the same text)."""


class RecurrentModel(LanguageModel):
    """A recurrent network with its vocabulary and the metadata saved beside it (history...).

    ``network`` (a ``RecurrentNetwork``, the kernels' side) is built on first use when the model
    was opened from a file; ``forward`` (a ``NumpyNetwork``) likewise, for cells that have one.
    """

    kind = "recurrent"

    def __init__(self, vocab, network, meta, *, config=None, classes=None, params=None):
        self.vocab = vocab
        self._network = network
        self.config = network.config if network is not None else config
        self.classes = network.classes if network is not None else classes
        self.params = network.params if network is not None else params
        self.meta = meta
        self._forward = None

    @property
    def network(self):
        """The kernels' network over this model's parameters (``network_class``; loads Numba)."""
        if self._network is None:
            self._network = self.network_class()(self.config, self.classes, params=self.params)
        return self._network

    @property
    def forward(self):
        """The NumPy forward pass over this model's parameters (``numpy_network``), or None."""
        if self._forward is None:
            self._forward = self.numpy_network(self.config, self.classes, self.params)
        return self._forward

    config_class = NetworkConfig
    """The configuration saved in this kind's model files."""

    @staticmethod
    def network_class():
        """The network class of this model kind (its module imports the kernels)."""
        from .network import RecurrentNetwork

        return RecurrentNetwork

    @staticmethod
    def parameter_shapes(config):
        """{name: shape} of the flat parameter vector's views, without loading the kernels."""
        from .forward import CELLS
        from .layout import parameter_shapes

        return parameter_shapes(config, CELLS.get(config.cell))

    @staticmethod
    def numpy_network(config, classes, params):
        """A ``NumpyNetwork`` where the cell has a NumPy forward pass (``neural.forward.CELLS``), else None."""
        from .forward import CELLS, NumpyNetwork

        return NumpyNetwork(config, classes, params) if config.cell in CELLS else None

    @classmethod
    def create(cls, vocab, config, classes=None, seed=0, meta=None):
        return cls(vocab, cls.network_class()(config, classes, seed=seed), dict(meta or {}))

    # The model file

    def file_contents(self, extra_meta=None, extra_arrays=None):
        """(meta, arrays) of the model file: config, vocabulary, classes, weights, and extras."""
        meta = dict(self.meta, level=self.vocab.level, config=self.config.to_dict(), **(extra_meta or {}))
        arrays = {"vocab": np.frombuffer(self.vocab.to_bytes(), np.uint8), "params": self.params}
        if self.classes is not None:
            arrays.update({f"classes.{k}": v for k, v in self.classes.arrays().items()})
        arrays.update(extra_arrays or {})
        return meta, arrays

    def save(self, path):
        meta, arrays = self.file_contents()
        modelfile.write(path, self.kind, meta, arrays)

    @classmethod
    def from_file(cls, model, writable=False):
        """Rebuild from an opened ``ModelFile`` of this kind (the kernels' network itself on first use)."""
        from .classes import WordClasses
        from .layout import ParameterLayout

        try:
            config = cls.config_class.from_dict(model.meta["config"])
            vocab = Vocabulary.from_bytes(model["vocab"], model.meta.get("level", "word"))
            classes = None
            if config.softmax == "class":
                classes = WordClasses.from_arrays(model["classes.order"], model["classes.start"])
                if len(classes.order) != config.vocab_size or classes.n_classes != config.n_classes:
                    raise ValueError(f"{classes.n_classes} classes over {len(classes.order)} words, the "
                                     f"network has {config.n_classes} over {config.vocab_size}")
            params = np.array(model["params"]) if writable else model["params"]
            params = np.ascontiguousarray(params, config.dtype)
            ParameterLayout(cls.parameter_shapes(config)).views(params)  # sizes agree
            network = cls.network_class()(config, classes, params=params) if writable else None
        except (KeyError, ValueError, TypeError) as err:
            raise LmtoolError(f"damaged {cls.kind} model ({err}); rebuild it", model.path) from None
        if len(vocab) != config.vocab_size:
            raise LmtoolError(f"damaged {cls.kind} model (vocabulary of {len(vocab)} tokens, network of "
                              f"{config.vocab_size}); rebuild it", model.path)
        return cls(vocab, network, model.meta, config=config, classes=classes, params=params)

    @property
    def stream(self):
        """Whether this model was trained on running text (``train --stream``)."""
        return bool(self.meta.get("stream", False))

    @property
    def start(self):
        """The input a text or sentence starts from: ``<s>``, or for a stream model the newline."""
        return EOS if self.stream else BOS

    # Scoring

    def numpy_pays(self, ids, lengths):
        return len(ids) + len(lengths) <= compiled.RECURRENT_NUMPY_TOKENS and self.forward is not None

    def score_ids_numpy(self, ids, lengths):
        return self._score(self.forward, ids, lengths, self.start)

    def score_ids_compiled(self, ids, lengths, batch=SCORE_BATCH, segment=SCORE_SEGMENT):
        return self._score(self.network, ids, lengths, self.start, batch, segment)

    @staticmethod
    def _score(network, ids, lengths, start, batch=SCORE_BATCH, segment=SCORE_SEGMENT):
        n = len(ids) + len(lengths)
        token = np.zeros(n, np.float32)
        if len(lengths):
            batch = max(1, min(batch, len(lengths)))
            x, y, reset = sentence_stream(ids, lengths, start)
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
            state = network.init_state(batch)
            for t in range(0, T, segment):
                chunk, state = network.log_probs(X[t:t + segment], Y[t:t + segment], state,
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
        # the NumPy pass or the kernels by this batch alone, as score_ids; both carry a NetworkState
        net = self.forward if self.numpy_pays(ids, lengths) else self.network
        x, y, _ = text_stream(ids, lengths)
        state = net.init_state(1) if context is None else context[0]
        if context is not None:
            x[0] = context[1]
        logp = np.empty(len(y), np.float64)
        for t in range(0, len(y), STREAM_SEGMENT):
            part, state = net.log_probs(x[t:t + STREAM_SEGMENT, None], y[t:t + STREAM_SEGMENT, None], state)
            logp[t:t + STREAM_SEGMENT] = part[:, 0]
        token = (logp / LN10).astype(np.float32)
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        return Scores(np.add.reduceat(token.astype(np.float64), starts), token, None), (state, y[-1])

    def worker(self):
        twin = type(self)(self.vocab, None, self.meta, config=self.config, classes=self.classes, params=self.params)
        twin._forward = self._forward  # holds no scratch space: shared
        return twin

    # Generation

    def _stepper(self, rows):
        """The NumPy forward pass for a few rows where the cell has one, else the kernels' network."""
        return self.forward if rows <= FEW_ROWS and self.forward is not None else self.network

    def begin(self, prefixes):
        net = self._stepper(len(prefixes))
        states = []
        for prefix in prefixes:
            state = net.init_state(1)
            for token in np.concatenate([[self.start], check_ids(prefix, len(self.vocab))]):
                state = net.step(np.array([token], np.int32), state)
            states.append(state)
        return type(states[0]).joined(states)

    def distribution(self, state):
        return self._stepper(state.batch).next_distribution(state).astype(np.float64)

    def advance(self, state, tokens):
        return self._stepper(state.batch).step(check_ids(tokens, len(self.vocab)), state)
