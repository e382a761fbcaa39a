"""A mixture's weights found on held-out text: EM for linear mixtures, maximum likelihood (Newton's
method) for log-linear ones.

Linear (SRILM's ``compute-best-mix``): with P_i(t) each member's probability of dev token t,
EM's step w_i <- (1/N) sum_t w_i P_i(t) / sum_j w_j P_j(t) never lowers the likelihood, which is
concave in w, so it climbs to the best weights. Log-linear: log10 P(t) = sum_i l_i f_i(t) - log10 Z
(f_i the members' log10 probabilities over the mixture's vocabulary) is concave in l, its gradient
the observed minus the expected f_i, its Hessian minus ln(10) times their covariance; each Newton
step takes one pass over the dev text and every member's whole distribution at every position.
Both stop when the dev perplexity improves by less than ``TOLERANCE`` (relative).

Weights by context (linear): the EM above, run apart on the dev tokens of each row (each length of
history the context member knows, see ``mixture``); the likelihood is a sum over rows, each row's
part concave in its own weights. A row with fewer than ``MIN_ROW_TOKENS`` dev tokens keeps the
weights found on all of them, which few tokens would not estimate.
"""

import numpy as np

from . import corpus
from .errors import LmtoolError
from .mixture import LINEAR, LOGLINEAR
from .progress import silent
from .vocab import BOS, UNK

TOLERANCE = 1e-6
MAX_EM_ITERATIONS = 100_000
MAX_NEWTON_STEPS = 50
MIN_ROW_TOKENS = 100


def read_dev(mixture, paths, progress=silent):
    """The dev text as the mixture's ids: ``[(ids, lengths), ...]`` chunk by chunk."""
    chunks, tokens = [], 0
    for chunk in corpus.read_chunks(paths, progress=progress):
        ids, lengths = mixture.vocab.encode_bytes(chunk.data)
        chunks.append((ids, lengths))
        tokens += len(ids) + len(lengths)
    if not tokens:
        raise LmtoolError("the dev text holds no sentence to tune the weights on", ", ".join(map(str, paths)))
    return chunks


def member_log10(mixture, chunks):
    """float64[M, N]: each member's log10 probability of every dev token, over the mixture's vocabulary."""
    return np.concatenate([mixture.member_token_log10(ids, lengths) for ids, lengths in chunks],
                          axis=1).astype(np.float64)


def dev_rows(mixture, chunks, context):
    """int32[N]: the row of weights of every dev token (see ``mixture.history_rows``) when the
    ``context`` member picks them."""
    from .mixture import history_rows

    member, to_member = mixture.members[context], mixture.maps.to_member[context]
    return np.concatenate([history_rows(member, to_member[ids], lengths) for ids, lengths in chunks])


def perplexity(log10_total, tokens):
    return float(10.0 ** (-log10_total / tokens))


def em_weights(logp, tolerance=TOLERANCE, max_iterations=MAX_EM_ITERATIONS):
    """Linear weights maximising sum_t log sum_i w_i P_i(t), from logp: float64[M, N] log10 P_i(t).

    Starts from equal weights; returns (weights: float64[M], iterations, dev perplexity).
    """
    M, N = logp.shape
    top = logp.max(axis=0)
    scaled = 10.0 ** (logp - top)  # [M, N], each column's largest 1: no underflow
    top_sum = float(top.sum())
    weights = np.full(M, 1.0 / M)
    mixed = weights @ scaled
    ppl = perplexity(top_sum + float(np.log10(mixed).sum()), N)
    for iteration in range(1, max_iterations + 1):
        new = weights * (scaled @ (1.0 / mixed)) / N
        new /= new.sum()
        new_mixed = new @ scaled
        new_ppl = perplexity(top_sum + float(np.log10(new_mixed).sum()), N)
        weights, mixed = new, new_mixed
        done = (ppl - new_ppl) < tolerance * ppl
        ppl = new_ppl
        if done:
            return weights, iteration, ppl
    return weights, max_iterations, ppl


