"""The ``train`` pipeline: options -> training text -> network (new, or a checkpoint's) -> Trainer ->
model file, per-epoch log and plot.

``run_training`` is what ``lmtool train`` runs; each stage is a function of its own below.
"""

import math
import os
from dataclasses import fields, replace

from .. import __version__
from ..errors import Interrupted, LmtoolError
from ..progress import bar, silent
from .options import BUDGET, KEPT_ON_RESUME, VOCABULARY_OPTIONS


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
    """Train as ``options`` (a ``TrainOptions``) say and return the trained ``RecurrentModel`` (a
    ``WindowModel`` for --cell window), also written to ``options.output``; ``echo`` receives a line per
    epoch and one on the classes."""
    options.check()
    if options.plot_file:
        from .history import check_plotting

        check_plotting(options.plot_file)
    set_threads(options.threads)
    from .train import Trainer, checkpoint_path
    from .window_train import WindowTrainer

    opened = _checkpoint(options.resume)
    data, valid = _training_text(options, opened, progress)
    if opened is not None:
        model, config = _resumed(options, opened, data)
    else:
        model, config = _new_model(options, data, progress, echo)
    if options.threads > 1:
        model.meta["training"] = dict(model.meta.get("training", {}), threads=options.threads)
    trainer = (WindowTrainer if model.kind == "window" else Trainer)(
        model, config, (data.ids, data.lengths, data.file_starts), valid, output=options.output, progress=progress,
        threads=options.threads)
    trainer.log = _epoch_log(options, trainer, echo)
    if opened is not None:
        trainer.load_checkpoint(opened)
    _train_keeping_a_checkpoint(trainer, checkpoint_path(options.output))
    if options.plot_file:
        from .history import plot_history

        plot_history(trainer.history.epochs, options.plot_file)
    return model


def _checkpoint(path):
    """The opened checkpoint of ``--resume``, or None."""
    if not path:
        return None
    from .. import modelfile

    opened = modelfile.read(path)
    if opened.kind not in NETWORK_KINDS:
        raise LmtoolError(f"a {opened.kind} model is not a training checkpoint", path)
    return opened


NETWORK_KINDS = ("recurrent", "window")
"""Model-file kinds that ``train`` writes (and resumes from)."""


def _training_text(options, opened, progress):
    """The training text encoded (with the checkpoint's vocabulary when resuming, which must be the
    text it was trained on) and the validation text's (ids, lengths), or None."""
    from ..encoded_corpus import encode_corpus

    if opened is not None:
        from .. import model_class

        vocab = model_class(opened.kind).from_file(opened).vocab
        data = encode_corpus(options.corpus, level=vocab.level, vocab=vocab, progress=progress,
                             threads=options.threads)
        recorded = opened.meta.get("training", {}).get("blake2b")
        if recorded and recorded != data.fingerprint:
            raise LmtoolError("the training text differs from the one this checkpoint was trained on "
                              "(its hash does not match); resume with the same files", options.resume)
    else:
        from ..vocab import read_vocab_file

        keep = read_vocab_file(options.vocab_file) if options.vocab_file else None
        data = encode_corpus(options.corpus, level=options.level, min_count=options.min_count,
                             max_vocab=options.max_vocab, keep=keep, progress=progress, threads=options.threads)
    if not options.valid:
        return data, None
    held_out = encode_corpus([options.valid], level=data.vocab.level, vocab=data.vocab, progress=progress)
    return data, (held_out.ids, held_out.lengths)


def _resumed(options, opened, data):
    """The checkpoint's model (writable) and its ``TrainConfig`` with this run's budget."""
    from .. import model_class
    from .train import TrainConfig

    model = model_class(opened.kind).from_file(opened, writable=True)
    config = _resumed_config(options, model, TrainConfig(**opened.meta["training"]["train_config"]))
    if options.valid:
        model.meta["training"] = dict(model.meta.get("training", {}), valid=options.valid)
    return model, config


def _new_model(options, data, progress, echo):
    """A freshly initialised model for ``options`` (its classes clustered first) and its ``TrainConfig``."""
    from .. import model_class
    from .config import NetworkConfig
    from .train import TrainConfig
    from .window import WindowConfig

    vocab = data.vocab
    options.fill_defaults(len(vocab))
    window = options.cell == "window"
    classes = word_classes(data, len(vocab), options, progress, echo) if options.softmax == "class" else None
    architecture = WindowConfig if window else NetworkConfig
    try:
        shared = _shared_fields(options, architecture)
        if shared["embed_range"] == architecture.init_range:
            shared["embed_range"] = None  # the embedding starts as the output weights do, as before the option
        if shared.get("embed_dropout") == shared["dropout"]:
            shared["embed_dropout"] = None  # the embeddings drop as the layers do, as before the option
        net_config = architecture(**dict(shared, vocab_size=len(vocab),
                                         n_classes=0 if classes is None else classes.n_classes))
    except ValueError as err:
        raise LmtoolError(str(err)) from None
    meta = {"training": dict(data.describe(), valid=options.valid,
                             vocabulary={k: getattr(options, k) for k in VOCABULARY_OPTIONS}),
            "lmtool_version": __version__}
    if options.stream:
        meta["stream"] = True  # recorded only when set: sentence models' files are as before
    if classes is not None:
        meta["training"]["class_method"] = options.class_method
    model = model_class("window" if window else "recurrent").create(vocab, net_config, classes, seed=options.seed,
                                                                     meta=meta)
    schedule = _shared_fields(options, TrainConfig)
    if window:
        schedule["bptt"] = None  # no backpropagation through time: each word is predicted from its window
    return model, TrainConfig(**schedule)


