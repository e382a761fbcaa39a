"""The ``train`` pipeline: options -> corpora -> network -> Trainer -> model file, log and plot."""

import csv
import math
import os
from dataclasses import dataclass, fields, replace

from .. import __version__
from ..errors import Interrupted, LmtoolError
from ..progress import silent


@dataclass
class TrainOptions:
    """Everything ``lmtool train`` is told (see its --help)."""

    corpus: list
    output: str
    valid: str = None
    cell: str = "lstm"
    activation: str = "tanh"
    init: str = "default"
    window: int = 4  # --cell window: words of history
    direct: bool = False  # --cell window: direct connections from the window to the output
    embed: int = 200
    hidden: int = 200
    layers: int = 1
    dropout: float = 0.0
    tie: bool = False
    softmax: str = "full"
    n_classes: int = None
    class_method: str = "exchange"
    level: str = "word"
    vocab_file: str = None
    min_count: int = 1
    max_vocab: int = None
    batch: int = None  # None (here and below): the cell's default, CELL_DEFAULTS
    bptt: int = 35
    optimizer: str = None
    lr: float = None
    clip: float = 0.25
    decay: float = 4.0
    min_improvement: float = 0.0
    patience: int = 3
    epochs: int = 20
    max_time: float = None
    seed: int = 0
    threads: int = 1
    resume: str = None
    log_file: str = None
    plot_file: str = None
    given: frozenset = None  # the options set on purpose (the command line knows); None: those off their default

    def set_on_purpose(self):
        """Names of the fields given on purpose: ``given``, or where that is unknown, those not at their default."""
        if self.given is not None:
            return self.given
        return frozenset(f.name for f in fields(self) if f.name != "given" and getattr(self, f.name) != f.default)

    def value(self, name):
        """An option's value: as given, or for those whose default depends on --cell (None), the cell's."""
        given = getattr(self, name)
        return CELL_DEFAULTS["window" if self.cell == "window" else "recurrent"][name] if given is None else given

    def check(self):
        """Refuse absurd values with one line that names the option."""
        positive = {"--hidden": self.hidden, "--embed": self.embed, "--layers": self.layers,
                    "--batch": self.value("batch"), "--bptt": self.bptt, "--epochs": self.epochs,
                    "--threads": self.threads, "--patience": self.patience, "--window": self.window}
        for name, value in positive.items():
            if value is None or value < 1:
                raise LmtoolError(f"{name} must be a positive integer, got {value}")
        limits = {"--hidden": 65536, "--embed": 65536, "--layers": 64, "--batch": 65536, "--bptt": 100000,
                  "--threads": 1024, "--window": 64}
        for name, limit in limits.items():
            if positive[name] > limit:
                raise LmtoolError(f"{name} {positive[name]} is absurdly large (at most {limit})")
        if not 0 <= self.dropout < 1:
            raise LmtoolError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise LmtoolError(f"--lr must be a positive number, got {self.lr}")
        if not (self.clip >= 0 and math.isfinite(self.clip)):
            raise LmtoolError(f"--clip must be 0 (off) or positive, got {self.clip}")
        if not self.decay >= 1:
            raise LmtoolError(f"--decay must be at least 1, got {self.decay}")
        if not 0 <= self.min_improvement < 1:
            raise LmtoolError(f"--min-improvement must be a fraction in [0, 1), got {self.min_improvement}")
        if self.tie and self.embed != self.hidden:
            raise LmtoolError(f"--tie needs --embed equal to --hidden (got {self.embed} and {self.hidden})")
        if self.init == "identity" and self.cell != "rnn":
            raise LmtoolError("--init identity is for --cell rnn (the IRNN); the other cells use the default")
        self._check_cell_options()
        if self.n_classes is not None and self.n_classes < 1:
            raise LmtoolError(f"--classes must be positive, got {self.n_classes}")
        if self.n_classes is not None and self.softmax != "class":
            raise LmtoolError(f"--classes applies to --softmax class only, not to {self.softmax}")
        if not 0 <= self.seed < 2 ** 64:
            raise LmtoolError(f"--seed must be an integer from 0 to 2**64-1, got {self.seed}")
        if self.class_method not in ("frequency", "exchange"):
            raise LmtoolError(f"--class-method must be frequency or exchange, got {self.class_method!r}")

    def _check_cell_options(self):
        """Refuse the options of the recurrent cells with --cell window, and the window's with the others."""
        given = self.set_on_purpose()
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


