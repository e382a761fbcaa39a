"""PerplexityOptions and ScoreOptions: the options of ``lmtool perplexity`` and ``lmtool score``,
declared once (see ``lmtool.options``); the command line's options are generated from the fields."""

from dataclasses import dataclass

from .errors import LmtoolError
from .options import argument, check_fields, option, positive


@dataclass
class ScoringOptions:
    """What both commands are told: the model, the input, and where to score it."""

    model: str = argument("MODEL", nargs=1)
    files: list = argument("FILES")
    threads: int = option(1, check=positive(1024), help="Score chunks of the input on N threads (same output).")
    dask: str = option(metavar="ADDRESS",
                       help="Score on a Dask cluster: tcp://HOST:PORT of a scheduler, or local:N worker processes. "
                            "FILES (globs allowed) are cut into shards at line boundaries, the output is the same; "
                            "the model and the files must be visible to the workers.")

    def check(self):
        """Refuse absurd values and combinations with one line that names the option; returns self."""
        check_fields(self)
        if self.dask is not None and self.threads != 1:
            raise LmtoolError("--dask scores on the cluster's workers, one shard per worker thread; drop --threads "
                              "and size the cluster instead")
        return self


@dataclass
class PerplexityOptions(ScoringOptions):
    """``lmtool perplexity``: one summary of all FILES."""

    as_json: bool = option(False, flags=("--json",), help="Print one JSON object instead of the summary.")


@dataclass
class ScoreOptions(ScoringOptions):
    """``lmtool score``: a line of scores per input line."""

    as_json: bool = option(False, flags=("--json",), help="JSON lines instead of tab-separated values.")
    per_token: bool = option(False, help="Add each token's log10 probability (and n-gram length).")
