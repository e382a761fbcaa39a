"""NetworkConfig: everything that fixes a recurrent LM's architecture and parameter layout.

Saved beside the weights (``to_dict``/``from_dict``); with the class table of a class softmax it is
all that is needed to rebuild the network. The registries below are what the CLI offers as choices.
"""

from dataclasses import asdict, dataclass, fields

from ..kernels import gru, lstm, rnn
from ..kernels.softmax import OUTPUTS

CELLS = {"rnn": rnn, "lstm": lstm, "gru": gru}
"""Recurrent cells by name; each module follows the cell protocol in ``lmtool.kernels.lstm``."""
ACTIVATIONS = tuple(rnn.ACTIVATIONS)
"""Nonlinearities of the vanilla RNN (LSTM and GRU have their own fixed ones)."""
INITS = ("default", "identity")
"""default: PyTorch-like; identity: W = I, b = 0 for the RNN (IRNN, use with relu)."""
SOFTMAXES = tuple(OUTPUTS)
"""Output layers: full softmax or class-factored softmax."""
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
    ``lmtool.kernels.softmax.make_classes``); dtype: float32 for use, float64 for gradient checks.
    """

    vocab_size: int
    cell: str = "lstm"
    activation: str = "tanh"
    init: str = "default"
    init_range: float = 0.1
    embed: int = 200
    hidden: int = 200
    layers: int = 1
    dropout: float = 0.0
    tie: bool = False
    softmax: str = "full"
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
        need(self.softmax in SOFTMAXES, f"softmax: expected one of {SOFTMAXES}", self.softmax)
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
