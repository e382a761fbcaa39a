"""TrainOptions: every option of ``lmtool train``, declared once (see ``lmtool.options``).

The command line's options are generated from these fields; the trainer's ``TrainConfig`` and the
network's ``NetworkConfig`` take their defaults from here; and what ``--resume`` keeps from a
checkpoint (``KEPT``) or takes anew (``ANEW``) is read off the fields, not listed again.

A default is the best setting the benchmarks found (``bench/RESULTS.md``). Where the best setting
depends on the cell, the level, the vocabulary or the time budget, the field's default is None and
its value is computed in one place, ``TrainOptions.fill_defaults`` (from ``choices.CELL_DEFAULTS``,
``LEVEL_DEFAULTS`` and the constants beside it); ``--help`` shows the rule.
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
    if value is not None and not 0 <= value < 1:
        raise LmtoolError(f"{flag} must be in [0, 1), got {value}")


def _share_of_budget(flag, value):
    if value is not None and not 0 <= value <= 1:
        raise LmtoolError(f"{flag} must be a share of the --max-time budget, in [0, 1], got {value}")


def _unless_computed(check):
    """``check``, but None (a default computed later, see ``fill_defaults``) passes."""
    def checked(flag, value):
        if value is not None:
            check(flag, value)
    return checked


LEVEL_DEFAULTS = {
    "word": {"optimizer": "sgd", "batch": 20, "bptt": 35, "dropout": 0.25, "decay": 4.0},
    "char": {"optimizer": "adam", "batch": 64, "bptt": 25, "dropout": 0.1, "embed_dropout": 0.0, "decay": 2.0},
}
"""The defaults of the recurrent cells that depend on ``--level`` (``--cell window`` has its own,
``choices.CELL_DEFAULTS``). Words: Zaremba et al.'s SGD schedule (lr 20, 20 streams of
35 steps) with dropout 0.25, the rate divided by 4 on a plateau; characters: char-rnn's Adam, 64
streams at ``CHAR_ADAM_LR`` over 25-step segments, dropout 0.1 between the layers and before the
output but none on the embeddings, the rate halved on a plateau (with a time budget,
``BUDGET_ANNEAL`` takes it to 0 instead). Tiny-shakespeare, 10 minutes (11 epochs): the dropout
takes 0.015 nats off (1.446 against 1.460 nats/char; 0.2: 1.459), where the network without it
overfits the megabyte of text; on the embeddings it would turn off the per-character lookup of the
first layer's input projection (a third slower). 25-step segments end 0.003 nats lower than 50-step
ones (1.449) at the same characters/s, twice the updates; 32 streams learn about as much more but
train 5% slower. Measured in ``bench/RESULTS.md``."""
CLASS_SOFTMAX_ABOVE = 5000
"""``--softmax`` is class above this many tokens in the vocabulary, full up to it: past about 16 x
--hidden words the full softmax costs more than two recurrent layers, and its advantage per epoch
(about 4%) is lost to the class softmax's several times more epochs in a time budget."""
CLASSES = 300
"""``--classes``: this many, but at least sqrt(V) and at most V/16 (unless sqrt(V) is more): more
classes than sqrt(V) learn better per epoch (KJV: 300 against 111) at a few logits more per token."""
INIT_RANGE = 0.1
"""Embedding and output weights start uniform in [-0.1, 0.1] (Zaremba et al.; ``NetworkConfig.init_range``)."""
ADAM_EMBED_RANGE = 3 ** 0.5
"""``--embed-range`` with Adam: unit variance, as PyTorch's nn.Embedding starts. Adam moves each weight
by about its rate a step, so an embedding started at Zaremba's +-0.1 (right for SGD at rate 20)
takes hundreds of steps to carry its input (tiny-shakespeare, 160 steps: 1.91 nats/char against 2.14)."""
CHAR_ADAM_LR = 0.0028
"""``--lr`` for characters with Adam (other recurrent runs: ``choices.DEFAULT_LR``): char-rnn's 0.002
for 32 streams, times sqrt(2) for the 64 of ``LEVEL_DEFAULTS``, as a batch twice the size gives a
gradient with half the variance. Tiny-shakespeare, 10 minutes, annealed, 50-step segments without
dropout, seeds 0, 1 and 2: 1.461, 1.467 and 1.470 nats/char against 1.468, 1.490 and 1.472 at
0.002; 0.004: 1.474 (seed 0). With 25-step segments 0.002 still ends behind (1.465 against 1.460),
and with dropout 0.0035 ends level (seed 1)."""
BUDGET_MIN_IMPROVEMENT = 0.05
"""``--min-improvement`` with ``--max-time`` (and no ``--anneal``): RNNLM's rule, so the rate falls while
there is time to use it (KJV, 15 minutes: test 29.7 against 33.9 when it only falls once validation worsens)."""
BUDGET_ANNEAL = {"word": 0.0, "char": 0.5}
"""``--anneal`` with ``--max-time``, by ``--level``. Characters (Adam): the rate held for the first half
of the budget, then falling linearly to 0. RNNLM's rule halves it after every epoch once one
improves by less than 5%, so that the last epochs learn little (by the 8th epoch the rate is 1/32
of its start, and that epoch takes 0.003 nats off). Annealing over the last half ends 0.006-0.008
nats lower in 10 minutes (tiny-shakespeare, 64 streams: 1.468 against 1.476; 32 streams: 1.458
against 1.464); over the last 65%: 1.461, from the start: 1.470 (32 streams); with 32 streams a
rate of 0.003 or Adam's beta2 at 0.99 change nothing. Words (SGD at rate 20 with dropout) keep
RNNLM's rule, which the KJV benchmarks were measured with."""