def em_weights_by_row(logp, rows, n_rows):
    """Linear weights per row (float64[n_rows, M]) from logp: float64[M, N] and rows: int32[N], EM
    on each row's tokens (``em_weights`` on all of them for a row with too few); returns (weights,
    iterations in all, dev perplexity, tokens per row)."""
    overall, iterations, _ = em_weights(logp)
    table = np.tile(overall, (n_rows, 1))
    counts = np.bincount(rows, minlength=n_rows)
    for row in range(n_rows):
        if counts[row] >= MIN_ROW_TOKENS:
            table[row], steps, _ = em_weights(logp[:, rows == row])
            iterations += steps
    return table, iterations, linear_perplexity(logp, table[rows].T), counts


def linear_perplexity(logp, weights):
    """The dev perplexity of a linear mixture with ``weights`` (float64[M], or float64[M, N] per
    token) from logp: float64[M, N]."""
    top = logp.max(axis=0)
    weights = np.asarray(weights, np.float64)
    scaled = 10.0 ** (logp - top)
    mixed = weights @ scaled if weights.ndim == 1 else (weights * scaled).sum(axis=0)
    with np.errstate(divide="ignore"):
        return perplexity(float(top.sum() + np.log10(mixed).sum()), logp.shape[1])


def _features(mixture, ids, lengths):
    """Yield (lo, hi, features: float32[M, P, V]) for groups of positions of one chunk: each member's
    log10 distribution over the mixture's vocabulary, floored (see ``kernels.mixture``)."""
    from .distributions import ROW_BUDGET, log10_rows, sentence_groups
    from .kernels.mixture import LOG10_FLOOR

    M, V = len(mixture.members), len(mixture.vocab)
    for s, e, wlo, whi, lo, hi in sentence_groups(lengths, M * V, ROW_BUDGET):
        features = np.empty((M, hi - lo, V), np.float32)
        for i, member in enumerate(mixture.members):
            rows = log10_rows(member, mixture.maps.to_member[i][ids[wlo:whi]], lengths[s:e])
            np.subtract(rows[:, mixture.maps.to_member[i]], mixture.maps.share[i], out=features[i],
                        casting="unsafe")
        np.maximum(features, LOG10_FLOOR, out=features)
        features[:, :, BOS] = 0.0
        yield lo, hi, features


def loglinear_statistics(mixture, chunks, weights, progress=None):
    """(sum of log10 P(token), gradient: float64[M], Hessian: float64[M, M]) of the log-linear mixture
    of ``mixture``'s members with ``weights`` over the dev ``chunks``."""
    from .kernels.mixture import loglinear_statistics as kernel

    M = len(mixture.members)
    grad, hess, total = np.zeros(M), np.zeros((M, M)), 0.0
    weights = np.asarray(weights, np.float64)
    for ids, lengths in chunks:
        targets = mixture.targets(ids, lengths)
        for lo, hi, features in _features(mixture, ids, lengths):
            total += kernel(features, weights, targets[lo:hi], BOS, grad, hess)
            if progress is not None:
                progress(hi - lo)
    return total, grad, hess


