"""TrainOptions: every option of ``lmtool train``, declared once (see ``lmtool.options``).

The command line's options are generated from these fields; the trainer's ``TrainConfig`` and the
network's ``NetworkConfig`` take their defaults from here; and what ``--resume`` keeps from a
checkpoint (``KEPT``) or takes anew (``ANEW``) is read off the fields, not listed again.
"""

from dataclasses import dataclass, fields

from ..corpus import LEVELS
from ..errors import LmtoolError
from ..options import (ANEW, KEPT, argument, check_fields, converted, duration, flags_where, fraction, option,
                       optional_positive, positive, positive_number, seed_value)
from .choices import ACTIVATIONS, ARCHITECTURES, CELL_DEFAULTS, CLASS_METHODS, INITS, OPTIMIZERS, OUTPUTS


def _non_negative_clip(flag, value):
    import math

    if not (value >= 0 and math.isfinite(value)):
        raise LmtoolError(f"{flag} must be 0 (off) or positive, got {value}")


def _at_least_one(flag, value):
    if not value >= 1:
        raise LmtoolError(f"{flag} must be at least 1, got {value}")


def _probability(flag, value):
    if not 0 <= value < 1:
        raise LmtoolError(f"{flag} must be in [0, 1), got {value}")


@dataclass
class TrainOptions:
    """Everything ``lmtool train`` is told: what to read and write, the network, the schedule."""

    corpus: list = argument("CORPUS")
    output: str = option(flags=("-o", "--output"), required=True, metavar="MODEL",
                         help="Model file to write (the best on --valid).")
    valid: str = option(flags=("--valid",), metavar="FILE",
                        help="Validation text: drives learning-rate decay and early stopping.")
    cell: str = option("lstm", choices=ARCHITECTURES, resume=KEPT,
                       help="lstm-peephole: gates also see the cell; lstm-coupled: input gate = 1 - forget gate; "
                            "window: the fixed-window model (Bengio et al. 2003), a tanh layer over the previous "
                            "words.")
    window: int = option(4, check=positive(64), resume=KEPT,
                         help="Words of history of --cell window (<s> before the sentence start).")
    direct: bool = option(False, resume=KEPT, help="--cell window: direct connections from the window to the output.")
    activation: str = option("tanh", choices=ACTIVATIONS, resume=KEPT, help="Nonlinearity of --cell rnn.")
    init: str = option("default", choices=INITS, resume=KEPT,
                       help="identity: recurrent weights start as the identity (IRNN; use with --activation relu).")
    embed: int = option(check=positive(65536), resume=KEPT, default_text="--hidden", help="Embedding size.")
    hidden: int = option(200, check=positive(65536), resume=KEPT, help="Units per recurrent layer.")
    layers: int = option(1, check=positive(64), resume=KEPT)
    dropout: float = option(0.0, check=_probability, resume=KEPT,
                            help="Dropout between layers and before the output.")
    tie: bool = option(False, resume=KEPT, help="Share embedding and output weights (needs --embed = --hidden).")
    softmax: str = option("full", choices=OUTPUTS, resume=KEPT,
                          help="class: words in ~sqrt(V) classes, P(w|h) = P(class|h) P(w|class,h) (faster).")
    n_classes: int = option(flags=("--classes",), check=optional_positive, resume=KEPT, default_text="sqrt(V)",
                            help="Number of classes for --softmax class.")
    class_method: str = option("exchange", choices=CLASS_METHODS, resume=KEPT,
                               help="Classes of --softmax class: exchange clustering of word bigrams, or "
                                    "frequency bins (RNNLM's).")
    level: str = option("word", choices=LEVELS, resume=KEPT)
    vocab_file: str = option(flags=("--vocab",), metavar="FILE", resume=KEPT,
                             help="Only these tokens; others are <unk>.")
    min_count: int = option(1, resume=KEPT, help="Rarer tokens become <unk>.")
    max_vocab: int = option(resume=KEPT, help="Keep only the N most frequent tokens.")
    batch: int = option(check=positive(65536), resume=KEPT, default_text="20 streams; 1024 windows",
                        help="Parallel streams per batch; windows per minibatch for --cell window.")
    bptt: int = option(35, check=positive(100000), resume=KEPT, help="Steps of backpropagation through time.")
    optimizer: str = option(choices=OPTIMIZERS, resume=KEPT, default_text="sgd; adam for --cell window")
    lr: float = option(check=positive_number, resume=KEPT, default_text="20 for sgd, 0.002 for adam",
                       help="Learning rate.")
    clip: float = option(0.25, check=_non_negative_clip, resume=KEPT, help="Largest gradient norm (0: no clipping).")
    decay: float = option(4.0, check=_at_least_one, resume=KEPT,
                          help="Divide the learning rate by this when valid stops improving.")
    min_improvement: float = option(0.0, check=fraction, resume=KEPT,
                                    help="Also decay when valid perplexity improves by less than this fraction "
                                         "(RNNLM's rule, e.g. 0.01).")
    patience: int = option(3, check=positive(), resume=KEPT, help="Stop after this many epochs without improvement.")
    epochs: int = option(20, check=positive(), resume=ANEW)
    max_time: float = option(convert=duration, resume=ANEW, metavar="DURATION",
                             help="Training time budget, e.g. 15m or 1h30m.")
    seed: int = option(0, check=seed_value, resume=KEPT, help="Same command and seed, same model bytes.")
    threads: int = option(1, check=positive(1024),
                          help="Worker threads, each training on its share of the --batch streams (same seed and "
                               "N, same bytes).")
    resume: str = option(metavar="CKPT", help="Continue an interrupted run from its checkpoint (MODEL.ckpt).")
    log_file: str = option(flags=("--log",), metavar="FILE", help="Write the per-epoch log as CSV.")
    plot_file: str = option(flags=("--plot",), metavar="FILE.png",
                            help="Draw train and valid perplexity per epoch (needs matplotlib).")
    given: frozenset = None
    """The options set on purpose (the command line knows); None: those off their default."""

    def set_on_purpose(self):
        """Names of the fields given on purpose: ``given``, or where that is unknown, those not at their default."""
        if self.given is not None:
            return self.given
        return frozenset(f.name for f in fields(self) if f.name != "given" and getattr(self, f.name) != f.default)

    def check(self):
        """Refuse absurd values with one line that names the option; fill in the computed defaults."""
        converted(self)
        given = self.set_on_purpose()
        if "activation" in given and self.cell != "rnn":
            raise LmtoolError("--activation applies to --cell rnn only; " + (
                "the window model's hidden layer is tanh" if self.cell == "window" else
                f"{self.cell.upper()} cells have their own gates"))
        if self.embed is None:
            self.embed = self.hidden
        for name, value in CELL_DEFAULTS["window" if self.cell == "window" else "recurrent"].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        check_fields(self)
        self._check_cell_options(given)
        if self.tie and self.embed != self.hidden:
            raise LmtoolError(f"--tie needs --embed equal to --hidden (got {self.embed} and {self.hidden})")
        if self.init == "identity" and self.cell != "rnn":
            raise LmtoolError(f"--init identity is for --cell rnn (the IRNN); --cell {self.cell} uses the default")
        if self.n_classes is not None and self.softmax != "class":
            raise LmtoolError(f"--classes applies to --softmax class only, not to {self.softmax}")
        return self

    def _check_cell_options(self, given):
        """Refuse the options of the recurrent cells with --cell window, and the window's with the others."""
        if self.cell != "window":
            for name in ("window", "direct"):
                if name in given and getattr(self, name):
                    raise LmtoolError(f"--{name} applies to --cell window only, not to {self.cell}")
            return
        if "bptt" in given:
            raise LmtoolError("--bptt applies to the recurrent cells; --cell window predicts each word from its "
                              "window of --window words, with no backpropagation through time")
        if self.layers != 1:
            raise LmtoolError(f"--layers {self.layers}: --cell window has one hidden layer (Bengio et al.); "
                              "drop --layers")
        if self.tie and self.direct:
            raise LmtoolError("--tie cannot go with --direct: the output layer then reads the hidden layer and "
                              "the window, wider than an embedding; drop one")


KEPT_ON_RESUME = flags_where(TrainOptions, KEPT)
"""{field: flag} of what a resumed run takes from its checkpoint: given again, these must say the same."""
BUDGET = tuple(flags_where(TrainOptions, ANEW))
"""Given on resume, these replace the checkpoint's: a run can be given longer."""
VOCABULARY_OPTIONS = ("min_count", "max_vocab", "vocab_file")
"""Recorded in the model (``meta["training"]["vocabulary"]``): a resumed run's vocabulary is its checkpoint's."""
