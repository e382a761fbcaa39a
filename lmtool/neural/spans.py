"""Gradient support: the spans of the flat gradient vector that one training step can make nonzero.

A segment of 700 tokens reads about 2% of the embedding rows, and a class softmax writes the output
rows of the targets' classes only (half to three quarters of them on KJV; with SGD the trainer has it
keep the weights' part as factors instead, ``RecurrentNetwork.apply_deferred``); everything else in
the gradient stays exactly zero. Zeroing, norming and applying (SGD) only these spans skips most of
the 5M-value vector of a 12k-word model, a fifth of a class-softmax step. Spans are int64[k, 2] rows
[a, b), sorted and disjoint, so a pass over them visits values in the same order as a pass over the
whole vector.
"""

import numpy as np


def row_spans(offset, width, rows):
    """Spans of the rows ``rows`` (int array, any order, repeats allowed) of a [n, width] matrix
    stored at ``offset`` in the flat vector."""
    rows = np.unique(rows)
    start = offset + rows.astype(np.int64) * width
    return np.stack([start, start + width], axis=1)


def range_spans(offset, width, starts, ends):
    """Spans of the row ranges [starts[k], ends[k]) of a [n, width] matrix stored at ``offset``."""
    s = offset + np.asarray(starts, np.int64) * width
    return np.stack([s, offset + np.asarray(ends, np.int64) * width], axis=1)


def merge_spans(parts):
    """One sorted list of disjoint spans covering the union of the span arrays in ``parts``."""
    spans = np.concatenate([np.asarray(p, np.int64).reshape(-1, 2) for p in parts])
    spans = spans[spans[:, 1] > spans[:, 0]]
    if len(spans) == 0:
        return np.empty((0, 2), np.int64)
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    ends = np.maximum.accumulate(spans[:, 1])
    first = np.r_[True, spans[1:, 0] > ends[:-1]]
    starts = spans[first, 0]
    last = np.r_[np.flatnonzero(first)[1:] - 1, len(spans) - 1]
    return np.stack([starts, ends[last]], axis=1)


def split_spans(spans, parts):
    """``spans`` cut into ``parts`` lists of near-equal total length (a span may be cut in two), in
    order: the work of one pass over the support, shared between threads."""
    spans = np.asarray(spans, np.int64).reshape(-1, 2)
    lengths = spans[:, 1] - spans[:, 0]
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    out = []
    for k in range(parts):
        lo, hi = total * k // parts, total * (k + 1) // parts  # this part's share, in support coordinates
        first = int(np.searchsorted(ends, lo, side="right"))
        last = int(np.searchsorted(ends, hi, side="left"))
        piece = spans[first:last + 1].copy()
        if len(piece):
            before = ends[first] - lengths[first]
            piece[0, 0] += lo - before
            piece[-1, 1] -= ends[min(last, len(ends) - 1)] - hi
        out.append(piece[piece[:, 1] > piece[:, 0]])
    return out
