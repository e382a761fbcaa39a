"""Runs: ``NgramCounts`` spilled to disk, one raw ``.npy`` per field and order, and their k-way merge.

A run is read in slices (``Run.rows``), each copied out of a short-lived memory map, so reading a
run never keeps more than a slice resident. ``merge_runs`` merges any number of runs into a new
run level by level and slice by slice; what it holds at once is a slice of every run, plus the
map from one run's nodes to the merged ones while that run's next level is translated (on N
threads: N slices of 1/N the rows, and N runs' maps).
"""

import errno
import os
import threading

import numpy as np

from .counts import NgramCounts, merge_keys, merge_pieces, merged_suffix

FIELDS = ("parent", "word", "count", "suffix")
DTYPES = {"parent": np.int32, "word": np.int32, "count": np.int64, "suffix": np.int32,
          "key": np.int64, "merged_suffix": np.int32}  # the last two: a run's level translated for merging
MERGE_ROWS = 1 << 21  # rows of all runs together merged per slice


_HEADER_LOCK = threading.Lock()
"""NumPy reads a ``.npy`` header with ``ast.literal_eval``, and CPython 3.11's parser can fail when two
threads parse at once ("SystemError: AST constructor recursion depth mismatch", seen once in CI);
``--threads`` reads runs on several threads, so their files are opened one at a time."""


def _mapped(path):
    """``np.load(path, mmap_mode="r")``, opened under ``_HEADER_LOCK``."""
    with _HEADER_LOCK:
        return np.load(path, mmap_mode="r")


class Run:
    """N-gram counts of part of a corpus in ``folder``: the same fields as ``NgramCounts``."""

    def __init__(self, folder, order, vocab_size, nbytes):
        self.folder = folder
        self.order = order
        self.vocab_size = vocab_size
        self.nbytes = nbytes

    def file(self, field, n):
        return os.path.join(self.folder, f"{field}{n}.npy")

    def rows(self, field, n, lo=0, hi=None):
        """A copy of ``field`` for the n-grams ``lo:hi`` of order n, read through a map dropped at once."""
        mapped = _mapped(self.file(field, n))
        return np.array(mapped[lo:hi])

    def first_child(self, n, node):
        """The first row of order n whose parent is ``node`` or later (a binary search on disk)."""
        parents = _mapped(self.file("parent", n))
        return int(np.searchsorted(parents, parents.dtype.type(node), "left"))  # a Python int would copy them

    def sizes(self):
        """Number of distinct n-grams of each order (read from the files' headers)."""
        return [_mapped(self.file("word", n)).shape[0] for n in range(1, self.order + 1)]

    def load(self):
        """The whole run in memory, as ``NgramCounts``."""
        fields = [[np.array(_mapped(self.file(f, n))) for n in range(1, self.order + 1)] for f in FIELDS]
        return NgramCounts(*fields, vocab_size=self.vocab_size)


def write_run(levels, folder, vocab_size):
    """Write ``levels`` (``(parent, word, count, suffix)`` per order, unigrams first) into a new
    ``folder`` as they come; returns the ``Run``. Raises OSError (ENOSPC) when the disk is full."""
    os.mkdir(folder)
    order, total = 0, 0
    for order, arrays in enumerate(levels, 1):
        for field, array in zip(FIELDS, arrays):
            with open(os.path.join(folder, f"{field}{order}.npy"), "wb") as out:
                try:
                    np.save(out, np.ascontiguousarray(array, DTYPES[field]))
                except OSError as err:
                    if err.errno is not None:
                        raise
                    # NumPy's "N requested and M written": a short write, which on a local disk means a full one
                    raise OSError(errno.ENOSPC, f"No space left on device ({err})", out.name) from None
            total += array.nbytes
    return Run(folder, order, vocab_size, total)


def levels(counts):
    """The levels of in-memory ``NgramCounts``, in the form ``write_run`` takes."""
    return zip(counts.parent, counts.word, counts.count, counts.suffix)


class _LevelWriter:
    """The ``.npy`` files of ``fields`` (default: all of a run's) of one level, appended slice by
    slice; the headers are written last, when the length is known (they have a fixed size)."""

    def __init__(self, folder, n, fields=FIELDS):
        self.fields = fields
        self.paths = [os.path.join(folder, f"{field}{n}.npy") for field in fields]
        self.files = [open(p, "wb") for p in self.paths]
        self.length = 0
        for f, field in zip(self.files, fields):
            f.write(_npy_header(DTYPES[field], 0))

    def append(self, *arrays):
        for f, field, a in zip(self.files, self.fields, arrays):
            f.write(np.ascontiguousarray(a, DTYPES[field]).data)
        self.length += len(arrays[0])

    def close(self):
        for f, field in zip(self.files, self.fields):
            f.seek(0)
            f.write(_npy_header(DTYPES[field], self.length))
            f.close()
        return self.length * sum(np.dtype(DTYPES[f]).itemsize for f in self.fields)


