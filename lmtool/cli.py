"""The lmtool command line: each subcommand parses its options, calls the library and formats.

Results go to stdout, progress bars and messages to stderr. Bad input ends with one line,
``lmtool: error: ...``, and a non-zero exit status; outputs are written to a temporary file and
renamed into place, so a failure never leaves a partial file.
"""

import errno
import json
import math
import os
import sys
import warnings
from functools import partial

import click

from .errors import LmtoolError, LmtoolWarning

SMOOTHING_CHOICES = ("modified-kneser-ney", "kneser-ney", "witten-bell", "add-k", "stupid-backoff")
LEVEL_CHOICES = ("word", "char")


def _tqdm_factory(quiet):
    """A progress factory (see ``lmtool.progress``) drawing tqdm bars on stderr, or nothing."""
    from .progress import silent

    if quiet or not sys.stderr.isatty():
        return silent  # bars redrawn into a log file or a pipe are noise, and would break one-line errors

    def factory(desc=None, total=None, unit="it"):
        from tqdm import tqdm

        return tqdm(desc=desc, total=total, unit=unit, unit_scale=unit == "B", file=sys.stderr,
                    leave=False, dynamic_ncols=True, mininterval=0.25)

    return factory


def quiet_option(command):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars on stderr.")(command)


def _check_writable(path):
    """Fail before long work if ``path`` cannot be written (missing folder, a directory, no permission)."""
    from .modelfile import is_special

    if is_special(path):  # written through (``--arpa /dev/stdout``, ``>(gzip > x.gz)``): its folder does not matter
        if not os.access(path, os.W_OK):
            raise LmtoolError("cannot write: no permission", path)
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise LmtoolError("is a directory, expected an output file name", path)
    if not os.path.isdir(folder):
        raise LmtoolError(f"cannot write: folder {folder} does not exist", path)
    if not os.access(folder, os.W_OK):
        raise LmtoolError(f"cannot write: no permission in {folder}", path)


def _check_outputs(outputs, inputs=()):
    """``_check_writable`` for each output, and refuse an output that is also an input (it would be
    overwritten before it is read, or after) or that is named twice, before any work is done."""
    seen = {}
    for path in outputs:
        if path is None:
            continue
        if not path.strip():
            raise LmtoolError(f"an output file name cannot be empty, got {path!r}")
        _check_writable(path)
        real = os.path.realpath(path)
        if real in seen:
            also = "" if seen[real] == path else f" (also as {seen[real]})"
            raise LmtoolError(f"named twice as an output{also}; give each output its own name", path)
        seen[real] = path
        for source in inputs:
            if source and source != "-" and _same_file(source, path):
                raise LmtoolError(f"is also an input ({source}); choose another output name", path)


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (through links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _given_on_the_command_line():
    """Names of the current command's parameters set on its command line (not left at their default)."""
    ctx = click.get_current_context()
    return frozenset(name for name in ctx.params
                     if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE)


def _load(path):
    import lmtool

    return lmtool.load(path)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="lmtool", prog_name="lmtool")
def cli():
    """Language models from plain text: n-gram (Kneser-Ney, ARPA) and recurrent (RNN, LSTM, GRU).

    Corpora are UTF-8 text, one sentence per line, tokens separated by spaces (gzip, bzip2 and xz
    are read transparently; '-' is stdin). Run 'lmtool COMMAND --help' for each command.
    """


@cli.command()
@click.argument("corpus", nargs=-1, required=True)
@click.option("-o", "--output", required=True, metavar="MODEL", help="Model file to write.")
@click.option("--order", "-n", default=3, show_default=True, type=int, help="Longest n-gram.")
@click.option("--smoothing", type=click.Choice(SMOOTHING_CHOICES), default="modified-kneser-ney",
              show_default=True, help="How counts become probabilities.")
@click.option("--k", "add_k", type=float, help="Count added to every n-gram with --smoothing add-k  [default: 1, Laplace]")
@click.option("--arpa", metavar="FILE", help="Also write the model as an ARPA file.")
@click.option("--level", type=click.Choice(LEVEL_CHOICES), default="word", show_default=True,
              help="Tokens are words (split on spaces) or characters (spaces included).")
