"""Word error rate of re-scored n-best lists, and the language-model weight and word penalty that
minimise it (``rescore --tune``).

Statistics first: ``ErrorStats`` gathers, list by list, each hypothesis' base score, language model
score, word count and word errors against the list's reference. Then one pure function,
``word_error_rate``, turns weights into the WER of the hypotheses they pick. ``tune_weights``
searches the weights as minimum-error-rate training does (Och 2003): along a line of weights each
list's pick changes only where its hypotheses' score lines cross, so the exact best point on the
line comes from their upper envelopes (``kernels.nbest``); lines along each weight and a few
random directions, from the given weights, until no line improves.
"""

from dataclasses import dataclass

import numpy as np

from .errors import LmtoolError
from .vocab import TokenCounter

MAX_ROUNDS = 50
RANDOM_DIRECTIONS = 4


class ErrorStats:
    """Per-hypothesis ``base``, ``lm`` (log10), ``words`` and ``errors``, per-list ``reference_words``
    and ``list_start`` (int64[L + 1]), gathered from ``ScoredList``s and their references."""

    def __init__(self):
        self._counter = TokenCounter("word")
        self._parts = {"base": [], "lm": [], "words": [], "errors": [], "sizes": [], "reference_words": []}

    def add(self, scored_lists, references):
        """Add lists (``nbest.ScoredList``) with their references (str each)."""
        from .kernels.nbest import word_errors

        if not scored_lists:
            return
        hyps = [h for s in scored_lists for h in s.nbest.hypotheses]
        ref_ids, ref_lengths = self._encode(references)
        hyp_ids, hyp_lengths = self._encode(hyps)
        sizes = np.array([len(s.nbest.hypotheses) for s in scored_lists], np.int64)
        errors = np.empty(len(hyps), np.int32)
        word_errors(hyp_ids, hyp_lengths, ref_ids, ref_lengths, np.repeat(np.arange(len(sizes)), sizes), errors)
        parts = self._parts
        parts["base"].append(np.concatenate([np.asarray(s.nbest.scores, np.float64) for s in scored_lists]))
        parts["lm"].append(np.concatenate([s.lm for s in scored_lists]))
        parts["words"].append(np.concatenate([s.words for s in scored_lists]).astype(np.float64))
        parts["errors"].append(errors.astype(np.int64))
        parts["sizes"].append(sizes)
        parts["reference_words"].append(ref_lengths.astype(np.int64))

    def _encode(self, lines):
        data = "".join(line.replace("\n", " ") + "\n" for line in lines).encode("utf-8")
        ids, lengths = self._counter.encode(data)
        return ids, lengths

    def finish(self):
        """The gathered arrays, as a ``Gathered``."""
        joined = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in self._parts.items()}
        sizes = joined.pop("sizes").astype(np.int64)
        return Gathered(list_start=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                        errors=joined.pop("errors").astype(np.int64),
                        reference_words=joined.pop("reference_words").astype(np.int64), **joined)


GATHER_LISTS = 1024
"""Lists whose word errors are counted at once by ``gather``."""


def _reference_lines(path):
    from .corpus import read_chunks

    for chunk in read_chunks([path]):
        text = chunk.data.decode("utf-8")
        yield from (text[:-1] if text.endswith("\n") else text).split("\n")


def gather(scored_lists, references):
    """A ``Gathered`` of the ``ScoredList``s (a stream) against the file ``references``, one line per
    list in order, gathered ``GATHER_LISTS`` at a time; a count that does not match is refused."""
    refs = _reference_lines(references)
    stats, batch, batch_refs = ErrorStats(), [], []
    for scored in scored_lists:
        line = next(refs, None)
        if line is None:
            raise LmtoolError(f"fewer references than n-best lists (list {scored.nbest.id!r} has none); give one "
                              "reference line per list, in order", references)
        batch.append(scored)
        batch_refs.append(line)
        if len(batch) >= GATHER_LISTS:
            stats.add(batch, batch_refs)
            batch, batch_refs = [], []
    stats.add(batch, batch_refs)
    extra = sum(1 for _ in refs)
    gathered = stats.finish()
    if extra:
        raise LmtoolError(f"{gathered.lists + extra} references for {gathered.lists} n-best lists; give one "
                          "reference line per list, in order", references)
    return gathered


@dataclass
class Gathered:
    """What WER needs: per hypothesis base, lm, words (float64[H]) and errors (int64[H]); per list
    list_start (int64[L + 1]) and reference_words (int64[L])."""

    base: np.ndarray
    lm: np.ndarray
    words: np.ndarray
    errors: np.ndarray
    list_start: np.ndarray
    reference_words: np.ndarray

    @property
    def lists(self):
        return len(self.reference_words)


