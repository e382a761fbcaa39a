"""NetworkConfig: everything that fixes a recurrent LM's architecture and parameter layout.

Saved beside the weights (``to_dict``/``from_dict``); with the class table of a class softmax it is
all that is needed to rebuild the network. Its defaults are ``train``'s for words (``TrainOptions``).
"""

from dataclasses import dataclass, fields

from .choices import ACTIVATIONS, CELLS, INITS, OUTPUTS
from .options import INIT_RANGE, word_default

DTYPES = ("float32", "float64")


class SavedConfig:
    """``to_dict``/``from_dict`` of a frozen dataclass saved beside the weights (a model file's header)."""

    def to_dict(self):
        """Plain dict of the fields (JSON-ready). An optional field left at None (its default) is not
        written, so a config that does not use one added later is described as before, and read by
        lmtool versions that do not know it."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.default is None and getattr(self, f.name) is None)}

    @classmethod
    def from_dict(cls, d):
        """Inverse of ``to_dict``; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown} (a newer lmtool's model?); "
                             f"known fields are {sorted(known)}")
        return cls(**d)


@dataclass(frozen=True)
class NetworkConfig(SavedConfig):
    """Architecture of an embedding -> L recurrent layers -> softmax language model.

    vocab_size: V, words (or characters) including specials; cell: one of CELLS; activation: RNN only;
    init: one of INITS; init_range: embedding/output weights ~ U(-r, r); embed_range: the embedding's r
    instead, if set (None: init_range; a file records it only when set); embed, hidden: sizes E, H;
    layers: L; dropout: probability of zeroing, applied between layers and before the output layer,
    and to the embedding output unless ``embed_dropout`` is set (None: ``dropout``; a file records
    it only when set); tie: share the embedding with the output weights (needs embed == hidden);
    softmax: "full" or "class"; n_classes: C for "class" (must equal the classes' count, see
    ``lmtool.neural.classes``); dtype: float32 for use, float64 for gradient checks.
    """

    vocab_size: int
    cell: str = word_default("cell")
    activation: str = word_default("activation")
    init: str = word_default("init")
    init_range: float = INIT_RANGE
    embed: int = word_default("hidden")
    hidden: int = word_default("hidden")
    layers: int = word_default("layers")
    dropout: float = word_default("dropout")
    tie: bool = word_default("tie")
    softmax: str = "full"  # train's depends on the vocabulary (TrainOptions.fill_defaults); class needs classes
    n_classes: int = 0
    dtype: str = "float32"
    embed_range: float = None
    embed_dropout: float = None

    @property
    def embedding_dropout(self):
        """The embedding output's dropout probability: ``embed_dropout`` if set, else ``dropout``."""
        return self.dropout if self.embed_dropout is None else self.embed_dropout

    def __post_init__(self):
        def need(ok, what, found):
            if not ok:
                raise ValueError(f"NetworkConfig.{what}, found {found!r}")
        need(self.cell in CELLS, f"cell: expected one of {sorted(CELLS)}", self.cell)
        need(self.activation in ACTIVATIONS, f"activation: expected one of {ACTIVATIONS}", self.activation)
        need(self.init in INITS, f"init: expected one of {INITS}", self.init)
        need(self.init != "identity" or self.cell == "rnn", "init='identity' is for cell='rnn' only; cell",
             self.cell)
        need(self.softmax in OUTPUTS, f"softmax: expected one of {tuple(OUTPUTS)}", self.softmax)
        need(self.dtype in DTYPES, f"dtype: expected one of {DTYPES}", self.dtype)
        for name in ("vocab_size", "embed", "hidden", "layers"):
            need(int(getattr(self, name)) >= 1, f"{name}: expected a positive integer", getattr(self, name))
        need(0.0 <= self.dropout < 1.0, "dropout: expected a probability in [0, 1)", self.dropout)
        need(self.embed_dropout is None or 0.0 <= self.embed_dropout < 1.0,
             "embed_dropout: expected None or a probability in [0, 1)", self.embed_dropout)
        need(self.init_range > 0, "init_range: expected > 0", self.init_range)
        need(self.embed_range is None or self.embed_range > 0, "embed_range: expected None or > 0", self.embed_range)
        need(not self.tie or self.embed == self.hidden,
             f"tie: needs embed == hidden (set both), found embed={self.embed}, hidden", self.hidden)
        need(self.softmax != "class" or 1 <= self.n_classes <= self.vocab_size,
             f"n_classes: expected 1..{self.vocab_size} with softmax='class' (use make_classes(...).n_classes)",
             self.n_classes)
