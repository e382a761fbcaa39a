"""From counts and their ``Estimation`` to the arrays of an n-gram model file, slice by slice.

The arrays (see ``NgramModel``) grow as the estimation goes: each slice of order n adds its words
and log10 probabilities, and the log10 backoff weights and child counts of its contexts in
order n-1. In memory the pieces are concatenated at the end; with a ``folder`` they are appended
to raw files there and handed to ``modelfile.write`` as ``StoredArray``s, so a model larger than
the memory budget is never held whole.
"""

import os

import numpy as np

from ..modelfile import StoredArray
from ..progress import bar, silent

LOG10_ZERO = -99.0
SMALL_CHILDREN = 255  # child counts from here on are kept aside, the rest in one byte each


class _Columns:
    """Named 1-D arrays built by appending, in memory or in raw files inside ``folder``."""

    def __init__(self, dtypes, folder=None):
        self.dtypes = dtypes
        self.folder = folder
        self.lengths = dict.fromkeys(dtypes, 0)
        self.pieces = {name: [] for name in dtypes}
        self.files = {name: open(os.path.join(folder, name), "wb") for name in dtypes} if folder else None

    def append(self, name, values):
        values = np.ascontiguousarray(values, self.dtypes[name])
        self.lengths[name] += len(values)
        if self.files is None:
            self.pieces[name].append(values)
        else:
            self.files[name].write(values.data)

    def finish(self):
        """``{name: ndarray}`` in memory, ``{name: StoredArray}`` on disk."""
        if self.files is None:
            return {name: np.concatenate(self.pieces[name]) if self.pieces[name] else np.zeros(0, dtype)
                    for name, dtype in self.dtypes.items()}
        for f in self.files.values():
            f.close()
        return {name: StoredArray(os.path.join(self.folder, name), dtype, self.lengths[name])
                for name, dtype in self.dtypes.items()}


def model_arrays(vocab_size, estimation, folder=None, progress=None, threads=1):
    """Run ``estimation`` and return the model file's arrays ``word``, ``prob``, ``backoff``,
    ``children`` (one byte each), ``children_big_at`` and ``children_big`` (the counts of 255 and
    more, by node), in memory or, with ``folder``, as ``StoredArray``s there. ``progress`` is a
    progress-bar factory, as ``build_ngram_model`` takes it; ``threads`` smooth slices (and turn
    them into columns) side by side, appended in order. With ``count --prune`` thresholds
    (``estimation.prune``) only the n-grams kept are written, and ``estimation.model_sizes``
    says how many of each order."""
    from .count_pruning import kept_count, kept_rows

    columns = _Columns({"word": np.uint16 if vocab_size <= 1 << 16 else np.uint32, "prob": np.float32,
                        "backoff": np.float32, "children": np.uint8, "children_big_at": np.int64,
                        "children_big": np.int64}, folder)
    prune = estimation.prune

    def slice_columns(s, prob, backoff):
        """{column: values} that the slice ``s`` adds (backoff and children belong to its contexts),
        and how many of its contexts are kept; ``children_big_at`` counts from its first kept context."""
        rows = kept_rows(estimation.counts, prune, s.n, s.lo, s.hi)
        word = s.field("word")
        out = {"word": word if rows is None else word[rows]}
        with np.errstate(divide="ignore"):
            out["prob"] = np.maximum(np.minimum(0.0, np.log10(prob if rows is None else prob[rows])), LOG10_ZERO)
            if backoff is not None:
                out["backoff"] = np.maximum(np.log10(backoff), LOG10_ZERO)
        contexts = s.c_hi - s.c_lo
        if s.n > 1:
            if rows is None:
                children = s.children()
            else:
                from ..kernels.ngram_count import occurrences

                children = occurrences(s.parent[rows], contexts)
            kept = kept_rows(estimation.counts, prune, s.n - 1, s.c_lo, s.c_hi)
            if kept is not None:
                children, out["backoff"] = children[kept], out["backoff"][kept]
            contexts = kept_count(kept, contexts)
            big = np.flatnonzero(children >= SMALL_CHILDREN)
            out["children"] = np.minimum(children, SMALL_CHILDREN)
            out["children_big_at"] = big
            out["children_big"] = children[big]
        return out, contexts, len(out["word"])

    sizes = [0] * len(estimation.sizes)  # n-grams written per order
    contexts_done = [0] * len(estimation.sizes)  # of order n-1 while order n is worked through
    with bar(progress or silent, "smoothing", total=int(sum(estimation.sizes)), unit="n-gram") as shown:
        for s, _, (added, contexts, written) in estimation.run(then=slice_columns, threads=threads):
            shown.update(s.hi - s.lo)
            if "children_big_at" in added:  # node numbers: the orders below, then the contexts before the slice
                added["children_big_at"] = added["children_big_at"] + sum(sizes[:s.n - 2]) + contexts_done[s.n - 1]
            contexts_done[s.n - 1] += contexts
            sizes[s.n - 1] += written
            for name, values in added.items():
                columns.append(name, values)
    estimation.model_sizes = sizes
    return columns.finish()