def set_threads(threads):
    """One BLAS thread per training thread: ``--threads N`` runs N workers (``neural.parallel``), each
    calling BLAS on its own share of the batch. Set at run time (NumPy, and with it OpenBLAS, is
    loaded by now), so ``--threads 1`` uses one core whatever the machine has, and its results do
    not depend on the machine's core count."""
    from ..threads import set_blas_threads

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    os.environ["NUMBA_NUM_THREADS"] = str(max(threads, 1))
    set_blas_threads(1)


def run_training(options, progress=silent, echo=None):
    """Train as ``options`` say and return the trained ``RecurrentModel`` (``WindowModel`` for --cell
    window), also written to disk."""
    options.check()
    set_threads(options.threads)
    from .. import model_class, modelfile
    from ..dataset import read_corpus
    from ..vocab import read_vocab_file
    from .train import Trainer, TrainConfig, checkpoint_path
    from .window_train import WindowTrainer

    opened = modelfile.read(options.resume) if options.resume else None
    if opened is not None and opened.kind not in NETWORK_KINDS:
        raise LmtoolError(f"a {opened.kind} model is not a training checkpoint", options.resume)
    if opened is not None:
        vocab = model_class(opened.kind).from_file(opened).vocab
        data = read_corpus(options.corpus, level=vocab.level, vocab=vocab, progress=progress, threads=options.threads)
        recorded = opened.meta.get("training", {}).get("blake2b")
        if recorded and recorded != data.fingerprint:
            raise LmtoolError("the training text differs from the one this checkpoint was trained on "
                              "(its hash does not match); resume with the same files", options.resume)
    else:
        keep = read_vocab_file(options.vocab_file) if options.vocab_file else None
        data = read_corpus(options.corpus, level=options.level, min_count=options.min_count,
                           max_vocab=options.max_vocab, keep=keep, progress=progress, threads=options.threads)
        vocab = data.vocab
    valid = None
    if options.valid:
        held_out = read_corpus([options.valid], level=vocab.level, vocab=vocab, progress=progress)
        valid = (held_out.ids, held_out.lengths)

    if opened is not None:
        model = model_class(opened.kind).from_file(opened, writable=True)
        config = _resumed_config(options, model, TrainConfig(**opened.meta["training"]["train_config"]))
        if options.valid:
            model.meta["training"] = dict(model.meta.get("training", {}), valid=options.valid)
    else:
        classes = None
        n_classes = 0
        if options.softmax == "class":
            classes = word_classes(data, len(vocab), options, progress, echo)
            n_classes = classes.n_classes
        try:
            net_config = network_config(options, len(vocab), n_classes)
        except ValueError as err:
            raise LmtoolError(str(err)) from None
        meta = {"training": dict(data.describe(), valid=options.valid,
                                 vocabulary={k: getattr(options, k) for k in VOCABULARY_OPTIONS}),
                "lmtool_version": __version__}
        if classes is not None:
            meta["training"]["class_method"] = options.class_method
        window = options.cell == "window"
        model = model_class("window" if window else "recurrent").create(vocab, net_config, classes,
                                                                          seed=options.seed, meta=meta)
        config = TrainConfig(batch=options.value("batch"), bptt=None if window else options.bptt,
                             optimizer=options.value("optimizer"), lr=options.lr,
                             clip=options.clip, decay=options.decay, min_improvement=options.min_improvement,
                             patience=options.patience,
                             epochs=options.epochs, max_time=options.max_time, seed=options.seed)

    log_rows = []

    def log(row):
        log_rows.append(row)
        if echo:
            valid_text = f", valid ppl {row['valid_ppl']:.2f}" if row["valid_ppl"] is not None else ""
            echo(f"epoch {row['epoch']}: lr {row['lr']:.4g}, train ppl {row['train_ppl']:.2f}{valid_text}")
        if options.log_file:
            _write_log(options.log_file, trainer.history.epochs)

    if options.threads > 1:
        model.meta["training"] = dict(model.meta.get("training", {}), threads=options.threads)
    trainer = (WindowTrainer if model.kind == "window" else Trainer)(
        model, config, (data.ids, data.lengths), valid, output=options.output, progress=progress, log=log,
        threads=options.threads)
    if opened is not None:
        trainer.load_checkpoint(opened)
    ckpt = checkpoint_path(options.output)
    try:
        trainer.run(checkpoint_path=ckpt)
    except KeyboardInterrupt:
        if not os.path.exists(ckpt):  # stopped before the checkpoint could be written
            raise Interrupted("no checkpoint was written") from None
        raise Interrupted(f"checkpoint saved; continue with: lmtool train ... --resume {ckpt}") from None
    if os.path.exists(ckpt):
        os.unlink(ckpt)
    if options.plot_file:
        plot_history(trainer.history.epochs, options.plot_file)
    return model


