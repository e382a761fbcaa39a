"""NetworkConfig: everything that fixes a recurrent LM's architecture and parameter layout.

Saved beside the weights (``to_dict``/``from_dict``); with the class table of a class softmax it is
all that is needed to rebuild the network. Its defaults are ``train``'s (``TrainOptions``).
"""

from dataclasses import asdict, dataclass, fields

from ..options import default
from .choices import ACTIVATIONS, CELLS, INITS, OUTPUTS
from .options import TrainOptions

DTYPES = ("float32", "float64")


class SavedConfig:
    """``to_dict``/``from_dict`` of a frozen dataclass saved beside the weights (a model file's header)."""

    def to_dict(self):
        """Plain dict of the fields (JSON-ready)."""
        return asdict(self)

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
    init: one of INITS; init_range: embedding/output weights ~ U(-r, r); embed, hidden: sizes E, H;
    layers: L; dropout: probability of zeroing, applied to the embedding output, between layers and
    before the output layer; tie: share the embedding with the output weights (needs embed == hidden);
    softmax: "full" or "class"; n_classes: C for "class" (must equal the classes' count, see
    ``lmtool.neural.classes``); dtype: float32 for use, float64 for gradient checks.
    """

    vocab_size: int
    cell: str = default(TrainOptions, "cell")
    activation: str = default(TrainOptions, "activation")
    init: str = default(TrainOptions, "init")
    init_range: float = 0.1
    embed: int = default(TrainOptions, "hidden")
    hidden: int = default(TrainOptions, "hidden")
    layers: int = default(TrainOptions, "layers")
    dropout: float = default(TrainOptions, "dropout")
    tie: bool = default(TrainOptions, "tie")
    softmax: str = default(TrainOptions, "softmax")
    n_classes: int = 0
    dtype: str = "float32"

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
        need(self.init_range > 0, "init_range: expected > 0", self.init_range)
        need(not self.tie or self.embed == self.hidden,
             f"tie: needs embed == hidden (set both), found embed={self.embed}, hidden", self.hidden)
        need(self.softmax != "class" or 1 <= self.n_classes <= self.vocab_size,
             f"n_classes: expected 1..{self.vocab_size} with softmax='class' (use make_classes(...).n_classes)",
             self.n_classes)
