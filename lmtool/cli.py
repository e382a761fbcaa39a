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
from .outputs import check_outputs
from .scoring_options import PerplexityOptions, ScoreOptions



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


def options_of(cls):
    """Decorator: the click arguments and options of the fields of ``cls`` (``lmtool.options``), in
    their order, each passed to the command under its field's name."""
    from .options import declared

    def decorate(command):
        for f, meta in reversed(declared(cls)):
            if meta.argument:
                listed = {"callback": lambda ctx, param, value: list(value)} if meta.nargs == -1 else {}
                command = click.argument(f.name, nargs=meta.nargs, required=True, **listed)(command)
                continue
            help_text, shown = meta.help, f.default is not None
            if meta.default_text:
                help_text, shown = f"{help_text}  [default: {meta.default_text}]".lstrip(), False
            if meta.is_flag:
                kind = {"is_flag": True}
            elif meta.numbers:
                kind = {"cls": _NumbersOption}
            else:
                kind = {"type": click.Choice(tuple(meta.choices)) if meta.choices is not None else
                        str if meta.convert else f.type, "show_default": shown}
                if f.default is not None:  # click takes an explicit None as a default that satisfies required=True
                    kind["default"] = f.default
            command = click.option(*(meta.flags or (meta.flag(f.name),)), f.name, help=help_text or None,
                                   metavar=meta.metavar, required=meta.required, **kind)(command)
        return command
    return decorate


def _given_on_the_command_line():
    """Names of the current command's parameters set on its command line (not left at their default)."""
    ctx = click.get_current_context()
    return frozenset(name for name in ctx.params
                     if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE)


def _load(path):
    import lmtool

    return lmtool.load(path)


class _NumbersOption(click.Option):
    """An option that takes every number written after it (``--prune 0 1 1``, as lmplz has it; click
    takes one value per option): the command receives them joined by spaces."""

    NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"

    def add_to_parser(self, parser, ctx):
        import re

        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            store = option.process

            def process(value, state, store=store):
                values = [value]
                while state.rargs and re.fullmatch(self.NUMBER, state.rargs[0]):
                    values.append(state.rargs.pop(0))
                store(" ".join(values), state)

            option.process = process