@click.option("--vocab", "vocab_file", metavar="FILE", help="Only these tokens (whitespace-separated); others are <unk>.")
@click.option("--min-count", type=int, default=1, show_default=True, help="Rarer tokens become <unk>.")
@click.option("--max-vocab", type=int, help="Keep only the N most frequent tokens (specials included).")
@click.option("--memory", "-S", metavar="SIZE",
              help="Count within about SIZE of memory (500M, 2G, 50% of RAM; as lmplz -S), spilling sorted "
                   "counts to --tmp. The final counts are still held for smoothing.")
@click.option("--tmp", "-T", metavar="DIR", help="Folder for --memory's temporary files  [default: $TMPDIR, "
                                                 "else the output's folder]")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Count chunks of the corpus on N threads (same model, byte for byte).")
@click.option("--dask", metavar="ADDRESS",
              help="Count on a Dask cluster: tcp://HOST:PORT of a scheduler, or local:N worker processes. "
                   "CORPUS files (globs allowed) are shards, large plain ones cut at line boundaries; paths "
                   "must be visible to the workers.")
@quiet_option
def count(corpus, output, order, smoothing, add_k, arpa, level, vocab_file, min_count, max_vocab, memory, tmp,
          threads, dask, quiet):
    """Count n-grams in CORPUS files and write a smoothed n-gram model.

    Modified Kneser-Ney, interpolated, with three discounts per order estimated as KenLM's lmplz
    estimates them, is the default. --memory, --threads and --dask change how counts are gathered,
    never the model: its bytes are the same.
    """
    from .modelfile import staged_outputs
    from .ngram.arpa import write_arpa
    from .ngram.build import check_order, counting_plan, describe_counting, write_ngram_model
    from .vocab import read_vocab_file

    check_order(order)
    plan = counting_plan(memory=memory, tmp=tmp, threads=threads, dask=dask, output=output)
    if add_k is not None and smoothing != "add-k":
        raise LmtoolError(f"--k applies to --smoothing add-k only, not to {smoothing}")
    add_k = 1.0 if add_k is None else add_k
    if smoothing == "add-k" and not 0 < add_k <= 1e6:
        raise LmtoolError(f"--k must be positive (and at most 1e6), got {add_k}")
    if arpa and level == "char":
        raise LmtoolError("a character-level model cannot be written as ARPA (its tokens include the space); "
                          "drop --arpa", arpa)
    _check_outputs((output, arpa), (*corpus, vocab_file))
    keep = read_vocab_file(vocab_file) if vocab_file else None
    options = {"k": add_k} if smoothing == "add-k" else {}
    stats = {}
    with staged_outputs(output, arpa) as staged:  # both files appear together, or neither
        model = write_ngram_model(list(corpus), staged[0], order=order, smoothing=smoothing, level=level,
                                  min_count=min_count, max_vocab=max_vocab, keep=keep,
                                  progress=_tqdm_factory(quiet), stats=stats, **plan, **options)
        if arpa:
            write_arpa(model, staged[1])
    if not quiet:
        sizes = " ".join(f"{n}:{s:,}" for n, s in enumerate(model.sizes, 1))
        click.echo(f"{output}: {model.order}-gram {smoothing}, vocabulary {len(model.vocab):,}, "
                   f"n-grams {sizes}", err=True)
        how = describe_counting(stats, plan)
        if how and not quiet:
            click.echo(how, err=True)


def _duration(text):
    """Seconds in '15m', '90s', '1h30m', '2.5h' or a plain number of seconds."""
    import re

    if text is None:
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms]?)", text.strip().lower())
    if not parts or "".join(a + b for a, b in parts) != re.sub(r"\s", "", text.strip().lower()):
        raise LmtoolError(f"--max-time: expected a duration like 15m, 90s or 1h30m, got {text!r}")
    seconds = sum(float(a) * {"h": 3600, "m": 60, "s": 1, "": 1}[b] for a, b in parts)
    if seconds <= 0:
        raise LmtoolError(f"--max-time must be positive, got {text!r}")
    return seconds


