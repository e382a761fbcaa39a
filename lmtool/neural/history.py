"""The per-epoch record of a training run: kept in the model file, written as CSV (``--log``) and
drawn as a perplexity curve (``--plot``)."""

import csv
from dataclasses import dataclass, field

from ..errors import LmtoolError
from ..outputs import atomic_output

COLUMNS = ("epoch", "lr", "train_ppl", "valid_ppl", "tokens", "complete")
"""The fields of a row, in the CSV's order."""


@dataclass
class History:
    """Per-epoch record kept in the model file: epoch, lr, train and valid perplexity, tokens."""

    epochs: list = field(default_factory=list)

    def add(self, **row):
        self.epochs.append(row)


def write_log(path, rows):
    """The rows as CSV, replacing ``path`` whole (a log that is read while training goes on)."""
    with atomic_output(path, "w") as out:
        writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def check_plotting(path):
    """Refuse ``--plot`` before training when matplotlib is not installed."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise LmtoolError("--plot needs matplotlib: pip install matplotlib", path)


def plot_history(rows, path):
    """Train and valid perplexity per epoch as a PNG (matplotlib, imported only here)."""
    check_plotting(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