def newton_weights(mixture, chunks, tolerance=TOLERANCE, max_steps=MAX_NEWTON_STEPS, progress=silent):
    """Log-linear weights (at least 0) maximising the dev likelihood, by projected Newton steps from
    equal weights summing to 1, halved while a step lowers the likelihood. Returns (weights,
    passes over the dev text, dev perplexity)."""
    M = len(mixture.members)
    N = sum(len(ids) + len(lengths) for ids, lengths in chunks)
    weights = np.full(M, 1.0 / M)
    passes = 0

    def evaluate(w):
        nonlocal passes
        passes += 1
        bar = progress(f"log-linear weights, pass {passes}", total=N, unit="token")
        try:
            return loglinear_statistics(mixture, chunks, w, bar.update)
        finally:
            bar.close()

    total, grad, hess = evaluate(weights)
    ppl = perplexity(total, N)
    for _ in range(max_steps):
        try:
            step = -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = grad / max(float(np.abs(np.diag(hess)).max()), 1e-12)
        free = ~((weights <= 0) & (grad < 0))  # a weight held at 0 whose gradient points below stays
        if not free.all() and free.any():
            step = np.zeros(M)
            sub = np.ix_(free, free)
            step[free] = -np.linalg.lstsq(hess[sub], grad[free], rcond=None)[0]
        scale, improved = 1.0, False
        while scale > 1e-4:
            candidate = np.maximum(weights + scale * step, 0.0)
            if not candidate.any():
                scale /= 2
                continue
            new_total, new_grad, new_hess = evaluate(candidate)
            if new_total >= total:
                improved = True
                break
            scale /= 2
        if not improved:
            break
        new_ppl = perplexity(new_total, N)
        weights, total, grad, hess = candidate, new_total, new_grad, new_hess
        done = (ppl - new_ppl) < tolerance * ppl
        ppl = new_ppl
        if done:
            break
    return weights, passes, ppl


def tune(mixture, paths, progress=silent, by_context=False):
    """``mixture`` with weights found on the dev text ``paths``, and a report: each member's dev
    perplexity (over the mixture's vocabulary), the weights, how they were found, the mixture's
    dev perplexity. The report is also kept in the mixture's metadata (``tuning``). BLAS runs on
    one thread meanwhile, as scoring does (the products are a batch of rows at a time).
    ``by_context``: one set of weights per length of history the context member knows (linear)."""
    from .threads import set_blas_threads

    previous = set_blas_threads(1)
    try:
        return _tune(mixture, paths, progress, by_context)
    finally:
        if previous:
            set_blas_threads(previous)


def _tune(mixture, paths, progress, by_context):
    from .mixture import context_member

    context = context_member(mixture.members, mixture.names, mixture.mode) if by_context else None
    bar = progress("scoring the dev text", total=corpus.input_size(paths), unit="B")
    try:
        chunks = read_dev(mixture, paths, bar.update)
        logp = member_log10(mixture, chunks)
        rows = dev_rows(mixture, chunks, context) if context is not None else None
    finally:
        bar.close()
    N = logp.shape[1]
    members_ppl = [perplexity(float(row.sum()), N) for row in logp]
    if context is not None:
        weights, iterations, ppl, counts = em_weights_by_row(logp, rows, mixture.members[context].order)
        how = {"method": "EM by context", "iterations": int(iterations), "context_member": context + 1,
               "row_dev_tokens": counts.tolist()}
    elif mixture.mode == LINEAR:
        weights, iterations, ppl = em_weights(logp)
        how = {"method": "EM", "iterations": int(iterations)}
    else:
        weights, passes, ppl = newton_weights(mixture, chunks, progress=progress)
        how = {"method": "maximum likelihood", "passes": int(passes)}
    oov = sum(int((ids == UNK).sum()) for ids, _ in chunks)
    report = {**how, "dev": [str(p) for p in paths], "dev_tokens": N, "dev_oov": oov,
              "members_dev_perplexity": [round(p, 4) for p in members_ppl], "dev_perplexity": round(ppl, 4)}
    if mixture.mode == LINEAR:
        weights = weights / weights.sum(axis=-1, keepdims=True)
    return mixture.with_weights(weights, {"tuning": report}, context), report


def given(mixture, weights):
    """``mixture`` with weights set by hand (checked: one per member, at least 0; linear ones sum to 1)."""
    from .mixture import check_weights

    weights = check_weights(weights, len(mixture.members), mixture.mode)
    return mixture.with_weights(weights, {"tuning": {"method": "given"}})


__all__ = ["LINEAR", "LOGLINEAR", "em_weights", "em_weights_by_row", "newton_weights", "tune", "given"]