@cli.command()
@click.argument("corpus", nargs=-1, required=True)
@click.option("-o", "--output", required=True, metavar="MODEL", help="Model file to write (the best on --valid).")
@click.option("--valid", "valid_file", metavar="FILE", help="Validation text: drives learning-rate decay and early stopping.")
@click.option("--cell", type=click.Choice(("rnn", "lstm", "gru")), default="lstm", show_default=True)
@click.option("--activation", type=click.Choice(("tanh", "relu", "sigmoid")),
              help="Nonlinearity of --cell rnn  [default: tanh]")
@click.option("--init", type=click.Choice(("default", "identity")), default="default", show_default=True,
              help="identity: recurrent weights start as the identity (IRNN; use with --activation relu).")
@click.option("--embed", type=int, help="Embedding size (default: --hidden).")
@click.option("--hidden", type=int, default=200, show_default=True, help="Units per recurrent layer.")
@click.option("--layers", type=int, default=1, show_default=True)
@click.option("--dropout", type=float, default=0.0, show_default=True, help="Dropout between layers and before the output.")
@click.option("--tie", is_flag=True, help="Share embedding and output weights (needs --embed = --hidden).")
@click.option("--softmax", type=click.Choice(("full", "class")), default="full", show_default=True,
              help="class: words in ~sqrt(V) classes, P(w|h) = P(class|h) P(w|class,h) (faster).")
@click.option("--classes", "n_classes", type=int, help="Number of classes for --softmax class (default sqrt(V)).")
@click.option("--class-method", type=click.Choice(("exchange", "frequency")), default="exchange", show_default=True,
              help="Classes of --softmax class: exchange clustering of word bigrams, or frequency bins (RNNLM's).")
@click.option("--level", type=click.Choice(LEVEL_CHOICES), default="word", show_default=True)
@click.option("--vocab", "vocab_file", metavar="FILE", help="Only these tokens; others are <unk>.")
@click.option("--min-count", type=int, default=1, show_default=True, help="Rarer tokens become <unk>.")
@click.option("--max-vocab", type=int, help="Keep only the N most frequent tokens.")
@click.option("--batch", type=int, default=20, show_default=True, help="Parallel streams per batch.")
@click.option("--bptt", type=int, default=35, show_default=True, help="Steps of backpropagation through time.")
@click.option("--optimizer", type=click.Choice(("sgd", "adam")), default="sgd", show_default=True)
@click.option("--lr", type=float, help="Learning rate (default: 20 for sgd, 0.002 for adam).")
@click.option("--clip", type=float, default=0.25, show_default=True, help="Largest gradient norm (0: no clipping).")
@click.option("--decay", type=float, default=4.0, show_default=True, help="Divide the learning rate by this when valid stops improving.")
@click.option("--min-improvement", type=float, default=0.0, show_default=True,
              help="Also decay when valid perplexity improves by less than this fraction (RNNLM's rule, e.g. 0.01).")
