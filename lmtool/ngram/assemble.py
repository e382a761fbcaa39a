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
    them into columns) side by side, appended in order."""
    columns = _Columns({"word": np.uint16 if vocab_size <= 1 << 16 else np.uint32, "prob": np.float32,
                        "backoff": np.float32, "children": np.uint8, "children_big_at": np.int64,
                        "children_big": np.int64}, folder)
    first_node = np.concatenate([[0], np.cumsum(estimation.sizes)])  # of each order, 1-based below

    def slice_columns(s, prob, backoff):
        """{column: values} that the slice ``s`` adds (backoff and children belong to its contexts)."""
        out = {"word": s.field("word")}
        with np.errstate(divide="ignore"):
            out["prob"] = np.maximum(np.minimum(0.0, np.log10(prob)), LOG10_ZERO)
            if backoff is not None:
                out["backoff"] = np.maximum(np.log10(backoff), LOG10_ZERO)
        if s.n > 1:
            children = s.children()
            big = np.flatnonzero(children >= SMALL_CHILDREN)
            out["children"] = np.minimum(children, SMALL_CHILDREN)
            out["children_big_at"] = big + first_node[s.n - 2] + s.c_lo
            out["children_big"] = children[big]
        return out

    with bar(progress or silent, "smoothing", total=int(first_node[-1]), unit="n-gram") as shown:
        for s, _, added in estimation.run(then=slice_columns, threads=threads):
            shown.update(s.hi - s.lo)
            for name, values in added.items():
                columns.append(name, values)
    return columns.finish()