class _Commands(click.Group):
    """The command group, where a command declared with ``deferred`` is built when it is used: ``train``
    and ``count`` have dozens of options, and making their dataclasses and click options is a good part
    of what ``lmtool score`` on one sentence would otherwise spend starting."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.deferred = {}

    def list_commands(self, ctx):
        return sorted({*self.commands, *self.deferred})

    def get_command(self, ctx, name):
        if name not in self.commands and name in self.deferred:
            function, options = self.deferred[name]
            self.add_command(click.command(name)(options_of(_resolve(options))(quiet_option(function))))
        return self.commands.get(name)


def _resolve(path):
    from importlib import import_module

    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def deferred(options):
    """Decorator: a command taking the options of the dataclass at ``options`` ("module:Class") and
    ``--quiet``, built when first used (``_Commands``)."""
    def register(function):
        cli.deferred[function.__name__] = (function, options)
        return function
    return register


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="lmtool", prog_name="lmtool")
def cli():
    """Language models from plain text: n-gram (Kneser-Ney, ARPA) and recurrent (RNN, LSTM, GRU).

    Corpora are UTF-8 text, one sentence per line, tokens separated by spaces (gzip, bzip2 and xz
    are read transparently; '-' is stdin). Run 'lmtool COMMAND --help' for each command.
    """


@deferred("lmtool.ngram.options:CountOptions")
def count(quiet, **fields):
    """Count n-grams in CORPUS files and write a smoothed n-gram model.

    Modified Kneser-Ney, interpolated, with three discounts per order estimated as KenLM's lmplz
    estimates them, is the default. --memory, --threads and --dask change how counts are gathered,
    never the model: its bytes are the same.
    """
    from .ngram import build
    from .ngram.arpa import write_arpa
    from .ngram.options import CountOptions
    from .outputs import staged_outputs

    options = CountOptions(**fields).check()
    check_outputs((options.output, options.arpa), (*options.corpus, options.vocab_file))
    stats = {}
    with staged_outputs(options.output, options.arpa) as staged:  # both files appear together, or neither
        model = build.write_ngram_model(options.corpus, staged[0], options, progress=_tqdm_factory(quiet),
                                        stats=stats)
        if options.quantize is not None:
            model = _quantized(model, options.quantize, staged[0])
        if options.arpa:
            write_arpa(model, staged[1])
    if not quiet:
        sizes = " ".join(f"{n}:{s:,}" for n, s in enumerate(model.sizes, 1))
        click.echo(f"{options.output}: {model.order}-gram {options.smoothing}, vocabulary {len(model.vocab):,}, "
                   f"n-grams {sizes}", err=True)
        how = build.describe_counting(stats, options)
        if how:
            click.echo(how, err=True)


@deferred("lmtool.neural.options:TrainOptions")
def train(quiet, **fields):
    """Train a recurrent language model (RNN, LSTM or GRU, or an LSTM variant) on CORPUS files.

    Truncated backpropagation through time over sentences (each starts from a fresh state, as it is
    scored; with --stream, over running text), or for --cell window shuffled minibatches of windows;
    SGD or Adam with gradient clipping, the learning rate divided by --decay whenever the validation
    perplexity stops improving. The best model on --valid is written to MODEL; a checkpoint
    MODEL.ckpt is kept every few minutes and on Ctrl-C for --resume. Some defaults depend on --cell,
    --level, the vocabulary or --max-time, as each option's help says.
    """
    from .neural.options import TrainOptions
    from .neural.pipeline import run_training
    from .neural.train import checkpoint_path

    options = TrainOptions(**fields, given=_given_on_the_command_line())
    check_outputs((options.output, checkpoint_path(options.output), options.log_file, options.plot_file),
                  (*options.corpus, options.valid, options.vocab_file))
    model = run_training(options, progress=_tqdm_factory(quiet), echo=None if quiet else
                         (lambda text: click.echo(text, err=True)))
    if not quiet:
        best = model.meta.get("training", {}).get("best")
        net = model.config  # the checkpoint's, on --resume
        shape = f"window of {net.window}, {net.hidden} hidden" if model.kind == "window" else \
            f"{net.cell} {net.layers}x{net.hidden}"
        click.echo(f"{options.output}: {shape}, vocabulary {len(model.vocab):,}"
                   + (f", best {'valid' if options.valid else 'training'} perplexity {best:.2f}" if best else ""),
                   err=True)


def _check_dask_of_a_stream(lm, options):
    """Refuse --dask for a stream model: it reads each file whole, as one text, which shards would cut."""
    if options.dask and lm.stream:
        raise LmtoolError("--dask cuts files into shards scored apart, but this model was trained with --stream "
                          "and reads each file as one text from its start; score it without --dask", options.model)


@cli.command()
@options_of(PerplexityOptions)
@quiet_option
def perplexity(quiet, **fields):
    """Perplexity of MODEL on FILES (one sentence per line; '-' is stdin).

    Tokens are words plus one </s> per sentence; words outside the vocabulary (OOVs) are scored as
    <unk>, as KenLM's query does.
    """
    options = PerplexityOptions(**fields).check()
    lm = _load(options.model)
    lm.check_normalized(options.model)
    _check_dask_of_a_stream(lm, options)
    if options.dask:
        from .cluster_scoring import corpus_totals_distributed
        from .scoring import CHUNK_BYTES

        totals = corpus_totals_distributed(options.model, options.files, options.dask, CHUNK_BYTES,
                                           progress=_tqdm_factory(quiet))
    else:
        from .scoring import corpus_totals

        totals = corpus_totals(lm, options.files, progress=_tqdm_factory(quiet), threads=options.threads)
    summary = totals.summary()
    if options.as_json:
        click.echo(json.dumps(dict(summary, model=options.model, kind=lm.kind)))
        return
    click.echo(f"Perplexity including OOVs:\t{summary['perplexity']:.5f}\n"
               f"Perplexity excluding OOVs:\t{summary['perplexity_excluding_oov']:.5f}\n"
               f"OOVs:\t{summary['oov']}\n"
               f"Tokens:\t{summary['tokens']}\n"
               f"Sentences:\t{summary['sentences']}\n"
               f"Log10 probability:\t{summary['logprob10']:.4f}")


@cli.command()
@options_of(ScoreOptions)
@quiet_option
def score(quiet, **fields):
    """Score each line of FILES with MODEL: one output line per input line, in order.

    Columns: total log10 probability (</s> included), tokens (words + </s>), OOVs. With
    --per-token, then one column per token: TOKEN, the n-gram length used, and its log10 p.
    """
    options = ScoreOptions(**fields).check()
    lm = _load(options.model)
    _check_dask_of_a_stream(lm, options)
    out = sys.stdout
    if options.dask:
        from .cluster_scoring import score_text_distributed
        from .scoring import CHUNK_BYTES

        texts = score_text_distributed(options.model, options.files, options.dask, CHUNK_BYTES,
                                       as_json=options.as_json, per_token=options.per_token,
                                       progress=_tqdm_factory(quiet))
    else:
        from .scoring import format_scores, score_chunks

        formatted = partial(format_scores, lm, as_json=options.as_json, per_token=options.per_token)
        texts = score_chunks(lm, options.files, progress=_tqdm_factory(quiet), threads=options.threads,
                             then=formatted)
    for text in texts:
        out.write(text)
    out.flush()


@cli.command()
@click.argument("model")
@click.option("--prefix", default="", help="Start every sentence (with --lines, the text) with these tokens.")
@click.option("-n", "count_", default=1, show_default=True, type=int, help="Number of sentences.")
@click.option("--lines", type=int, help="Write this many lines of running text instead (a --stream model).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed: same seed, same text.")
@click.option("--temperature", default=1.0, show_default=True, type=float,
              help="Below 1 sharpens the distribution, above 1 flattens it.")
@click.option("--top-k", default=0, show_default=True, type=int, help="Sample among the K likeliest tokens (0: all).")
@click.option("--top-p", default=1.0, show_default=True, type=float,
              help="Sample among the fewest likeliest tokens whose probability reaches P (nucleus; 1: all).")
@click.option("--max-tokens", type=int, help="Stop a sentence (with --lines, the text) after this many tokens.  "
                                             "[default: 100; 100 per line with --lines]")
@quiet_option
def generate(model, prefix, count_, lines, seed, temperature, top_k, top_p, max_tokens, quiet):
    """Generate sentences from MODEL by sampling, one per line; a sentence stops at </s>.

    With --lines N, a model trained with --stream writes N lines of running text, each line in the
    context of those before it.
    """
    from .corpus import line_tokens
    from .sampling import MAX_TOKENS, check_options, running_text, sentences

    if lines is not None and _given_on_the_command_line() & {"count_"}:
        raise LmtoolError("-n and --lines: --lines writes one running text; give one of them")
    check_options(temperature, top_k, MAX_TOKENS if max_tokens is None else max_tokens, count_, seed, top_p, lines)
    lm = _load(model)
    tokens = line_tokens(prefix, lm.vocab.level)
    glue = "" if lm.vocab.level == "char" else " "
    shaping = dict(seed=seed, temperature=temperature, top_k=top_k, top_p=top_p)
    if lines is not None:
        if not lm.stream:
            raise LmtoolError("--lines needs a model trained with --stream (text that runs on); this one starts "
                              "afresh at every line: use -n for separate lines", model)
        for number, ids in enumerate(running_text(lm, lm.vocab.encode(tokens), lines, max_tokens=max_tokens,
                                                  **shaping)):
            click.echo(glue.join((tokens if number == 0 else []) + lm.vocab.decode(ids)))
        return
    budget = MAX_TOKENS if max_tokens is None else max_tokens
    for ids in sentences(lm, lm.vocab.encode(tokens), n=count_, max_tokens=budget, **shaping):
        click.echo(glue.join(tokens + lm.vocab.decode(ids)))


@cli.command()
@click.argument("source")
@click.argument("target")
@click.option("--quantize", type=int, metavar="BITS",
              help="Quantise probabilities and backoffs to BITS-bit codes (4 to 16); ids packed to their bits.")
@quiet_option
def convert(source, target, quantize, quiet):
    """Convert between ARPA and lmtool model files.

    An ARPA SOURCE (from KenLM, SRILM or lmtool) becomes an lmtool model; an lmtool n-gram model
    becomes ARPA when TARGET ends in .arpa, gzipped when it ends in .arpa.gz. --quantize BITS
    writes the model with its values quantised (in ARPA too).
    """

    if quantize is not None:
        from .ngram.quantize import check_bits

        check_bits(quantize)
    check_outputs((target,), (source,))
    lm = _read_model_or_arpa(source, _tqdm_factory(quiet))
    if lm.kind != "ngram":
        raise LmtoolError(f"a {lm.kind} model has no ARPA form; only n-gram models convert", source)
    _write_ngram(lm, target, quantize)


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


def _read_model_or_arpa(source, progress):
    """An lmtool model file, or else an ARPA file (a pipe too: it is read once, as ARPA)."""
    from . import modelfile
    from .ngram.arpa import read_arpa
    from .progress import bar
    from .scratch import is_pipe

    if not is_pipe(source) and modelfile.is_model_file(source):
        return _load(source)
    with bar(progress, "reading ARPA", unit="order") as shown:
        return read_arpa(source, progress=shown.update)


def _write_ngram(model, path, bits=None):
    """Write an n-gram ``model`` to ``path`` (ARPA if the name says so), quantised to ``bits`` if
    given; returns what was written."""
    from .ngram.arpa import is_arpa_name, write_arpa

    if bits is not None:
        from .ngram.quantize import quantize

        model = quantize(model, bits)
    if is_arpa_name(path):
        write_arpa(model, path)
    else:
        model.save(path)
    return model


def _quantized(model, bits, path):
    """``model`` quantised to ``bits`` and written to ``path`` in place of what is there."""
    from .ngram.quantize import quantize

    small = quantize(model, bits)
    small.save(path)
    return small


@cli.command(name="prune")
@click.argument("model")
@click.option("-o", "--output", required=True, metavar="SMALL",
              help="Pruned model to write; ARPA when it ends in .arpa (.arpa.gz: gzipped).")
@click.option("--threshold", type=float,
              help="Drop each n-gram whose removal changes the training-set perplexity by less than this fraction "
                   "(relative entropy, SRILM's -prune; e.g. 1e-7).")
@click.option("--size", type=int, metavar="N", help="Use the threshold that leaves at most N n-grams (all orders).")
@click.option("--history", multiple=True, metavar="CORPUS",
              help="Weigh each context by its frequency in CORPUS (the training text; repeat for several files) "
                   "instead of by the model's own chain rule: better for Kneser-Ney models.  [default: the "
                   "training text the model records, when it is still there unchanged]")
@click.option("--chain-rule", is_flag=True,
              help="Weigh each context by the model's own chain rule, as SRILM does (what an ARPA file gets).")
@click.option("--prune-unigrams", is_flag=True,
              help="Let unigrams go too (a word in no kept longer n-gram); they are then scored as <unk>.")
@click.option("--quantize", type=int, metavar="BITS",
              help="Also quantise probabilities and backoffs to BITS-bit codes (4 to 16).")
@quiet_option
def prune_command(model, output, threshold, size, history, chain_rule, prune_unigrams, quantize, quiet):
    """Prune MODEL (lmtool or ARPA, from KenLM or SRILM) by relative entropy and write SMALL.

    Stolcke's entropy pruning as SRILM's 'ngram -prune' does it: an n-gram goes when backing off
    instead (with its context's backoff weight recomputed) changes the model's relative entropy
    by less than --threshold, highest orders first; an n-gram that is the context of a kept
    longer one stays. The backoff weights are then recomputed, so the model stays normalised.
    """
    from .ngram.prune import check_prunable, check_request, prune, recorded_training_text

    check_request(threshold, size)
    if history and chain_rule:
        raise LmtoolError("--history and --chain-rule are two ways to weigh contexts: give one")
    if quantize is not None:
        from .ngram.quantize import check_bits

        check_bits(quantize)
    check_outputs((output,), (model, *history))
    lm = _read_model_or_arpa(model, _tqdm_factory(quiet))
    check_prunable(lm, model, size)
    history = list(history) or None
    recorded = history is None and not chain_rule
    if recorded:
        history = recorded_training_text(lm)
    small, threshold = prune(lm, threshold=threshold, size=size, prune_unigrams=prune_unigrams, history=history,
                             path=model)
    if recorded and history and not quiet:  # said once the request is known to be good: an error is one line
        click.echo(f"weighed contexts by their frequency in {' '.join(history)}, the model's training text", err=True)
    small = _write_ngram(small, output, quantize)
    if not quiet:
        sizes = " ".join(f"{n}:{s:,}" for n, s in enumerate(small.sizes, 1))
        click.echo(f"{output}: pruned at threshold {threshold:.6g}, n-grams {sizes} ({sum(small.sizes):,} of "
                   f"{sum(lm.sizes):,})", err=True)


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
@click.option("--by-context", is_flag=True,
              help="With --tune, linear: one set of weights per number of previous words (0 to N-1) that the "
                   "highest-order n-gram member (order N) knows as one n-gram, instead of one set for all contexts.")
@click.option("--static", is_flag=True, help="Merge n-gram members into one backoff n-gram model instead.")
@quiet_option
def mix(models, output, dev, weights, loglinear, by_context, static, quiet):
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
    if by_context and loglinear:
        raise LmtoolError("--by-context is for linear mixtures (a log-linear one is tuned as a whole); "
                          "drop --loglinear or --by-context")
    if by_context and static:
        raise LmtoolError("weights that change with the context are not one backoff model's probabilities; "
                          "drop --static or --by-context")
    if by_context and dev is None:
        raise LmtoolError("--by-context weights are found on a dev text; give --tune DEV instead of --weights")
    from .ngram.arpa import is_arpa_name

    if is_arpa_name(output) and not static:
        raise LmtoolError("a mixture has no ARPA form; add --static to merge n-gram members into one n-gram model",
                          output)
    check_outputs((output,), (*models, dev))
    start = [1.0 / len(models)] * len(models)
    mixture = MixtureModel.from_files(list(models), start, mode)
    if static:
        from .ngram.merge import check_mergeable

        check_mergeable(mixture)
    if hand is not None:
        mixture = given(mixture, hand)
    else:
        mixture, report = tune(mixture, [dev], progress=_tqdm_factory(quiet), by_context=by_context)
        for i, (name, ppl) in enumerate(zip(models, report["members_dev_perplexity"]), 1):
            click.echo(f"member {i}: {name} ({mixture.members[i - 1].kind}), dev perplexity {ppl:.4f}")
        steps = (f"{report['iterations']} iterations" if "iterations" in report
                 else f"{report['passes']} passes over the dev text")
        if mixture.context is None:
            click.echo(f"weights ({report['method']}, {steps}): " + ",".join(f"{w:.6f}" for w in mixture.weights))
        else:
            click.echo(f"weights ({report['method']} of member {report['context_member']}, {steps}), by how many "
                       "previous words it knows:")
            for known, (row, tokens) in enumerate(zip(mixture.weights, report["row_dev_tokens"])):
                click.echo(f"  {known} ({tokens} dev tokens): " + ",".join(f"{w:.6f}" for w in row))
        click.echo(f"mixture dev perplexity: {report['dev_perplexity']:.4f}")
    if not static:
        mixture.save(output)
        return
    from .ngram.merge import merge_ngram_models

    merged = _write_ngram(merge_ngram_models(mixture), output)
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
    check_outputs((output,), (*nbest, references, model))
    lm = _load(model)
    if not lm.normalized:
        raise LmtoolError(f"its {lm.meta.get('smoothing')} scores are not probabilities, so they do not weigh "
                          "against the n-best scores; use a normalised model", model)
    lists = scored_lists(lm, read_lists(list(nbest)))
    if references is not None:
        _tune_rescoring(lists, references, lm_weight, word_penalty)
        return
    from .outputs import atomic_output

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
    from .wer import gather, oracle_error_rate, tune_weights, word_error_rate

    gathered = gather(lists, references)
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
        print(f"lmtool: error: missing command, one of: {', '.join(cli.list_commands(None))} (see 'lmtool --help')",
              file=sys.stderr)
        return 2
    from .interrupts import catching, received
    from .outputs import remove_pending

    try:
        with catching():
            status = _run(argv)
            if status == 0 and received():  # a Ctrl-C that Python swallowed (see ``interrupts``)
                print("lmtool: interrupted", file=sys.stderr)
                status = 130
            return status
    finally:
        remove_pending()


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
