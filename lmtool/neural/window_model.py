"""WindowModel: a trained fixed-window network behind the ``LanguageModel`` interface.

A model file of its own kind, ``window``, in the one container (``lmtool.modelfile``): the same
arrays as a recurrent model (vocabulary, flat parameters, the classes of a class softmax) and a
``WindowConfig`` in the header. A kind rather than a recurrent config with a window field, because
it is not recurrent (nothing answers ``layers``, ``bptt`` or a state), because the recurrent
configs saved so far stay byte for byte what they were, and because an lmtool that predates it
refuses the file by its kind ("unknown model kind 'window'; upgrade lmtool") instead of failing
somewhere in a network it cannot build.

Scoring needs no state: every token is predicted from its window, cut from the sentence (``<s>``
before its start), and the windows of a batch of sentences are scored in blocks: small batches
by the NumPy forward pass (``neural.forward.NumpyWindowNetwork``), large ones by the kernels, as
for recurrent models (``RecurrentModel``). For generation the state of a row is its window of word
ids, int32[B, N], shifted by one word per step.
"""

import numpy as np

from ..language_model import Scores, check_ids
from ..vocab import BOS
from .model import LN10, RecurrentModel
from .window_config import WindowConfig, parameter_shapes, windowed

SCORE_WINDOWS = 1024
"""Windows scored per block: big enough for BLAS, small enough that a block's logits stay small."""


class WindowModel(RecurrentModel):
    """A ``WindowNetwork`` with its vocabulary and metadata; saved, loaded and served as a recurrent
    model is (``RecurrentModel``), scored and sampled by windows."""

    kind = "window"
    stream = False
    """Its windows stay within a line (``train --stream`` is for the recurrent cells)."""

    config_class = WindowConfig

    @staticmethod
    def network_class():
        from .window import WindowNetwork

        return WindowNetwork

    @staticmethod
    def parameter_shapes(config):
        return parameter_shapes(config)

    @staticmethod
    def numpy_network(config, classes, params):
        from .forward import NumpyWindowNetwork

        return NumpyWindowNetwork(config, classes, params)

    def score_ids_numpy(self, ids, lengths, block=SCORE_WINDOWS):
        from .forward import window_contexts

        return self._score_windows(self.forward, window_contexts, ids, lengths, block)

    def score_ids_compiled(self, ids, lengths, block=SCORE_WINDOWS):
        from ..kernels.window import contexts

        return self._score_windows(self.network, contexts, ids, lengths, block)

    def _score_windows(self, network, contexts, ids, lengths, block):
        """Scores of a checked batch: its windows cut by ``contexts`` (the kernel's or NumPy's) and
        scored by ``network``, ``block`` windows at a time."""
        x, y, offset = windowed(ids, lengths)
        logp = np.empty(len(y), np.float64)
        for a in range(0, len(y), block):
            b = min(a + block, len(y))
            logp[a:b] = network.log_probs(contexts(x, offset, np.arange(a, b), self.config.window, BOS), y[a:b])
        token = (logp / LN10).astype(np.float32)
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
        sentence = np.add.reduceat(token.astype(np.float64), starts) if len(lengths) else np.zeros(0)
        return Scores(sentence, token, None)

    def begin(self, prefixes):
        """int32[B, N]: each prefix's window after ``<s>`` (``<s>`` before it where it is short)."""
        N = self.config.window
        return np.stack([np.concatenate([np.full(N, BOS, np.int32), check_ids(prefix, len(self.vocab))])[-N:]
                         for prefix in prefixes])

    def distribution(self, state):
        return self._stepper(len(state)).next_distribution(state).astype(np.float64)

    def advance(self, state, tokens):
        tokens = check_ids(tokens, len(self.vocab))
        return np.concatenate([state[:, 1:], tokens.reshape(-1, 1)], axis=1)