NETWORK_KINDS = ("recurrent", "window")
"""Model-file kinds that ``train`` writes (and resumes from)."""
CELL_DEFAULTS = {"recurrent": {"batch": 20, "optimizer": "sgd"}, "window": {"batch": 1024, "optimizer": "adam"}}
"""Defaults that depend on --cell: --batch counts streams of a recurrent model but windows of the
fixed-window one, and SGD at the recurrent models' rate and clipping learns the window model slowly
(``bench/RESULTS.md``, the fixed-window section)."""


def network_config(options, vocab_size, n_classes):
    """The architecture ``options`` describe: a ``NetworkConfig``, or a ``WindowConfig`` for --cell window."""
    shared = dict(vocab_size=vocab_size, embed=options.embed, hidden=options.hidden, dropout=options.dropout,
                  tie=options.tie, softmax=options.softmax, n_classes=n_classes)
    if options.cell == "window":
        from .window import WindowConfig

        return WindowConfig(window=options.window, direct=options.direct, **shared)
    from .config import NetworkConfig

    return NetworkConfig(cell=options.cell, activation=options.activation, init=options.init, layers=options.layers,
                         **shared)


# What a resumed run takes from its checkpoint: given again, these options must say the same.
KEPT_ON_RESUME = {"cell": "--cell", "activation": "--activation", "init": "--init", "embed": "--embed",
                  "hidden": "--hidden", "layers": "--layers", "dropout": "--dropout", "tie": "--tie",
                  "softmax": "--softmax", "n_classes": "--classes", "level": "--level", "batch": "--batch",
                  "bptt": "--bptt", "optimizer": "--optimizer", "lr": "--lr", "clip": "--clip", "decay": "--decay",
                  "min_improvement": "--min-improvement", "patience": "--patience", "seed": "--seed",
                  "min_count": "--min-count", "max_vocab": "--max-vocab", "vocab_file": "--vocab",
                  "class_method": "--class-method", "window": "--window", "direct": "--direct"}
VOCABULARY_OPTIONS = ("min_count", "max_vocab", "vocab_file")
"""Recorded in the model (``meta["training"]["vocabulary"]``): a resumed run's vocabulary is its checkpoint's."""
BUDGET = ("epochs", "max_time")
"""Given on resume, ``--epochs`` and ``--max-time`` replace the checkpoint's: a run can be given longer."""


