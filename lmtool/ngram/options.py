"""CountOptions: every option of ``lmtool count``, declared once (see ``lmtool.options``).

The command line's options are generated from these fields, and ``build_ngram_model`` takes the
same dataclass (or its fields as keywords) from Python.
"""

import os
from dataclasses import dataclass

from ..corpus import LEVELS
from ..errors import LmtoolError
from ..options import argument, check_fields, converted, option, positive
from .choices import DEFAULT_METHOD, SMOOTHING


def check_bits(flag, bits):
    """``--quantize``: None, or a code width ``ngram.quantize`` takes."""
    if bits is not None:
        from .quantize import check_bits as widths

        widths(bits)

MAX_ORDER = 16


def _order(flag, value):
    if not 1 <= value <= MAX_ORDER:
        raise LmtoolError(f"{flag} must be between 1 and {MAX_ORDER}, got {value}")


@dataclass
class CountOptions:
    """Everything ``lmtool count`` is told: inputs and outputs, the model, and how to count."""

    corpus: list = argument("CORPUS")
    output: str = option(flags=("-o", "--output"), required=True, metavar="MODEL", help="Model file to write.")
    order: int = option(3, flags=("--order", "-n"), check=_order, help="Longest n-gram.")
    smoothing: str = option(DEFAULT_METHOD, choices=SMOOTHING, help="How counts become probabilities.")
    k: float = option(flags=("--k",), default_text="1, Laplace",
                      help="Count added to every n-gram with --smoothing add-k.")
    arpa: str = option(metavar="FILE", help="Also write the model as an ARPA file.")
    level: str = option("word", choices=LEVELS,
                        help="Tokens are words (split on spaces) or characters (spaces included).")
    vocab_file: str = option(flags=("--vocab",), metavar="FILE",
                             help="Only these tokens (whitespace-separated); others are <unk>.")
    min_count: int = option(1, help="Rarer tokens become <unk>.")
    max_vocab: int = option(help="Keep only the N most frequent tokens (specials included).")
    memory: str = option(flags=("--memory", "-S"), metavar="SIZE",
                         help="Count within about SIZE of memory (500M, 2G, 50% of RAM; as lmplz -S), spilling "
                              "sorted counts to --tmp. The final counts are still held for smoothing.")
    tmp: str = option(flags=("--tmp", "-T"), metavar="DIR", default_text="$TMPDIR, else the output's folder",
                      help="Folder for --memory's temporary files.")
    threads: int = option(1, check=positive(1024),
                          help="Count chunks of the corpus on N threads (same model, byte for byte).")
    dask: str = option(metavar="ADDRESS",
                       help="Count on a Dask cluster: tcp://HOST:PORT of a scheduler, or local:N worker processes. "
                            "CORPUS files (globs allowed) are shards, large plain ones cut at line boundaries; "
                            "paths must be visible to the workers.")
    prune: list = option(metavar="T1 T2 ...", numbers=True, convert=str.split,
                         help="Drop the n-grams of order n seen at most Tn times, as lmplz --prune: one count per "
                              "order from unigrams up (T1 = 0), non-decreasing, the last for the orders above "
                              "(0 0 1: singleton trigrams and above).")
    quantize: int = option(metavar="BITS", check=check_bits,
                           help="Store probabilities and backoffs as BITS-bit codes (4 to 16) and ids packed to "
                                "their bits.")
    method_options: dict = None
    """More options for the smoothing class (from Python: e.g. ``discounts`` for modified Kneser-Ney)."""

    def check(self):
        """Refuse absurd values and combinations with one line that names the option; returns self."""
        from ..vocab import check_limits

        converted(self)
        check_fields(self)
        check_limits(self.min_count, self.max_vocab)
        if self.prune is not None:
            from .count_pruning import check_thresholds

            self.prune = check_thresholds(self.prune, self.order)
        if self.k is not None and self.smoothing != "add-k":
            raise LmtoolError(f"--k applies to --smoothing add-k only, not to {self.smoothing}")
        if self.smoothing == "add-k" and not 0 < self.add_k <= 1e6:
            raise LmtoolError(f"--k must be positive (and at most 1e6), got {self.add_k}")
        if self.arpa and self.level == "char":
            raise LmtoolError("a character-level model cannot be written as ARPA (its tokens include the space); "
                              "drop --arpa", self.arpa)
        if self.dask is not None:
            if self.memory is not None or self.threads != 1:
                raise LmtoolError("--dask counts on the cluster's workers, one shard per worker thread; drop "
                                  "--memory and --threads and size the cluster instead")
        elif self.memory is None and self.tmp is not None:
            raise LmtoolError("--tmp holds the temporary files of --memory; give --memory too, or drop --tmp")
        return self

    @property
    def add_k(self):
        """The k of add-k smoothing: ``--k``, by default 1 (Laplace)."""
        return 1.0 if self.k is None else self.k

    def smoothing_options(self):
        """The keywords of the smoothing class (also recorded in the model file)."""
        options = {"k": self.add_k} if self.smoothing == "add-k" else {}
        if self.prune is not None:
            options["prune"] = self.prune
        return {**options, **(self.method_options or {})}

    def memory_bytes(self):
        """``--memory`` in bytes, or None."""
        from ..memory import parse_memory

        return None if self.memory is None else parse_memory(self.memory)

    def scratch_folder(self):
        """Where ``--memory`` spills: ``--tmp``, else $TMPDIR, else the output's folder (checked)."""
        from ..scratch import check_parent

        tmp = self.tmp or os.environ.get("TMPDIR") or os.path.dirname(os.path.abspath(self.output or "."))
        check_parent(tmp)
        return tmp