def classes_for(vocab_size):
    """The default ``--classes`` for a vocabulary of ``vocab_size``: max(sqrt(V), min(CLASSES, V/16))."""
    import math

    return max(round(math.sqrt(vocab_size)), min(CLASSES, vocab_size // 16))


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
    embed: int = option(check=_unless_computed(positive(65536)), resume=KEPT, default_text="--hidden",
                        help="Embedding size.")
    hidden: int = option(check=_unless_computed(positive(65536)), resume=KEPT,
                         default_text="256; 200 for --cell window", help="Units per recurrent (or hidden) layer.")
    layers: int = option(check=_unless_computed(positive(64)), resume=KEPT, default_text="2; 1 for --cell window")
    dropout: float = option(check=_probability, resume=KEPT,
                            default_text="0.25 for words, 0.1 for characters, 0 for --cell window",
                            help="Dropout between layers and before the output (on the embeddings: "
                                 "--embed-dropout).")
    embed_dropout: float = option(check=_probability, resume=KEPT, metavar="P",
                                  default_text="--dropout for words, 0 for characters",
                                  help="Dropout on the embeddings, the first layer's input (recurrent cells).")
    embed_range: float = option(check=positive_number, resume=KEPT, metavar="R",
                                default_text=f"{ADAM_EMBED_RANGE:.3g} (unit variance) for a recurrent cell with adam "
                                             "and no --tie, else 0.1",
                                help="The embedding starts uniform in [-R, R] (the output weights: in [-0.1, 0.1]).")
    tie: bool = option(False, resume=KEPT, help="Share embedding and output weights (needs --embed = --hidden).")
    softmax: str = option(choices=OUTPUTS, resume=KEPT,
                          default_text=f"class above {CLASS_SOFTMAX_ABOVE:,} tokens of vocabulary, else full",
                          help="class: words in classes, P(w|h) = P(class|h) P(w|class,h) (faster).")
    n_classes: int = option(flags=("--classes",), check=optional_positive, resume=KEPT,
                            default_text=f"max(sqrt(V), min({CLASSES}, V/16))",
                            help="Number of classes for --softmax class.")
    class_method: str = option("exchange", choices=CLASS_METHODS, resume=KEPT,
                               help="Classes of --softmax class: exchange clustering of word bigrams, or "
                                    "frequency bins (RNNLM's).")
    level: str = option("word", choices=LEVELS, resume=KEPT)
    stream: bool = option(False, resume=KEPT,
                          help="Text that runs on (recurrent cells): the state carries across lines (the newline a "
                               "token), a file is scored as one text and generate --lines writes running text.")
    vocab_file: str = option(flags=("--vocab",), metavar="FILE", resume=KEPT,
                             help="Only these tokens; others are <unk>.")
    min_count: int = option(1, resume=KEPT, help="Rarer tokens become <unk>.")
    max_vocab: int = option(resume=KEPT, help="Keep only the N most frequent tokens.")
    batch: int = option(check=_unless_computed(positive(65536)), resume=KEPT,
                        default_text="20 streams for words, 64 for characters; 1024 windows for --cell window",
                        help="Parallel streams per batch; windows per minibatch for --cell window.")
    bptt: int = option(check=_unless_computed(positive(100000)), resume=KEPT, default_text="35 for words, 25 for "
                       "characters", help="Steps of backpropagation through time.")
    optimizer: str = option(choices=OPTIMIZERS, resume=KEPT,
                            default_text="sgd for words, adam for characters and --cell window")
    lr: float = option(check=positive_number, resume=KEPT,
                       default_text=f"20 for sgd, 0.002 for adam ({CHAR_ADAM_LR} for characters)",
                       help="Learning rate.")
    clip: float = option(0.25, check=_non_negative_clip, resume=KEPT, help="Largest gradient norm (0: no clipping).")
    decay: float = option(check=_unless_computed(_at_least_one), resume=KEPT, default_text="4 for words, 2 for "
                          "characters",
                          help="Divide the learning rate by this when valid stops improving.")
    anneal: float = option(check=_share_of_budget, resume=KEPT, metavar="SHARE",
                           default_text=f"{BUDGET_ANNEAL['char']} for characters with --max-time, else 0",
                           help="The rate falls linearly to 0 over this last share of the --max-time budget.")
    min_improvement: float = option(check=_unless_computed(fraction), resume=KEPT,
                                    default_text=f"{BUDGET_MIN_IMPROVEMENT} with --max-time and no --anneal, else 0",
                                    help="Also decay when valid perplexity improves by less than this fraction "
                                         "(RNNLM's rule).")
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
        """Refuse absurd values with one line that names the option; fill in the defaults computed from
        the cell, the level and the budget (``fill_defaults``; those that need the vocabulary come later)."""
        converted(self)
        self.given = self.set_on_purpose()  # before the computed defaults are filled in
        if "activation" in self.given and self.cell != "rnn":
            raise LmtoolError("--activation applies to --cell rnn only; " + (
                "the window model's hidden layer is tanh" if self.cell == "window" else
                f"{self.cell.upper()} cells have their own gates"))
        check_fields(self)
        self.fill_defaults()
        self._check_cell_options(self.given)
        if self.tie and self.embed != self.hidden:
            raise LmtoolError(f"--tie needs --embed equal to --hidden (got {self.embed} and {self.hidden})")
        if self.init == "identity" and self.cell != "rnn":
            raise LmtoolError(f"--init identity is for --cell rnn (the IRNN); --cell {self.cell} uses the default")
        if self.anneal and self.max_time is None:
            raise LmtoolError(f"--anneal {self.anneal:g} is a share of the --max-time budget: give --max-time, "
                              "or drop --anneal")
        if self.n_classes is not None and self.softmax not in (None, "class"):
            raise LmtoolError(f"--classes applies to --softmax class only, not to {self.softmax}")
        return self

    def _check_cell_options(self, given):
        """Refuse the options of the recurrent cells with --cell window, and the window's with the others."""
        if self.cell != "window":
            for name in ("window", "direct"):
                if name in given and getattr(self, name):
                    raise LmtoolError(f"--{name} applies to --cell window only, not to {self.cell}")
            return
        if "embed_dropout" in given:
            raise LmtoolError("--embed-dropout applies to the recurrent cells; --cell window's --dropout covers "
                              "its window's embeddings and its hidden layer")
        if "bptt" in given:
            raise LmtoolError("--bptt applies to the recurrent cells; --cell window predicts each word from its "
                              "window of --window words, with no backpropagation through time")
        if self.stream:
            raise LmtoolError("--stream applies to the recurrent cells, whose state runs on across lines; --cell "
                              "window predicts each word from the words before it in its line: drop --stream")
        if self.layers != 1:
            raise LmtoolError(f"--layers {self.layers}: --cell window has one hidden layer (Bengio et al.); "
                              "drop --layers")
        if self.tie and self.direct:
            raise LmtoolError("--tie cannot go with --direct: the output layer then reads the hidden layer and "
                              "the window, wider than an embedding; drop one")

    def fill_defaults(self, vocab_size=None):
        """Give each option left at None its computed default: from ``choices.CELL_DEFAULTS`` by
        ``--cell``, then from ``LEVEL_DEFAULTS`` by ``--level``; ``--min-improvement`` by whether there
        is a ``--max-time`` and no ``--anneal`` (``BUDGET_ANNEAL`` by ``--level`` with one),
        ``--lr`` for characters with Adam (``CHAR_ADAM_LR``; otherwise ``TrainConfig`` takes the
        optimiser's), ``--embed-range`` by the optimiser (``ADAM_EMBED_RANGE`` for Adam),
        ``--embed`` (``--hidden``), and once ``vocab_size`` is known, ``--softmax`` (class above
        ``CLASS_SOFTMAX_ABOVE`` tokens) and ``--classes`` (``classes_for``). The one place such defaults
        are decided; returns self."""
        by_cell = CELL_DEFAULTS["window" if self.cell == "window" else "recurrent"]
        for name, value in (*by_cell.items(), *LEVEL_DEFAULTS[self.level].items()):
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.anneal is None:
            self.anneal = BUDGET_ANNEAL[self.level] if self.max_time is not None else 0.0
        if self.embed_dropout is None:
            self.embed_dropout = self.dropout
        if self.min_improvement is None:
            self.min_improvement = BUDGET_MIN_IMPROVEMENT if self.max_time is not None and not self.anneal else 0.0
        if self.lr is None and self.level == "char" and self.optimizer == "adam" and self.cell != "window":
            self.lr = CHAR_ADAM_LR
        if self.embed_range is None:
            self.embed_range = ADAM_EMBED_RANGE if self.optimizer == "adam" and not self.tie else INIT_RANGE
        if self.embed is None:
            self.embed = self.hidden
        if vocab_size is not None:
            if self.softmax is None:
                self.softmax = "class" if vocab_size > CLASS_SOFTMAX_ABOVE or self.n_classes is not None else "full"
            if self.softmax == "class" and self.n_classes is None:
                self.n_classes = classes_for(vocab_size)
        return self


def word_default(name, cell="lstm"):
    """The default of option ``name`` for words with ``cell``, without a time budget, where it does not
    depend on the vocabulary: what a library dataclass (``TrainConfig``, ``NetworkConfig``,
    ``WindowConfig``) takes as its own."""
    return getattr(TrainOptions(cell=cell).fill_defaults(), name)


KEPT_ON_RESUME = flags_where(TrainOptions, KEPT)
"""{field: flag} of what a resumed run takes from its checkpoint: given again, these must say the same."""
BUDGET = tuple(flags_where(TrainOptions, ANEW))
"""Given on resume, these replace the checkpoint's: a run can be given longer."""
VOCABULARY_OPTIONS = ("min_count", "max_vocab", "vocab_file")
"""Recorded in the model (``meta["training"]["vocabulary"]``): a resumed run's vocabulary is its checkpoint's."""