@click.option("--patience", type=int, default=3, show_default=True, help="Stop after this many epochs without improvement.")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--max-time", help="Training time budget, e.g. 15m or 1h30m.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same command and seed, same model bytes.")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Worker threads, each training on its share of the --batch streams (same seed and N, same bytes).")
@click.option("--resume", metavar="CKPT", help="Continue an interrupted run from its checkpoint (MODEL.ckpt).")
@click.option("--log", "log_file", metavar="FILE", help="Write the per-epoch log as CSV.")
@click.option("--plot", "plot_file", metavar="FILE.png", help="Draw train and valid perplexity per epoch (needs matplotlib).")
@quiet_option
def train(corpus, output, valid_file, cell, activation, init, embed, hidden, layers, dropout, tie, softmax, n_classes,
          class_method, level, vocab_file, min_count, max_vocab, batch, bptt, optimizer, lr, clip, decay,
          min_improvement, patience, epochs, max_time, seed, threads, resume, log_file, plot_file, quiet):
    """Train a recurrent language model (RNN, LSTM or GRU) on CORPUS files.

    Truncated backpropagation through time over sentences (each starts from a fresh state, as it is
    scored), SGD or Adam with gradient clipping, the learning rate divided by --decay whenever the
    validation perplexity stops improving. The best model on --valid is written to MODEL; a
    checkpoint MODEL.ckpt is kept every few minutes and on Ctrl-C for --resume.
    """
    from .neural.session import TrainOptions, run_training

    if activation is not None and cell != "rnn":
        raise LmtoolError(f"--activation applies to --cell rnn only; {cell.upper()} cells have their own gates")
    options = TrainOptions(
        corpus=list(corpus), output=output, valid=valid_file, cell=cell, activation=activation or "tanh",
        init=init, embed=hidden if embed is None else embed, hidden=hidden, layers=layers, dropout=dropout, tie=tie,
        softmax=softmax,
        n_classes=n_classes, class_method=class_method, level=level, vocab_file=vocab_file, min_count=min_count,
        max_vocab=max_vocab,
        batch=batch, bptt=bptt, optimizer=optimizer, lr=lr, clip=clip, decay=decay, min_improvement=min_improvement,
        patience=patience,
        epochs=epochs, max_time=_duration(max_time), seed=seed, threads=threads, resume=resume,
        log_file=log_file, plot_file=plot_file, given=_given_on_the_command_line())
    from .neural.train import checkpoint_path

    _check_outputs((output, checkpoint_path(output), log_file, plot_file), (*corpus, valid_file, vocab_file))
    model = run_training(options, progress=_tqdm_factory(quiet), echo=None if quiet else
                         (lambda text: click.echo(text, err=True)))
    if not quiet:
        best = model.meta.get("training", {}).get("best")
        net = model.config  # the checkpoint's, on --resume
        click.echo(f"{output}: {net.cell} {net.layers}x{net.hidden}, vocabulary {len(model.vocab):,}"
                   + (f", best {'valid' if valid_file else 'training'} perplexity {best:.2f}" if best else ""),
                   err=True)


@cli.command()
@click.argument("model")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the summary.")
@click.option("--threads", type=int, default=1, show_default=True, help="Score chunks of the input on N threads.")
@quiet_option
def perplexity(model, files, as_json, threads, quiet):
    """Perplexity of MODEL on FILES (one sentence per line; '-' is stdin).

    Tokens are words plus one </s> per sentence; words outside the vocabulary (OOVs) are scored as
    <unk>, as KenLM's query does.
    """
    from .scoring import corpus_totals
    from .threads import check_threads

    check_threads(threads)
    lm = _load(model)
    if not lm.normalized:
        raise LmtoolError(f"its {lm.meta.get('smoothing')} scores are not probabilities (they do not sum "
                          "to one), so perplexity is meaningless; use 'lmtool score' for the raw scores", model)
    summary = corpus_totals(lm, list(files), progress=_tqdm_factory(quiet), threads=threads).summary()
    if as_json:
        click.echo(json.dumps(dict(summary, model=model, kind=lm.kind)))
        return
    click.echo(f"Perplexity including OOVs:\t{summary['perplexity']:.5f}\n"
               f"Perplexity excluding OOVs:\t{summary['perplexity_excluding_oov']:.5f}\n"
               f"OOVs:\t{summary['oov']}\n"
               f"Tokens:\t{summary['tokens']}\n"
               f"Sentences:\t{summary['sentences']}\n"
               f"Log10 probability:\t{summary['logprob10']:.4f}")


