"""Text generation by sampling, with temperature and top-k, from any model and an explicit seed.

Each step asks the model for the next-token distributions of all rows at once, reshapes them
(temperature, top-k, never ``<s>`` or ``<unk>``), and draws one token per row by inverse CDF
from a NumPy ``Generator`` seeded by the caller: the same seed gives the same text. Plain samples
of an n-gram model (no prefix, temperature 1, no top-k) are drawn by ``ngram.sampler``'s kernel
instead, from the same distribution, much faster.
"""

import numpy as np

from .errors import LmtoolError
from .vocab import BOS, EOS, UNK


def shape_distribution(probs, temperature=1.0, top_k=0):
    """Apply temperature and top-k to float64[B, V] probabilities (rows renormalised, copy)."""
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
    total = p.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise LmtoolError("the model gives no probability to any token after this prefix")
    return p / total


MAX_SENTENCES = 10 ** 9
"""More sentences than any command could print in a day: -n beyond this is a slip."""
BATCH_SENTENCES = 256
"""Sentences sampled side by side: a step holds each one's next-token distribution (batch x V floats)."""


def check_options(temperature, top_k, max_tokens, n, seed=0):
    """Refuse sampling options no command should run with, in one line naming the option."""
    from .options import seed_value

    seed_value("--seed", seed)
    if not temperature > 0 or not np.isfinite(temperature):
        raise LmtoolError(f"--temperature must be a positive number, got {temperature}")
    if top_k < 0:
        raise LmtoolError(f"--top-k must be 0 (off) or positive, got {top_k}")
    if max_tokens < 1:
        raise LmtoolError(f"--max-tokens must be at least 1, got {max_tokens}")
    if n < 1:
        raise LmtoolError(f"-n must be at least 1, got {n}")
    if n > MAX_SENTENCES:
        raise LmtoolError(f"-n {n} is absurdly large (at most {MAX_SENTENCES:,} sentences per command)")


def generate(model, prefix_ids, n=1, seed=0, temperature=1.0, top_k=0, max_tokens=100):
    """Sample ``n`` continuations of ``prefix_ids`` (int32 ids, after ``<s>``).

    Returns a list of n int32 arrays: the generated tokens (without the prefix), each ending before
    ``</s>`` or after ``max_tokens`` tokens.
    """
    return list(sentences(model, prefix_ids, n, seed, temperature, top_k, max_tokens))


def sentences(model, prefix_ids, n=1, seed=0, temperature=1.0, top_k=0, max_tokens=100, batch=BATCH_SENTENCES):
    """``generate``'s sentences one by one as they are sampled, ``batch`` at a time, so the first come
    at once and memory stays flat however large ``n`` is. The same seed gives the same sentences."""
    check_options(temperature, top_k, max_tokens, n)
    prefix_ids = np.asarray(prefix_ids, np.int32)
    if _plain_ngram_sampling(model, prefix_ids, temperature, top_k):
        yield from _ngram_sentences(model, n, seed, max_tokens)
        return
    rng = np.random.Generator(np.random.PCG64(seed))
    for start in range(0, n, batch):
        yield from _sample_batch(model, prefix_ids, min(batch, n - start), rng, temperature, top_k, max_tokens)


def _plain_ngram_sampling(model, prefix_ids, temperature, top_k):
    """Whether ``ngram.sampler``'s kernel can draw these sentences: from a normalised n-gram model,
    with no prefix, temperature 1 and no top-k (it walks the model's own backoff distribution)."""
    return (getattr(model, "kind", None) == "ngram" and getattr(model, "normalized", False) and len(prefix_ids) == 0
            and temperature == 1.0 and not top_k)


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


def _sample_batch(model, prefix_ids, n, rng, temperature, top_k, max_tokens):
    """``n`` sentences sampled side by side, step by step, drawing from ``rng``."""
    state = model.begin([prefix_ids] * n)
    out = np.full((n, max_tokens), -1, np.int32)
    alive = np.ones(n, bool)
    for step in range(max_tokens):
        p = shape_distribution(model.distribution(state), temperature, top_k)
        u = rng.random(n)
        cdf = np.cumsum(p, axis=1)
        tokens = np.minimum((cdf < (u * cdf[:, -1])[:, None]).sum(axis=1), p.shape[1] - 1).astype(np.int32)
        tokens[~alive] = EOS
        out[alive, step] = tokens[alive]
        alive &= tokens != EOS
        if not alive.any():
            break
        state = model.advance(state, tokens)
    return [row[(row >= 0) & (row != EOS)] for row in out]