def _resumed_config(options, model, saved):
    """The checkpoint's ``TrainConfig`` with the budget options given now; refuses, naming each, the
    options given with another value than the checkpoint's (its network and schedule go on as they were)."""
    given = options.set_on_purpose()
    net = model.config
    network = ("cell", "activation", "init", "embed", "hidden", "layers", "dropout", "tie", "softmax")
    schedule = ("batch", "bptt", "optimizer", "lr", "clip", "decay", "min_improvement", "patience", "seed")
    training = model.meta.get("training", {})
    recorded = {**{k: getattr(net, k) for k in network}, **{k: getattr(saved, k) for k in schedule},
                "n_classes": net.n_classes if net.softmax == "class" else None, "level": model.vocab.level,
                "class_method": training.get("class_method"),
                "window": getattr(net, "window", None), "direct": getattr(net, "direct", False),
                **{k: training.get("vocabulary", {}).get(k, "not recorded") for k in VOCABULARY_OPTIONS}}
    differing = [f"{flag} {getattr(options, name)} (checkpoint: {recorded[name]})"
                 for name, flag in KEPT_ON_RESUME.items()
                 if name in given and getattr(options, name) != recorded[name]]
    if differing:
        raise LmtoolError(f"a resumed run goes on with its checkpoint's settings, and these differ: "
                          f"{', '.join(differing)}; drop them, or start a new run without --resume", options.resume)
    return replace(saved, **{name: getattr(options, name) for name in BUDGET if name in given})


def word_classes(data, vocab_size, options, progress=silent, echo=None):
    """The classes of ``--softmax class``: ``--classes`` of them (default sqrt(V)) by ``--class-method``.

    Counts are of the words as the network predicts them, ``</s>`` included (one per sentence, so
    usually among the most frequent); every word counts one more, so unseen ones still get a class.
    Exchange clustering shows a bar, a pass per step (about 0.2 s per pass on KJV, 1.7 s on 10M tokens).
    """
    import numpy as np

    from ..kernels.softmax import make_classes
    from ..kernels.word_clusters import PASSES, exchange_classes
    from .batches import sentence_stream

    x, y, _ = sentence_stream(data.ids, data.lengths)
    try:
        if options.class_method != "exchange":
            return make_classes(np.bincount(y, minlength=vocab_size) + 1, options.n_classes)
        bar = progress("clustering words", total=PASSES, unit="pass")
        last = {}

        def log(n, moved, loglik):
            last.update(ppl=math.exp(-loglik / max(len(y), 1)))
            bar.update(1)
            bar.set_postfix_str(f"{moved} words moved, class bigram ppl {last['ppl']:.2f}")

        try:
            classes = exchange_classes(x, y, vocab_size, options.n_classes, log=log)
        finally:
            bar.close()
        if echo and last:
            echo(f"{classes.n_classes} classes by exchange clustering, class bigram perplexity {last['ppl']:.2f}")
        return classes
    except ValueError as err:
        raise LmtoolError(f"--classes: {err}") from None


def _write_log(path, rows):
    from ..modelfile import atomic_output

    with atomic_output(path, "w") as out:
        writer = csv.DictWriter(out, fieldnames=["epoch", "lr", "train_ppl", "valid_ppl", "tokens", "complete"])
        writer.writeheader()
        writer.writerows(rows)


def plot_history(rows, path):
    """Train and valid perplexity per epoch as a PNG (matplotlib, imported only here)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LmtoolError("--plot needs matplotlib: pip install matplotlib", path) from None
    from ..modelfile import atomic_output

    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [r["train_ppl"] for r in rows], "o-", label="train")
    if any(r["valid_ppl"] is not None for r in rows):
        ax.plot(epochs, [r["valid_ppl"] for r in rows], "s-", label="valid")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(path, "wb") as out:
        fig.savefig(out, format="png")
    plt.close(fig)