@cli.command()
@click.argument("model")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of tab-separated values.")
@click.option("--per-token", is_flag=True, help="Add each token's log10 probability (and n-gram length).")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Score chunks of the input on N threads (same output, in order).")
@quiet_option
def score(model, files, as_json, per_token, threads, quiet):
    """Score each line of FILES with MODEL: one output line per input line, in order.

    Columns: total log10 probability (</s> included), tokens (words + </s>), OOVs. With
    --per-token, then one column per token: TOKEN, the n-gram length used, and its log10 p.
    """
    from .scoring import format_scores, score_chunks
    from .threads import check_threads

    check_threads(threads)
    lm = _load(model)
    out = sys.stdout
    formatted = partial(format_scores, lm, as_json=as_json, per_token=per_token)
    for text in score_chunks(lm, list(files), progress=_tqdm_factory(quiet), threads=threads, then=formatted):
        out.write(text)
    out.flush()


@cli.command()
@click.argument("model")
@click.option("--prefix", default="", help="Start every sentence with these tokens.")
@click.option("-n", "count_", default=1, show_default=True, type=int, help="Number of sentences.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed: same seed, same text.")
@click.option("--temperature", default=1.0, show_default=True, type=float,
              help="Below 1 sharpens the distribution, above 1 flattens it.")
@click.option("--top-k", default=0, show_default=True, type=int, help="Sample among the K likeliest tokens (0: all).")
@click.option("--max-tokens", default=100, show_default=True, type=int, help="Stop a sentence after this many tokens.")
@quiet_option
def generate(model, prefix, count_, seed, temperature, top_k, max_tokens, quiet):
    """Generate sentences from MODEL by sampling, one per line; a sentence stops at </s>."""
    from .corpus import line_tokens
    from .sampling import check_options, sentences

    check_options(temperature, top_k, max_tokens, count_, seed)
    lm = _load(model)
    tokens = line_tokens(prefix, lm.vocab.level)
    samples = sentences(lm, lm.vocab.encode(tokens), n=count_, seed=seed, temperature=temperature, top_k=top_k,
                        max_tokens=max_tokens)
    glue = "" if lm.vocab.level == "char" else " "
    for ids in samples:
        click.echo(glue.join(tokens + lm.vocab.decode(ids)))


@cli.command()
@click.argument("source")
@click.argument("target")
@quiet_option
def convert(source, target, quiet):
    """Convert between ARPA and lmtool model files.

    An ARPA SOURCE (from KenLM, SRILM or lmtool) becomes an lmtool model; an lmtool n-gram model
    becomes ARPA when TARGET ends in .arpa, gzipped when it ends in .arpa.gz.
    """
    from . import modelfile
    from .ngram.arpa import is_arpa_name, read_arpa, write_arpa
    from .scratch import is_pipe

    _check_outputs((target,), (source,))
    progress = _tqdm_factory(quiet)
    if not is_pipe(source) and modelfile.is_model_file(source):  # a pipe is read once: as ARPA
        lm = _load(source)
        if lm.kind != "ngram":
            raise LmtoolError(f"a {lm.kind} model has no ARPA form; only n-gram models convert", source)
    else:
        bar = progress("reading ARPA", unit="order")
        try:
            lm = read_arpa(source, progress=bar.update)
        finally:
            bar.close()
    if is_arpa_name(target):
        write_arpa(lm, target)
    else:
        lm.save(target)


@cli.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the model's header as JSON.")
@quiet_option
def info(model, as_json, quiet):
    """Describe MODEL: kind, order, vocabulary, n-gram counts, options, training data, size."""
    from . import modelfile

    opened = modelfile.read(model, verify=False)
    details = {"file": model, "kind": opened.kind, "bytes": os.path.getsize(model), **opened.meta}
    if "params" in opened.arrays:
        details["parameters"] = int(opened["params"].size)
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        click.echo(f"{key}:\t{value}")


def _weights(text):
    """The numbers of --weights '0.7,0.3'."""
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise LmtoolError(f"--weights: expected numbers separated by commas (one per model), got {text!r}") from None


@cli.command()
@click.argument("models", nargs=-1, required=True)
@click.option("-o", "--output", required=True, metavar="MODEL",
              help="Mixture model file to write (with --static: an n-gram model, ARPA if named .arpa or .arpa.gz).")
