"""MixtureModel: several language models made one, linearly or log-linearly, behind the same interface.

Linear: P(w | h) = sum_i w_i P_i(w | h), the weights summing to 1. Log-linear (KenLM's
``interpolate``): P(w | h) proportional to prod_i P_i(w | h)^w_i, normalised over the vocabulary at
every position (``distributions`` gives the members' whole distributions). Weights come from
``mixture_weights`` (EM, maximum likelihood) or by hand.

Vocabularies may differ. The mixture's is their union (``<unk> <s> </s>``, the first member's
tokens in its order, then each next member's new ones); a word a member lacks is that member's
``<unk>``, whose probability is shared equally among all the mixture words it stands for (the
words the member lacks, and ``<unk>`` itself), so every member, and so the mixture, stays a
distribution over the mixture's vocabulary. With one vocabulary nothing is shared: each token's
probability is exactly the weighted sum.

Weights by context (``context`` a member's index, an n-gram model of order N): one set of weights
per row b = 0 .. N-1, the row picked at each position by how many of the previous words that
member knows as one n-gram (``history_rows``: its ``ngram_length`` of the previous token, at
most N-1; 0 for a sentence's first word). Where the n-gram model knows a long context it can be
trusted more than where it backs off to unigrams. The row depends on the history only, so each
position still mixes distributions with weights summing to 1.

The model file holds each member's model file whole, as a uint8 array (``member.0``, ...), opened
in place from the mixture's memory map; the container's CRC-32 covers them. No pickle.
"""

import math
import os

import numpy as np

from . import modelfile
from .errors import LmtoolError
from .evaluate import word_positions
from .language_model import LanguageModel, Scores, check_batch, check_ids
from .vocab import BOS, EOS, UNK, Vocabulary

LINEAR, LOGLINEAR = "linear", "loglinear"
LN10 = math.log(10.0)
LOG10_FLOOR = -99.0
"""As ``kernels.mixture.LOG10_FLOOR``: the log10 probability a log-linear weight multiplies at least."""
MODES = (LINEAR, LOGLINEAR)
WEIGHT_SUM_TOLERANCE = 1e-4
"""How far from 1 linear weights given by hand may sum (printed weights are rounded); they are then
scaled to sum to 1 exactly."""


class MemberMaps:
    """The union vocabulary of some members and, per member, ``to_member``: int32[V] (its id of each
    mixture word, ``<unk>`` where it lacks the word), ``share``: float32[V] (log10 of how many mixture
    words its ``<unk>`` stands for, where it lacks the word; else 0) and ``from_member``: int32[V_i]
    (the mixture id of each of its words)."""

    def __init__(self, vocabs, names=None):
        names = names or [f"member {i + 1}" for i in range(len(vocabs))]
        for vocab, name in zip(vocabs, names):
            if vocab.level != vocabs[0].level:
                raise LmtoolError(f"its vocabulary is {vocab.level}-level, the first model's {vocabs[0].level}-level; "
                                  "mix models of one level", name)
        tokens = list(vocabs[0].tokens)
        index = dict(vocabs[0].index)
        for vocab in vocabs[1:]:
            for token in vocab.tokens:
                if token not in index:
                    index[token] = len(tokens)
                    tokens.append(token)
        self.vocab = vocabs[0] if len(tokens) == len(vocabs[0]) else Vocabulary(tokens, vocabs[0].level)
        self.to_member, self.share, self.from_member = [], [], []
        for vocab in vocabs:
            from_member = np.array([index[t] for t in vocab.tokens], np.int32)
            to_member = np.full(len(tokens), UNK, np.int32)
            to_member[from_member] = np.arange(len(vocab), dtype=np.int32)
            lacking = to_member == UNK
            share = np.zeros(len(tokens), np.float32)
            share[lacking] = math.log10(int(lacking.sum()))
            self.to_member.append(to_member)
            self.share.append(share)
            self.from_member.append(from_member)


