"""Runs: ``NgramCounts`` spilled to disk, one raw ``.npy`` per field and order, merged pairwise.

A run is read back memory-mapped one level at a time (``merge_levels`` touches only the level it
is merging), and a merge of two runs is written level by level as it is produced, so merging
holds about one level of two runs at a time; only the last merge, the result, stays in memory.
"""

import os
import shutil

import numpy as np

from .counts import NgramCounts, merge_counts, merge_levels

FIELDS = ("parent", "word", "count", "suffix")


class _Levels:
    """One field of a run, indexed by order - 1, each level memory-mapped when asked for."""

    def __init__(self, run, field):
        self.run = run
        self.field = field

    def __getitem__(self, i):
        return np.load(self.run.file(self.field, i + 1), mmap_mode="r")

    def __len__(self):
        return self.run.order


class Run:
    """N-gram counts of part of a corpus in ``folder``: the same fields as ``NgramCounts``."""

    def __init__(self, folder, order, vocab_size, nbytes):
        self.folder = folder
        self.order = order
        self.vocab_size = vocab_size
        self.nbytes = nbytes
        self.parent, self.word, self.count, self.suffix = (_Levels(self, f) for f in FIELDS)

    def file(self, field, n):
        return os.path.join(self.folder, f"{field}{n}.npy")

    def load(self):
        """The whole run in memory, as ``NgramCounts``."""
        fields = [[np.load(self.file(f, n)) for n in range(1, self.order + 1)] for f in FIELDS]
        return NgramCounts(*fields, vocab_size=self.vocab_size)

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def write_run(levels, folder, vocab_size):
    """Write ``levels`` (``(parent, word, count, suffix)`` per order, unigrams first) into a new
    ``folder`` as they come; returns the ``Run``. Raises OSError (ENOSPC) when the disk is full."""
    os.mkdir(folder)
    order, total = 0, 0
    for order, arrays in enumerate(levels, 1):
        for field, array in zip(FIELDS, arrays):
            with open(os.path.join(folder, f"{field}{order}.npy"), "wb") as out:
                np.save(out, np.ascontiguousarray(array))
            total += array.nbytes
    return Run(folder, order, vocab_size, total)


def levels(counts):
    """The levels of in-memory ``NgramCounts``, in the form ``write_run`` takes."""
    return zip(counts.parent, counts.word, counts.count, counts.suffix)


def merge_runs(runs, new_folder, threads=1, progress=None):
    """Merge runs into in-memory ``NgramCounts``: pairwise rounds written to disk (``new_folder()``
    names each new run), the pairs of a round on ``threads`` threads, the last pair in memory.
    Runs are removed as soon as they are merged."""
    from ..threads import ordered_map

    def merge_pair(pair):
        if len(pair) == 1:
            return pair[0]
        a, b = pair
        merged = write_run(merge_levels([a, b]), new_folder(), a.vocab_size)
        a.remove()
        b.remove()
        if progress:
            progress(1)
        return merged

    while len(runs) > 2:
        pairs = [runs[i:i + 2] for i in range(0, len(runs), 2)]
        runs = list(ordered_map(merge_pair, pairs, threads))
    if len(runs) == 1:
        return runs[0].load()
    counts = merge_counts(runs, threads)
    if progress:
        progress(1)
    return counts