@click.option("--tune", "dev", metavar="DEV", help="Find the weights on this held-out text (EM; log-linear: maximum "
                                                   "likelihood) and print the dev perplexities.")
@click.option("--weights", metavar="W1,W2,...", help="Set the weights by hand, one per model.")
@click.option("--loglinear", is_flag=True, help="P(w|h) proportional to prod_i P_i(w|h)^w_i, normalised over the "
                                                "vocabulary, instead of sum_i w_i P_i(w|h).")
@click.option("--static", is_flag=True, help="Merge n-gram members into one backoff n-gram model instead.")
@quiet_option
def mix(models, output, dev, weights, loglinear, static, quiet):
    """Make one model of MODELS (n-gram, recurrent or mixtures), linearly or log-linearly.

    The weights come from --tune DEV (EM on the members' probabilities of DEV's tokens, until the
    dev perplexity improves by less than 1e-6 relative) or from --weights. Members may have
    different vocabularies: a word a member lacks gets that member's <unk> probability shared
    among all the words it lacks. The mixture file holds its members whole.
    """
    from .mixture import LINEAR, LOGLINEAR, MixtureModel
    from .mixture_weights import given, tune

    if len(models) < 2:
        raise LmtoolError(f"a mixture needs at least two models, got {len(models)}")
    if (dev is None) == (weights is None):
        raise LmtoolError("give either --tune DEV (to find the weights) or --weights W1,W2,... (to set them)")
    mode = LOGLINEAR if loglinear else LINEAR
    hand = _weights(weights) if weights is not None else None
    if static and loglinear:
        raise LmtoolError("--static merges linear mixtures only (a log-linear one is normalised at every position, "
                          "which no backoff model stores); drop --loglinear")
    from .ngram.arpa import is_arpa_name

    if is_arpa_name(output) and not static:
        raise LmtoolError("a mixture has no ARPA form; add --static to merge n-gram members into one n-gram model",
                          output)
    _check_outputs((output,), (*models, dev))
    start = [1.0 / len(models)] * len(models)
    mixture = MixtureModel.from_files(list(models), start, mode)
    if static:
        from .ngram.merge import check_mergeable

        check_mergeable(mixture)
    if hand is not None:
        mixture = given(mixture, hand)
    else:
        mixture, report = tune(mixture, [dev], progress=_tqdm_factory(quiet))
        for i, (name, ppl) in enumerate(zip(models, report["members_dev_perplexity"]), 1):
            click.echo(f"member {i}: {name} ({mixture.members[i - 1].kind}), dev perplexity {ppl:.4f}")
        steps = (f"{report['iterations']} iterations" if "iterations" in report
                 else f"{report['passes']} passes over the dev text")
        click.echo(f"weights ({report['method']}, {steps}): "
                   + ",".join(f"{w:.6f}" for w in mixture.weights))
        click.echo(f"mixture dev perplexity: {report['dev_perplexity']:.4f}")
    if not static:
        mixture.save(output)
        return
    from .ngram.arpa import write_arpa
    from .ngram.merge import merge_ngram_models

    merged = merge_ngram_models(mixture)
    if is_arpa_name(output):
        write_arpa(merged, output)
    else:
        merged.save(output)
    if not quiet:
        sizes = " ".join(f"{n}:{s:,}" for n, s in enumerate(merged.sizes, 1))
        click.echo(f"{output}: merged {merged.order}-gram, vocabulary {len(merged.vocab):,}, n-grams {sizes}",
                   err=True)


@cli.command()
@click.argument("model")
@click.argument("nbest", nargs=-1, required=True)
@click.option("--lm-weight", type=float, default=1.0, show_default=True,
              help="New score = score + LM_WEIGHT * log10 P(hypothesis) + WORD_PENALTY * words.")
@click.option("--word-penalty", type=float, default=0.0, show_default=True, help="Added per word of a hypothesis.")
@click.option("--best", is_flag=True, help="Print one line per list: id<TAB>its best hypothesis.")
@click.option("--sort", is_flag=True, help="Print each list best first (default: in input order).")
@click.option("--tune", "references", metavar="REFERENCES",
              help="Find the LM weight and word penalty with the lowest word error rate against these "
                   "references (one line per list, in order) and print them with the WER before and after.")