def check_weights(weights, n_members, mode=LINEAR, what="--weights"):
    """float64[M] weights, refused unless one per member, finite, not negative, and (linear) summing to 1
    (within ``WEIGHT_SUM_TOLERANCE``, then scaled to exactly 1)."""
    weights = np.asarray(weights, np.float64)
    if weights.shape != (n_members,):
        raise LmtoolError(f"{what}: {weights.size} weights for {n_members} models; give one weight per model")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise LmtoolError(f"{what}: weights must be numbers of at least 0, got "
                          f"{','.join(f'{w:g}' for w in weights)}")
    if mode == LINEAR and abs(weights.sum() - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise LmtoolError(f"{what}: the weights of a linear mixture must sum to 1, these sum to {weights.sum():g}")
    if mode == LINEAR:
        weights = weights / weights.sum()
    if mode == LOGLINEAR and not weights.any():
        raise LmtoolError(f"{what}: at least one weight must be above 0")
    return weights


def check_member(model, name):
    """Refuse a member whose scores are not probabilities (stupid backoff): a mixture of them would
    not be a distribution either."""
    if not model.normalized:
        raise LmtoolError(f"its {model.meta.get('smoothing', 'unnormalised')} scores are not probabilities (they "
                          "do not sum to one), so a mixture with it would not be a language model; rebuild it with "
                          "a normalised smoothing such as modified-kneser-ney", name)


BY_CONTEXT_LINEAR = "weights by context are for linear mixtures (a log-linear one is tuned as a whole)"


def context_member(members, names, mode=LINEAR):
    """The index of the member whose knowledge of the history picks the weights: the n-gram member
    of the highest order (the first of them), refused if there is none of order 2 or more."""
    if mode != LINEAR:
        raise LmtoolError(BY_CONTEXT_LINEAR)
    orders = [m.order if m.kind == "ngram" else 0 for m in members]
    if max(orders) < 2:
        raise LmtoolError("weights by context need an n-gram member of order 2 or more (they follow how many "
                          "previous words it knows); none of " + ", ".join(map(str, names)) + " is one")
    return orders.index(max(orders))


def history_rows(member, ids, lengths, scores=None):
    """int32[n + S]: at each token position of a batch of sentences (``ids`` the n-gram ``member``'s),
    the row of context weights: the n-gram length the member used for the previous token, at most
    its order - 1, and 0 at a sentence's first token (its history is ``<s>`` alone). ``scores``: the
    member's ``Scores`` of the batch, if already computed."""
    ngram_length = (member.score_ids(ids, lengths) if scores is None else scores).ngram_length
    rows = np.zeros(len(ngram_length), np.int32)
    np.minimum(ngram_length[:-1], member.order - 1, out=rows[1:], casting="unsafe")
    rows[np.cumsum(lengths + 1)[:-1]] = 0
    return rows


class MixtureModel(LanguageModel):
    """Members (``LanguageModel``s of any kind, mixtures too), their ``weights`` and ``mode``:
    float64[M], or with ``context`` (a member's index, see the module's docstring) float64[N, M],
    one row per length of history that member knows."""

    kind = "mixture"

    def __init__(self, members, weights, mode=LINEAR, meta=None, member_bytes=None, names=None, maps=None,
                 context=None):
        if mode not in MODES:
            raise ValueError(f"unknown mixture mode {mode!r}")
        self.members = list(members)
        self.names = list(names) if names is not None else [f"member {i + 1}" for i in range(len(self.members))]
        for model, name in zip(self.members, self.names):
            check_member(model, name)
        self.mode = mode
        self.context = context
        if context is None:
            self.weights = check_weights(weights, len(self.members), mode, what="weights")
            self._table = self.weights[None, :]
        else:
            self._table = self.weights = _context_weights(weights, self.members, self.names, context, mode)
        self.maps = maps or MemberMaps([m.vocab for m in self.members], self.names)
        self.vocab = self.maps.vocab
        self.meta = dict(meta or {})
        self.member_bytes = member_bytes
        self._shares = np.stack(self.maps.share)

    # The model file

    @classmethod
    def from_files(cls, paths, weights, mode=LINEAR, meta=None):
        """A mixture of the model files ``paths`` (their bytes kept, to be embedded by ``save``)."""
        import lmtool

        members, raw = [], []
        for path in paths:
            members.append(lmtool.load(path))
            try:
                raw.append(np.memmap(path, np.uint8, mode="r"))  # copied into the mixture's file block by block
            except OSError as err:
                raise LmtoolError(f"cannot read: {err.strerror or err}", path) from None
        return cls(members, weights, mode, meta, raw, names=[os.fspath(p) for p in paths])

    def with_weights(self, weights, meta=None, context=None):
        """The same members with other weights (and metadata; ``context`` as in the constructor)."""
        return MixtureModel(self.members, weights, self.mode, dict(self.meta, **(meta or {})), self.member_bytes,
                            self.names, self.maps, context)

    def describe_members(self, raw=None):
        """What ``info`` shows of each member: its name, kind, vocabulary and size (of ``raw``, its bytes)."""
        out = []
        for model, name, raw in zip(self.members, self.names, raw or [None] * len(self.members)):
            item = {"name": os.path.basename(name), "kind": model.kind, "vocabulary": len(model.vocab)}
            if model.kind == "ngram":
                item.update(order=model.order, smoothing=model.meta.get("smoothing"))
            elif model.kind == "recurrent":
                cfg = model.config
                item.update(cell=cfg.cell, layers=cfg.layers, hidden=cfg.hidden, softmax=cfg.softmax)
            elif model.kind == "window":
                cfg = model.config
                item.update(window=cfg.window, hidden=cfg.hidden, direct=cfg.direct, softmax=cfg.softmax)
            elif model.kind == "mixture":
                item.update(mode=model.mode, members=len(model.members))
            if raw is not None:
                item["bytes"] = int(raw.size)
            out.append(item)
        return out

    def save(self, path):
        """Write the mixture's model file: members embedded whole, weights and how they were found."""
        raw = self.member_bytes or [_model_bytes(m) for m in self.members]
        meta = dict(self.meta, mode=self.mode, weights=self.weights.tolist(), level=self.vocab.level,
                    vocabulary=len(self.vocab), members=self.describe_members(raw))
        meta.pop("context", None)
        if self.context is not None:
            meta["context"] = {"member": self.context + 1, "rows": "n-gram length of the previous token known "
                                                                   "to that member, at most its order - 1"}
        modelfile.write(path, self.kind, meta, {f"member.{i}": np.asarray(r, np.uint8) for i, r in enumerate(raw)})

    @classmethod
    def from_file(cls, opened):
        """Rebuild from an opened ``ModelFile`` of kind ``mixture``: each member opened in place."""
        from . import model_class

        meta = opened.meta
        described = meta["members"]
        members, raw, names = [], [], []
        for i in range(len(described)):
            data = opened[f"member.{i}"]
            name = f"{opened.path} (member {i + 1}, {described[i].get('name', '?')})"
            inner = modelfile.read_buffer(data, name, verify=False)  # the mixture's own CRC covers it
            try:
                members.append(model_class(inner.kind).from_file(inner))
            except (KeyError, TypeError, ValueError, IndexError) as err:
                raise LmtoolError(f"damaged {inner.kind} model (missing or inconsistent {err}); rebuild the mixture",
                                  name) from None
            raw.append(data)
            names.append(described[i].get("name", f"member {i + 1}"))
        try:
            context = meta["context"]["member"] - 1 if "context" in meta else None
        except (KeyError, TypeError):
            raise LmtoolError("damaged mixture (its context member is unreadable); rebuild it", opened.path) from None
        try:
            return cls(members, meta["weights"], meta["mode"], meta, raw, names, context=context)
        except LmtoolError as err:
            raise LmtoolError(f"damaged mixture ({err.message}); rebuild it", opened.path) from None

    # Scoring

    def _members_used(self):
        """The members with a weight above 0 (in any row)."""
        return [i for i in range(len(self.members)) if (self._table[:, i] > 0).any()]

    def _members_needed(self):
        """The members used and the context member (which picks the rows even at weight 0)."""
        return sorted(set(self._members_used()) | ({self.context} if self.context is not None else set()))

    def _scored(self, ids, lengths):
        """{member index: its ``Scores`` of the batch} for the members used and the context member,
        and int32[n + S] the row of weights at each position (all 0 without ``context``)."""
        scored = {i: self.members[i].score_ids(self.maps.to_member[i][ids], lengths) for i in self._members_needed()}
        return scored, self._rows(ids, lengths, scored.get(self.context))

    def _rows(self, ids, lengths, scores=None):
        """int32[n + S]: the row of weights at each position (all 0 without ``context``)."""
        if self.context is None:
            return np.zeros(len(ids) + len(lengths), np.int32)
        c = self.context
        return history_rows(self.members[c], self.maps.to_member[c][ids], lengths, scores)

    def member_token_log10(self, ids, lengths, members=None):
        """float32[M', n + S]: log10 P_i of each token as each member gives it over the mixture's
        vocabulary (its ``<unk>`` share taken off words it lacks), for the members listed (all)."""
        ids, lengths = check_batch(ids, lengths, len(self.vocab))
        members = range(len(self.members)) if members is None else members
        targets = self.targets(ids, lengths)
        out = np.empty((len(members), len(ids) + len(lengths)), np.float32)
        for row, i in enumerate(members):
            out[row] = self.members[i].score_ids(self.maps.to_member[i][ids], lengths).token
            out[row] -= self.maps.share[i][targets]
        return out

    @staticmethod
    def targets(ids, lengths):
        """int32[n + S]: the token at each position of ``Scores.token`` (the words, then ``</s>``)."""
        targets = np.full(len(ids) + len(lengths), EOS, np.int32)
        targets[word_positions(lengths)] = ids
        return targets

    def score_ids(self, ids, lengths):
        ids, lengths = check_batch(ids, lengths, len(self.vocab))
        if self.mode == LOGLINEAR:
            return self._score_loglinear(ids, lengths)
        from .kernels.mixture import linear_tokens

        used = self._members_used()
        scored, rows = self._scored(ids, lengths)
        logp = np.empty((len(used), len(ids) + len(lengths)), np.float32)
        for row, i in enumerate(used):
            logp[row] = scored[i].token
        token = np.empty(logp.shape[1], np.float32)
        sentence = np.empty(len(lengths), np.float64)
        linear_tokens(logp, np.ascontiguousarray(self._shares[used]), self.targets(ids, lengths),
                      np.ascontiguousarray(self._table[:, used]), rows, lengths, token, sentence)
        return Scores(sentence, token, None)

    def _score_loglinear(self, ids, lengths):
        from .distributions import log10_groups

        targets = self.targets(ids, lengths)
        token = np.empty(len(targets), np.float32)
        for lo, hi, rows in log10_groups(self, ids, lengths):
            token[lo:hi] = rows[np.arange(hi - lo), targets[lo:hi]]
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
        sentence = (np.add.reduceat(token.astype(np.float64), starts) if len(lengths) else np.zeros(0))
        return Scores(sentence, token, None)

    def log10_rows(self, ids, lengths):
        """float64[n + S, V]: the mixture's log10 distribution at every token position (see
        ``distributions``), from its members' over the mixture's vocabulary."""
        from .distributions import log10_rows
        from .kernels.mixture import add_member, log10_normalise

        linear = self.mode == LINEAR
        total = np.full((len(ids) + len(lengths), len(self.vocab)), -np.inf if linear else 0.0)
        weight_rows = self._rows(ids, lengths)
        for i in self._members_used():
            rows = log10_rows(self.members[i], self.maps.to_member[i][ids], lengths)
            add_member(total, rows, self.maps.to_member[i], self.maps.share[i], self._table[weight_rows, i], linear)
        if not linear:
            log10_normalise(total, BOS, np.empty(len(total)))
        return total

    def worker(self):
        return MixtureModel([m.worker() for m in self.members], self.weights, self.mode, self.meta,
                            self.member_bytes, self.names, self.maps, self.context)

    # Generation

    def begin(self, prefixes):
        kept = self._members_needed()
        return [self.members[i].begin([self.maps.to_member[i][check_ids(p, len(self.vocab))] for p in prefixes])
                if i in kept else None for i in range(len(self.members))]

    def distribution(self, state):
        """float64[B, V]: the members' distributions over the mixture's vocabulary, mixed."""
        out = None
        rows = (np.zeros(len(state[self._members_used()[0]]), np.int32) if self.context is None
                else self.members[self.context].history_lengths(state[self.context]))  # as ``history_rows``
        for i in self._members_used():
            p = np.asarray(self.members[i].distribution(state[i]), np.float64)[:, self.maps.to_member[i]]
            p /= 10.0 ** self.maps.share[i].astype(np.float64)
            weight = self._table[rows, i][:, None]
            if self.mode == LINEAR:
                out = weight * p if out is None else out + weight * p
            else:
                with np.errstate(divide="ignore"):
                    term = weight * np.maximum(np.log(p), LOG10_FLOOR * LN10)
                out = term if out is None else out + term
        if self.mode == LOGLINEAR:
            out[:, BOS] = -np.inf
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return out

    def advance(self, state, tokens):
        tokens = check_ids(tokens, len(self.vocab))
        return [None if s is None else self.members[i].advance(s, self.maps.to_member[i][tokens])
                for i, s in enumerate(state)]


def _context_weights(weights, members, names, context, mode):
    """float64[N, M]: weights by context, one row per length of history the ``context`` member knows
    (N its order), each row checked as ``check_weights`` checks a mixture's weights."""
    if mode != LINEAR:
        raise LmtoolError(BY_CONTEXT_LINEAR)
    if not 0 <= context < len(members) or members[context].kind != "ngram" or members[context].order < 2:
        raise LmtoolError(f"weights by context follow an n-gram member of order 2 or more, not member {context + 1}")
    table = np.asarray(weights, np.float64)
    rows = members[context].order
    if table.ndim != 2 or table.shape[0] != rows:
        raise LmtoolError(f"weights by context: {rows} rows of weights expected (the {rows}-gram member "
                          f"{names[context]} knows 0 to {rows - 1} previous words), got shape {table.shape}")
    return np.stack([check_weights(row, len(members), mode, what=f"weights for histories of {b} known words")
                     for b, row in enumerate(table)])


def _model_bytes(model):
    """A model's file bytes, for a member built in memory: written to a temporary file and read back."""
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".lm")
    os.close(fd)
    try:
        model.save(path)
        return np.fromfile(path, np.uint8)
    finally:
        os.unlink(path)