def _npy_header(dtype, length):
    """The ``.npy`` (version 1.0) header of a 1-D array, always 128 bytes, so it can be rewritten."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (np.dtype(dtype).str, length)
    return b"\x93NUMPY\x01\x00" + (118).to_bytes(2, "little") + (text.ljust(117) + "\n").encode("latin1")


def merge_runs(runs, folder, rows=None, progress=None, threads=1):
    """Merge ``runs`` (disjoint parts of one corpus) into a new run in ``folder``, level by level.

    Within a level each run's keys (the merged parent node, then the word) are sorted, so the
    merge goes slice by slice: every run offers its next rows (``rows``, default ``MERGE_ROWS``,
    from all runs together), and the rows up to the smallest last key offered are merged. As the
    merge goes, each run's map from its nodes to the merged ones is appended to a file in the
    run's folder; before the next level is merged, each run's parents and suffixes are translated
    through it, so that no more than one run's map per thread is ever in memory (these files are
    removed once spent; the inputs are left as they were). With ``threads`` > 1 the runs are
    translated, and the slices merged, on that many threads, each slice ``1/threads`` of ``rows``
    so that the slices in flight hold what one slice holds on one thread; merging is exact
    and the slices are written in order, so the run is the same however they are cut.
    ``progress(k)`` is told of the input rows (above the unigrams) as they are merged.
    """
    from ..threads import for_each, ordered_map

    V = runs[0].vocab_size
    order = runs[0].order
    step = max(1, (rows or MERGE_ROWS) // len(runs) // threads)
    os.mkdir(folder)
    first = _LevelWriter(folder, 1)
    first.append(runs[0].rows("parent", 1), np.arange(V), np.sum([r.rows("count", 1) for r in runs], axis=0),
                 runs[0].rows("suffix", 1))
    total = first.close()
    for n in range(2, order + 1):
        if n > 2:
            for_each(lambda run: _translate(run, n, step), runs, threads, in_flight=threads)
        writer = _LevelWriter(folder, n)
        maps = [] if n == order else [open(_map_file(r, n), "wb") for r in runs]
        merged = 0
        try:
            slices = ordered_map(lambda plan: _merge_slice(runs, n, plan, V), _slice_plans(runs, n, step), threads,
                                 in_flight=threads)
            for part, plan, positions in slices:
                writer.append(*part)
                if maps:
                    for (r, _, _, _), position in zip(plan, positions):
                        maps[r].write((merged + position).astype(np.int32).data)
                merged += len(part[0])
                if progress:
                    progress(sum(len(key) for _, _, key, _ in plan))
        finally:
            for f in maps:
                f.close()
        total += writer.close()
        if n > 2:
            for run in runs:  # the translated level is spent: give its disk space back
                for field in ("key", "merged_suffix"):
                    os.remove(run.file(field, n))
    return Run(folder, order, V, total)


def _map_file(run, n):
    return os.path.join(run.folder, f"merged{n}.i32")


def _translate(run, n, step):
    """Write the merge keys (merged parent node * V + word) and merged suffix nodes of ``run``'s
    order n, through its map of order n-1 (then removed)."""
    path = _map_file(run, n - 1)
    below = np.fromfile(path, np.int32)
    writer = _LevelWriter(run.folder, n, ("key", "merged_suffix"))
    size = run.sizes()[n - 1]
    for lo in range(0, size, step):
        writer.append(*_merge_keys(run, n, lo, min(lo + step, size), below))
    writer.close()
    del below
    os.remove(path)


def _merge_keys(run, n, lo, hi, below=None):
    """Merge keys and merged suffix nodes of rows ``lo:hi`` of ``run``'s order n, through ``below``
    (the run's nodes of order n-1 -> merged nodes; None where the numbering is the same)."""
    return merge_keys(run, n, below, lo, hi), merged_suffix(run, n, below, lo, hi)


def _offered(run, n, lo, hi):
    """``_merge_keys`` of rows ``lo:hi``: computed for bigrams (the unigrams' nodes are the same in
    every run), read back from ``_translate``'s files above them."""
    if n == 2:
        return _merge_keys(run, n, lo, hi)
    return run.rows("key", n, lo, hi), run.rows("merged_suffix", n, lo, hi)


def _slice_plans(runs, n, step):
    """The slices of the merge of order n, in order: each a list of ``(run, lo, keys, merged
    suffixes)`` for the rows ``lo:lo + len(keys)`` that each run gives to it. A run offers
    up to ``step`` rows; a slice ends at the smallest last key offered by a run with rows left
    after its offer, so no key of a later slice is smaller than one of this slice."""
    sizes = [r.sizes()[n - 1] for r in runs]
    done = [0] * len(runs)
    while any(d < s for d, s in zip(done, sizes)):
        offered = []
        for r, run in enumerate(runs):
            lo, hi = done[r], min(done[r] + step, sizes[r])
            offered.append((lo, hi, *_offered(run, n, lo, hi)))
        limit = None  # the smallest last key offered by a run that has more rows after it
        for r, (lo, hi, key, _) in enumerate(offered):
            if hi < sizes[r] and (limit is None or key[-1] < limit):
                limit = key[-1]
        plan = []
        for r, (lo, hi, key, translated) in enumerate(offered):
            take = len(key) if limit is None else int(np.searchsorted(key, limit, "right"))
            if take:
                plan.append((r, lo, key[:take], translated[:take]))
                done[r] = lo + take
        yield plan


def _merge_slice(runs, n, plan, V):
    """Merge one slice of ``_slice_plans``: returns ``((parent, word, count, suffix), plan, positions)``,
    ``positions`` giving each piece's rows their places among the slice's merged rows."""
    counts = np.concatenate([runs[r].rows("count", n, lo, lo + len(key)) for r, lo, key, _ in plan])
    unique, summed, position, first = merge_pieces([key for _, _, key, _ in plan], counts)
    suffix = np.concatenate([translated for _, _, _, translated in plan])[first]
    part = unique // V, unique % V, summed, suffix
    return part, plan, np.split(position, np.cumsum([len(key) for _, _, key, _ in plan])[:-1])