def _shared_fields(options, cls):
    """{name: value} of the options that are also fields of dataclass ``cls``."""
    return {f.name: getattr(options, f.name) for f in fields(cls) if hasattr(options, f.name)}


def _epoch_log(options, trainer, echo):
    """The trainer's per-epoch callback: a line to ``echo``, the CSV rewritten (``--log``, with each
    epoch's training seconds so far; a resumed run's earlier epochs have none)."""
    seconds = {}

    def log(row):
        seconds[row["epoch"]] = row["seconds"]
        if echo:
            valid_text = f", valid ppl {row['valid_ppl']:.2f}" if row["valid_ppl"] is not None else ""
            echo(f"epoch {row['epoch']}: lr {row['lr']:.4g}, train ppl {row['train_ppl']:.2f}{valid_text}")
        if options.log_file:
            from .history import write_log

            write_log(options.log_file, [dict(r, seconds=seconds.get(r["epoch"], "")) for r in trainer.history.epochs])
    return log


def _train_keeping_a_checkpoint(trainer, ckpt):
    """Run the trainer; on Ctrl-C (SIGTERM, SIGHUP) its checkpoint is saved and the interruption says
    how to resume; on success the checkpoint goes."""
    try:
        trainer.run(checkpoint_path=ckpt)
    except KeyboardInterrupt:
        if not os.path.exists(ckpt):  # stopped before the checkpoint could be written
            raise Interrupted("no checkpoint was written") from None
        raise Interrupted(f"checkpoint saved; continue with: lmtool train ... --resume {ckpt}") from None
    if os.path.exists(ckpt):
        os.unlink(ckpt)


def _resumed_config(options, model, saved):
    """The checkpoint's ``TrainConfig`` with the budget options given now; refuses, naming each, the
    options given with another value than the checkpoint's (its network and schedule go on as they were)."""
    given = options.set_on_purpose()
    net = model.config
    training = model.meta.get("training", {})
    vocabulary = training.get("vocabulary", {})
    recorded = {**_shared_fields(net, type(options)), **_shared_fields(saved, type(options)),
                "n_classes": net.n_classes if net.softmax == "class" else None, "level": model.vocab.level,
                "class_method": training.get("class_method"), "stream": bool(model.meta.get("stream")),
                "embed_range": net.init_range if net.embed_range is None else net.embed_range,
                "embed_dropout": getattr(net, "embedding_dropout", None),  # the window model has none
                **{k: vocabulary.get(k, "not recorded") for k in VOCABULARY_OPTIONS}}
    differing = [f"{flag} {getattr(options, name)} (checkpoint: {recorded.get(name)})"
                 for name, flag in KEPT_ON_RESUME.items()
                 if name in given and getattr(options, name) != recorded.get(name)]
    if differing:
        raise LmtoolError(f"a resumed run goes on with its checkpoint's settings, and these differ: "
                          f"{', '.join(differing)}; drop them, or start a new run without --resume", options.resume)
    return replace(saved, **{name: getattr(options, name) for name in BUDGET if name in given})


def word_classes(data, vocab_size, options, progress=silent, echo=None):
    """The classes of ``--softmax class``: ``--classes`` of them by ``--class-method``.

    Counts are of the words as the network predicts them, ``</s>`` included (one per sentence, so
    usually among the most frequent), after the inputs it reads them from (``--stream``: the
    running text's). Exchange clustering shows a bar, a pass per step (about 0.2 s per pass on KJV,
    1.7 s on 10M tokens).
    """
    from .batches import sentence_stream, text_stream
    from .choices import CLASS_METHODS
    from .classes import PASSES

    x, y, _ = (text_stream(data.ids, data.lengths, data.file_starts) if options.stream
               else sentence_stream(data.ids, data.lengths))
    last = {}
    with bar(progress, "clustering words", total=PASSES, unit="pass") as passes:
        def log(n, moved, loglik):
            last.update(ppl=math.exp(-loglik / max(len(y), 1)))
            passes.update(1)
            passes.set_postfix_str(f"{moved} words moved, class bigram ppl {last['ppl']:.2f}")

        try:
            classes = CLASS_METHODS[options.class_method](x, y, vocab_size, options.n_classes, log=log)
        except ValueError as err:
            raise LmtoolError(f"--classes: {err}") from None
    if echo and last:
        echo(f"{classes.n_classes} classes by exchange clustering, class bigram perplexity {last['ppl']:.2f}")
    return classes