def picked_errors(gathered, scores):
    """Total errors of each list's highest-scoring hypothesis (the first of equals); an empty list
    counts its reference's words as deleted."""
    start, g = gathered.list_start, gathered
    sizes = np.diff(start)
    nonempty = sizes > 0
    total = int(g.reference_words[~nonempty].sum())
    if not nonempty.any():
        return total
    list_of = np.repeat(np.arange(len(sizes)), sizes)
    top = np.maximum.reduceat(scores, start[:-1][nonempty])
    is_top = scores == np.repeat(top, sizes[nonempty])
    first = np.unique(list_of[is_top], return_index=True)[1]
    return total + int(g.errors[np.flatnonzero(is_top)[first]].sum())


def word_error_rate(gathered, lm_weight, word_penalty):
    """WER (a fraction) of the hypotheses picked by base + lm_weight * lm + word_penalty * words."""
    scores = gathered.base + lm_weight * gathered.lm + word_penalty * gathered.words
    return picked_errors(gathered, scores) / max(int(gathered.reference_words.sum()), 1)


def oracle_error_rate(gathered):
    """WER of the best hypothesis of each list (the floor any weights can reach)."""
    return picked_errors(gathered, -gathered.errors.astype(np.float64)) / max(int(gathered.reference_words.sum()), 1)


def _line_search(gathered, point, direction):
    """The step x (with point + x * direction keeping the LM weight at 0 or more) whose weights make
    the fewest errors, and those errors; the current point (x = 0) wins ties."""
    from .kernels.nbest import envelope_breaks

    g = gathered
    intercept = g.base + point[0] * g.lm + point[1] * g.words
    slope = direction[0] * g.lm + direction[1] * g.words
    xs = np.empty(len(g.base))
    deltas = np.empty(len(g.base), np.int64)
    n, base_errors = envelope_breaks(intercept, slope, g.errors, g.list_start, xs, deltas)
    base_errors += int(g.reference_words[np.diff(g.list_start) == 0].sum())
    order = np.argsort(xs[:n], kind="stable")
    edges = xs[:n][order]
    errors = base_errors + np.concatenate([[0], np.cumsum(deltas[:n][order])])  # on (-inf, e0), (e0, e1), ...
    lo, hi = -np.inf, np.inf
    if direction[0] > 0:
        lo = -point[0] / direction[0]
    elif direction[0] < 0:
        hi = point[0] / -direction[0]
    left = np.concatenate([[-np.inf], edges])
    right = np.concatenate([edges, [np.inf]])
    usable = (right > lo) & (left < hi) & (right > left)
    if not usable.any():
        return 0.0, None
    best = int(errors[usable].min())
    a, b = np.maximum(left, lo), np.minimum(right, hi)  # each interval clipped to the allowed range
    candidates = usable & (errors == best)
    if (candidates & (a < 0) & (0 < b)).any():
        return 0.0, best
    distance = np.where(candidates, np.minimum(np.abs(a), np.abs(b)), np.inf)
    k = int(np.argmin(distance))
    a, b = a[k], b[k]
    if np.isfinite(a) and np.isfinite(b):
        x = (a + b) / 2
    elif np.isfinite(a):
        x = a + max(1.0, abs(a))
    else:
        x = b - max(1.0, abs(b))
    return float(x), best


def tune_weights(gathered, lm_weight=1.0, word_penalty=0.0, seed=0):
    """(lm_weight, word_penalty) with the fewest word errors, searched from the given ones (the LM
    weight kept at 0 or more), and their WER. Same data and seed, same result."""
    if not len(gathered.errors):
        raise LmtoolError("the n-best lists hold no hypothesis to choose between")
    rng = np.random.default_rng(seed)
    point = np.array([lm_weight, word_penalty], np.float64)
    errors = picked_errors(gathered, gathered.base + point[0] * gathered.lm + point[1] * gathered.words)
    for _ in range(MAX_ROUNDS):
        angles = rng.uniform(0, np.pi, RANDOM_DIRECTIONS)
        directions = [np.array([1.0, 0.0]), np.array([0.0, 1.0])] + [np.array([np.cos(a), np.sin(a)]) for a in angles]
        improved = False
        for direction in directions:
            x, found = _line_search(gathered, point, direction)
            if found is not None and found < errors and x != 0.0:
                candidate = point + x * direction
                candidate[0] = max(candidate[0], 0.0)
                actual = picked_errors(gathered, gathered.base + candidate[0] * gathered.lm
                                       + candidate[1] * gathered.words)
                if actual < errors:
                    point, errors, improved = candidate, actual, True
        if not improved:
            break
    return float(point[0]), float(point[1]), errors / max(int(gathered.reference_words.sum()), 1)
