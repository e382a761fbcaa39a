"""Text generation by sampling, with temperature, top-k and top-p, from any model and an explicit seed.

Each step asks the model for the next-token distributions of all rows at once, reshapes them
(temperature, top-k, top-p, never ``<s>`` or ``<unk>``), and draws one token per row by inverse CDF
from a NumPy ``Generator`` seeded by the caller: the same seed gives the same text. Plain samples
of an n-gram model (no prefix, temperature 1, no top-k or top-p) are drawn by ``ngram.sampler``'s
kernel instead, from the same distribution, much faster.
"""

import numpy as np

from .errors import LmtoolError
from .vocab import BOS, EOS, UNK


def shape_distribution(probs, temperature=1.0, top_k=0, top_p=1.0):
    """Apply temperature, then top-k, then top-p to float64[B, V] probabilities (rows renormalised, copy).

    top-p keeps the nucleus (Holtzman et al. 2020): the smallest set of the likeliest tokens whose
    probability reaches ``top_p``, ties in probability taken in token order.
    """
    p = np.array(probs, dtype=np.float64)
    p[:, [BOS, UNK]] = 0.0
    if temperature != 1.0:
        with np.errstate(divide="ignore"):
            logp = np.log(p) / temperature
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
    if top_k and top_k < p.shape[1]:
        cut = -np.partition(-p, top_k - 1, axis=1)[:, top_k - 1:top_k]
        p[p < cut] = 0.0
    if top_p < 1.0:
        p = nucleus(p, top_p)
    total = p.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise LmtoolError("the model gives no probability to any token after this prefix")
    return p / total


def nucleus(p, top_p):
    """``p`` (float64[B, V], rows > 0 somewhere) with every token outside each row's nucleus zeroed: a
    token stays when the tokens likelier than it (earlier ones among equals) hold less than ``top_p``
    of the row's probability."""
    order = np.argsort(-p, axis=1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=1)
    before = np.cumsum(ranked, axis=1) - ranked  # the mass of the likelier tokens
    outside = before >= top_p * ranked.sum(axis=1, keepdims=True)
    kept = p.copy()
    np.put_along_axis(kept, order, np.where(outside, 0.0, ranked), axis=1)
    return kept


MAX_SENTENCES = 10 ** 9
"""More sentences than any command could print in a day: -n beyond this is a slip."""
MAX_TOKENS = 100
"""Where a sentence stops by default; ``running_text`` allows this many per line asked for."""
BATCH_SENTENCES = 256
"""Sentences sampled side by side: a step holds each one's next-token distribution (batch x V floats)."""


def check_options(temperature, top_k, max_tokens, n, seed=0, top_p=1.0, lines=None):
    """Refuse sampling options no command should run with, in one line naming the option."""
    from .options import seed_value

    seed_value("--seed", seed)
    if lines is not None and lines < 1:
        raise LmtoolError(f"--lines must be at least 1, got {lines}")
    if not temperature > 0 or not np.isfinite(temperature):
        raise LmtoolError(f"--temperature must be a positive number, got {temperature}")
    if top_k < 0:
        raise LmtoolError(f"--top-k must be 0 (off) or positive, got {top_k}")
    if not 0 < top_p <= 1:
        raise LmtoolError(f"--top-p must be a probability in (0, 1] (1: off), got {top_p}")
    if max_tokens < 1:
        raise LmtoolError(f"--max-tokens must be at least 1, got {max_tokens}")
    if n < 1:
        raise LmtoolError(f"-n must be at least 1, got {n}")
    if n > MAX_SENTENCES:
        raise LmtoolError(f"-n {n} is absurdly large (at most {MAX_SENTENCES:,} sentences per command)")


def generate(model, prefix_ids, n=1, seed=0, temperature=1.0, top_k=0, max_tokens=MAX_TOKENS, top_p=1.0):
    """Sample ``n`` continuations of ``prefix_ids`` (int32 ids, after ``<s>``).

    Returns a list of n int32 arrays: the generated tokens (without the prefix), each ending before
    ``</s>`` or after ``max_tokens`` tokens.
    """
    return list(sentences(model, prefix_ids, n, seed, temperature, top_k, max_tokens, top_p=top_p))


def sentences(model, prefix_ids, n=1, seed=0, temperature=1.0, top_k=0, max_tokens=MAX_TOKENS,
              batch=BATCH_SENTENCES, top_p=1.0):
    """``generate``'s sentences one by one as they are sampled, ``batch`` at a time, so the first come
    at once and memory stays flat however large ``n`` is. The same seed gives the same sentences."""
    check_options(temperature, top_k, max_tokens, n, top_p=top_p)
    prefix_ids = np.asarray(prefix_ids, np.int32)
    shaping = (temperature, top_k, top_p)
    if _plain_ngram_sampling(model, prefix_ids, *shaping):
        yield from _ngram_sentences(model, n, seed, max_tokens)
        return
    rng = np.random.Generator(np.random.PCG64(seed))
    for start in range(0, n, batch):
        yield from _sample_batch(model, prefix_ids, min(batch, n - start), rng, shaping, max_tokens)