@click.option("-o", "--output", metavar="FILE", help="Write here instead of stdout (whole, or not at all).")
@quiet_option
def rescore(model, nbest, lm_weight, word_penalty, best, sort, references, output, quiet):
    """Re-rank the n-best lists of NBEST files with MODEL.

    Formats (told apart by their first line): SRILM's NBestList1.0 ('(score) w1 w2 ...', bytelog
    scores) and 'ascore lscore nwords w1 w2 ...' (log10), and 'id<TAB>score<TAB>hypothesis' with
    the hypotheses of one list together. Each list is written back in its format with the scores
    filled in, or, with --best, as 'id<TAB>best hypothesis' (a SRILM list's id is its file name).
    """
    from .nbest import format_best, format_list, read_lists, scored_lists

    for name, value in (("--lm-weight", lm_weight), ("--word-penalty", word_penalty)):
        if not math.isfinite(value):
            raise LmtoolError(f"{name} must be a finite number, got {value}")
    if references is not None and (best or sort):
        raise LmtoolError("--tune prints the weights it finds; run again with them for --best or --sort")
    if references is not None and output is not None:
        raise LmtoolError("--tune prints the weights it finds to stdout; drop -o")
    _check_outputs((output,), (*nbest, references, model))
    lm = _load(model)
    if not lm.normalized:
        raise LmtoolError(f"its {lm.meta.get('smoothing')} scores are not probabilities, so they do not weigh "
                          "against the n-best scores; use a normalised model", model)
    lists = scored_lists(lm, read_lists(list(nbest)))
    if references is not None:
        _tune_rescoring(lists, references, lm_weight, word_penalty)
        return
    from .modelfile import atomic_output

    def write(out):
        for scored in lists:
            out.write(format_best(scored, lm_weight, word_penalty) if best
                      else format_list(scored, lm_weight, word_penalty, sort))

    if output is None:
        write(sys.stdout)
        sys.stdout.flush()
    else:
        with atomic_output(output, "w", encoding="utf-8") as out:
            write(out)


