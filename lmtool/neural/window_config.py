"""The fixed-window model's configuration, parameter layout and input stream: what opening, saving
and scoring a ``window`` model file need without the kernels (``neural.window`` holds the network).
"""

from dataclasses import dataclass

import numpy as np

from .batches import sentence_stream
from .choices import OUTPUTS
from .config import DTYPES, SavedConfig
from .options import INIT_RANGE, word_default


@dataclass(frozen=True)
class WindowConfig(SavedConfig):
    """Architecture of an embedding -> tanh layer -> softmax model over a window of previous words.

    vocab_size: V; window: N words of history; embed, hidden: sizes E, H; direct: connections from
    the window's embeddings to the output; dropout: probability of zeroing, applied to the window's
    embeddings and to the hidden layer's output; tie: share the embedding with the output weights
    (needs embed == hidden, no direct connections); softmax: "full" or "class"; n_classes: C for
    "class"; init_range: embedding/output weights ~ U(-r, r); embed_range: the embedding's r instead,
    if set (None: init_range; a file records it only when set); dtype: float32 for use, float64 for
    gradient checks; the defaults are ``train --cell window``'s (``choices.CELL_DEFAULTS``). ``cell``,
    ``layers``, ``activation`` and ``init`` are fixed (class attributes, not saved) so that code
    asking them of any network config gets an answer.
    """

    vocab_size: int
    window: int = word_default("window", "window")
    embed: int = word_default("embed", "window")
    hidden: int = word_default("hidden", "window")
    direct: bool = word_default("direct", "window")
    dropout: float = word_default("dropout", "window")
    tie: bool = word_default("tie", "window")
    softmax: str = "full"  # train's depends on the vocabulary (TrainOptions.fill_defaults); class needs classes
    n_classes: int = 0
    init_range: float = INIT_RANGE
    dtype: str = "float32"
    embed_range: float = None

    cell = "window"
    layers = 1
    activation = "tanh"
    init = "default"

    def __post_init__(self):
        def need(ok, what, found):
            if not ok:
                raise ValueError(f"WindowConfig.{what}, found {found!r}")
        for name in ("vocab_size", "embed", "hidden"):
            need(int(getattr(self, name)) >= 1, f"{name}: expected a positive integer", getattr(self, name))
        need(int(self.window) >= 1, "window: expected a positive number of words", self.window)
        need(0.0 <= self.dropout < 1.0, "dropout: expected a probability in [0, 1)", self.dropout)
        need(self.init_range > 0, "init_range: expected > 0", self.init_range)
        need(self.embed_range is None or self.embed_range > 0, "embed_range: expected None or > 0", self.embed_range)
        need(self.softmax in OUTPUTS, f"softmax: expected one of {tuple(OUTPUTS)}", self.softmax)
        need(self.dtype in DTYPES, f"dtype: expected one of {DTYPES}", self.dtype)
        need(not self.tie or (self.embed == self.hidden and not self.direct),
             "tie: needs embed == hidden and no direct connections, found embed, hidden, direct",
             (self.embed, self.hidden, self.direct))
        need(self.softmax != "class" or 1 <= self.n_classes <= self.vocab_size,
             f"n_classes: expected 1..{self.vocab_size} with softmax='class'", self.n_classes)

    @property
    def width(self):
        """Values the output layer reads per token: H, and N*E more with direct connections."""
        return self.hidden + (self.window * self.embed if self.direct else 0)


def parameter_shapes(config):
    """{name: shape} of every parameter of ``config``, in layout order."""
    V, N, E, H, W = config.vocab_size, config.window, config.embed, config.hidden, config.width
    shapes = {"embed": (V, E), "hidden.U": (N * E, H), "hidden.b": (H,)}
    if not config.tie:
        shapes["output.W"] = (V, W)
    shapes["output.b"] = (V,)
    if config.softmax == "class":
        shapes.update({"output.Wc": (config.n_classes, W), "output.bc": (config.n_classes,)})
    return shapes


def windowed(ids, lengths):
    """(x: int32[n+S] inputs ``<s> w1 .. wk`` per sentence, y: int32[n+S] targets ``w1 .. wk </s>``,
    offset: int32[n+S] each input's position in its sentence): the stream ``kernels.window.contexts``
    cuts windows from, one per target."""
    x, y, _ = sentence_stream(ids, lengths)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    offset = (np.arange(len(x), dtype=np.int64) - np.repeat(starts, np.asarray(lengths) + 1)).astype(np.int32)
    return x, y, offset