def running_text(model, prefix_ids, lines, seed=0, temperature=1.0, top_k=0, top_p=1.0, max_tokens=None):
    """``lines`` lines of running text from a stream model (``train --stream``), each sampled in the
    context of the lines before it, the first continuing ``prefix_ids``; yields each line's sampled
    tokens (int32, without the prefix and the newline) as it ends.

    The text stops early after ``max_tokens`` tokens in all (default ``MAX_TOKENS`` per line),
    newlines included; the line it cuts, if any token of it was drawn, is yielded as it stands. The
    same seed gives the same text.
    """
    if not getattr(model, "stream", False):
        raise LmtoolError("--lines needs a model trained with --stream (text that runs on); this one "
                          "starts afresh at every line: use -n for separate lines")
    check_options(temperature, top_k, 1 if max_tokens is None else max_tokens, 1, seed, top_p, lines)
    max_tokens = MAX_TOKENS * lines if max_tokens is None else max_tokens
    shaping = (temperature, top_k, top_p)
    rng = np.random.Generator(np.random.PCG64(seed))
    state = model.begin([np.asarray(prefix_ids, np.int32)])
    line = []
    for _ in range(max_tokens):
        token = _draw(shape_distribution(model.distribution(state), *shaping), rng)
        if token[0] == EOS:
            yield np.array(line, np.int32)
            lines -= 1
            if not lines:
                return
            line = []
        else:
            line.append(int(token[0]))
        state = model.advance(state, token)
    if line:
        yield np.array(line, np.int32)


def _draw(p, rng):
    """One token per row of ``p`` (float64[B, V], rows summing to one) by inverse CDF: int32[B]."""
    u = rng.random(p.shape[0])
    cdf = np.cumsum(p, axis=1)
    return np.minimum((cdf < (u * cdf[:, -1])[:, None]).sum(axis=1), p.shape[1] - 1).astype(np.int32)


def _plain_ngram_sampling(model, prefix_ids, temperature, top_k, top_p):
    """Whether ``ngram.sampler``'s kernel can draw these sentences: from a normalised n-gram model,
    with no prefix, temperature 1 and no top-k or top-p (it walks the model's own backoff distribution)."""
    return (getattr(model, "kind", None) == "ngram" and getattr(model, "normalized", False) and len(prefix_ids) == 0
            and temperature == 1.0 and not top_k and top_p == 1.0)


FEW_SENTENCES = 16
"""Plain n-gram samples of at most this many sentences are drawn in Python (``ngram.sampler.FewSentences``,
the same sentences) while Numba is not loaded: its start-up would take longer."""


def _ngram_sentences(model, n, seed, max_tokens):
    """``n`` sentences from ``ngram.sampler.NgramSampler``, block by block (thousands of sentences a
    second where stepping the model's distributions takes milliseconds each)."""
    from .compiled import numba_loaded
    from .ngram.sampler import BLOCK, FewSentences, NgramSampler

    if n <= FEW_SENTENCES and not numba_loaded():
        ids, lengths = FewSentences(model, max_len=max_tokens, sentences=n).ids(seed, 0, n)
        ends = np.cumsum(lengths)
        for k in range(n):
            yield ids[ends[k] - lengths[k]:ends[k]]
        return

    sampler = NgramSampler(model, max_len=max_tokens, block=min(n, BLOCK))
    for index in range(-(-n // sampler.size)):
        ids, lengths = sampler.ids(seed, index)
        ends = np.cumsum(lengths)
        for k in range(min(sampler.size, n - index * sampler.size)):
            yield ids[ends[k] - lengths[k]:ends[k]]


def _sample_batch(model, prefix_ids, n, rng, shaping, max_tokens):
    """``n`` sentences sampled side by side, step by step, drawing from ``rng``; ``shaping``:
    (temperature, top_k, top_p)."""
    state = model.begin([prefix_ids] * n)
    out = np.full((n, max_tokens), -1, np.int32)
    alive = np.ones(n, bool)
    for step in range(max_tokens):
        tokens = _draw(shape_distribution(model.distribution(state), *shaping), rng)
        tokens[~alive] = EOS
        out[alive, step] = tokens[alive]
        alive &= tokens != EOS
        if not alive.any():
            break
        state = model.advance(state, tokens)
    return [row[(row >= 0) & (row != EOS)] for row in out]