def _tune_rescoring(lists, references, lm_weight, word_penalty):
    """``rescore --tune``: gather WER statistics list by list, search the weights, print the result."""
    from .corpus import read_chunks
    from .wer import ErrorStats, oracle_error_rate, tune_weights, word_error_rate

    def reference_lines():
        for chunk in read_chunks([references]):
            text = chunk.data.decode("utf-8")
            yield from (text[:-1] if text.endswith("\n") else text).split("\n")

    refs = reference_lines()
    stats, batch, batch_refs = ErrorStats(), [], []
    for scored in lists:
        line = next(refs, None)
        if line is None:
            raise LmtoolError(f"fewer references than n-best lists (list {scored.nbest.id!r} has none); give one "
                              "reference line per list, in order", references)
        batch.append(scored)
        batch_refs.append(line)
        if len(batch) >= 1024:
            stats.add(batch, batch_refs)
            batch, batch_refs = [], []
    stats.add(batch, batch_refs)
    extra = sum(1 for _ in refs)
    gathered = stats.finish()
    if extra:
        raise LmtoolError(f"{gathered.lists + extra} references for {gathered.lists} n-best lists; give one "
                          "reference line per list, in order", references)
    before = word_error_rate(gathered, lm_weight, word_penalty)
    tuned_lm, tuned_wp, after = tune_weights(gathered, lm_weight, word_penalty)
    click.echo(f"lists {gathered.lists}, hypotheses {len(gathered.errors)}, reference words "
               f"{int(gathered.reference_words.sum())}")
    click.echo(f"WER with the n-best scores alone: {100 * word_error_rate(gathered, 0.0, 0.0):.2f}%")
    click.echo(f"WER before, --lm-weight {lm_weight:g} --word-penalty {word_penalty:g}: {100 * before:.2f}%")
    click.echo(f"WER after, --lm-weight {tuned_lm:.4f} --word-penalty {tuned_wp:.4f}: {100 * after:.2f}%")
    click.echo(f"oracle WER (each list's best hypothesis): {100 * oracle_error_rate(gathered):.2f}%")


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, LmtoolWarning):
        print(f"lmtool: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="")


def main(argv=None):
    """Entry point: run the command, turning every expected failure into one line on stderr."""
    _fill_closed_standard_streams()
    warnings.showwarning = _one_line_warning
    try:
        os.getcwd()
    except FileNotFoundError:  # relative paths mean nothing now, and every later failure would say less
        print("lmtool: error: the current folder no longer exists (it was removed); cd into one that does",
              file=sys.stderr)
        return 1
    if not (sys.argv[1:] if argv is None else argv):
        print(f"lmtool: error: missing command, one of: {', '.join(cli.commands)} (see 'lmtool --help')",
              file=sys.stderr)
        return 2
    from .interrupts import catching, received

    try:
        with catching():
            status = _run(argv)
            if status == 0 and received():  # a Ctrl-C that Python swallowed (see ``interrupts``)
                print("lmtool: interrupted", file=sys.stderr)
                status = 130
            return status
    finally:
        if "lmtool.modelfile" in sys.modules:
            sys.modules["lmtool.modelfile"].remove_pending()


def _run(argv):
    try:
        # click's own main() would print an empty line on Ctrl-C (for the terminal's "^C"): here the
        # KeyboardInterrupt comes through, and the one line below says what happened
        with cli.make_context("lmtool", list(sys.argv[1:] if argv is None else argv)) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as err:
        hint = f" (see 'lmtool {err.ctx.info_name} --help')" if getattr(err, "ctx", None) else ""
        if getattr(err, "ctx", None) and err.ctx.parent is None:
            hint = " (see 'lmtool --help')"
        print(f"lmtool: error: {err.format_message()}{hint}", file=sys.stderr)
        return err.exit_code
    except LmtoolError as err:
        kind = "interrupted" if err.exit_code == 130 else "error"
        print(f"lmtool: {kind}: {err}", file=sys.stderr)
        return err.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        after_echo = "\n" if sys.stderr.isatty() else ""  # a terminal shows "^C" where the cursor was
        print(f"{after_echo}lmtool: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _drop_stdout()
        return 1
    except OSError as err:  # files of ours become LmtoolError: this is mostly stdout (a full disk, say)
        if err.filename is None or err.filename == "<stdout>":
            print(f"lmtool: error: stdout: cannot write: {err.strerror or err}", file=sys.stderr)
            _drop_stdout()
        else:
            print(f"lmtool: error: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return 1
    except MemoryError:
        print("lmtool: error: out of memory; try a smaller --order, --max-vocab or corpus", file=sys.stderr)
        return 1
    return 0


class _ClosedStream:
    """Stands in for a standard stream that was closed (``<&-``, ``>&-``): using it is an error
    naming it, where Python would fail with a traceback or print results to nowhere."""

    def __init__(self, name, fd):
        self.name, self.fd = name, fd

    def fileno(self):
        return self.fd  # /dev/null now holds the number

    def _closed(self, *args, **kwargs):
        raise OSError(errno.EBADF, "it is closed", f"<{self.name}>")

    write = read = readline = __iter__ = _closed
    buffer = property(_closed)

    def isatty(self):
        return False

    def flush(self):
        pass


def _fill_closed_standard_streams():
    """Put /dev/null on each standard file descriptor that is closed, so that no file opened later
    takes its number (a model opened as fd 2 would receive error messages); a closed stdin or stdout
    then fails when used, naming it, and a closed stderr is /dev/null."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        devnull = os.open(os.devnull, os.O_RDWR)
        if devnull != fd:
            os.dup2(devnull, fd)
            os.close(devnull)
        setattr(sys, name, open(os.devnull, "w") if name == "stderr" else _ClosedStream(name, fd))


def _drop_stdout():
    """Point stdout at /dev/null, so that Python's last flush at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
