"""A corpus read into id arrays: the shared first step of counting, training and evaluation."""

from dataclasses import dataclass

import numpy as np

from . import corpus
from .errors import LmtoolError
from .progress import silent
from .vocab import TokenCounter, check_limits


@dataclass
class EncodedCorpus:
    """Sentences as ids: ``ids`` int32[n] back to back, ``lengths`` int32[S] tokens per sentence.

    ``fingerprint`` is a BLAKE2b digest of the bytes read (decompressed), ``files`` the inputs.
    """

    vocab: object
    ids: np.ndarray
    lengths: np.ndarray
    fingerprint: str
    files: list

    @property
    def tokens(self):
        """Tokens scored or counted: words plus one ``</s>`` per sentence."""
        return int(len(self.ids) + len(self.lengths))

    def describe(self):
        """What the model file records about its training data."""
        return training_record(self.files, self.fingerprint, len(self.ids), len(self.lengths))


def training_record(paths, fingerprint, words, sentences):
    """What a model file records about its training data: files, digest, sentences and tokens."""
    return {"files": [corpus.display_name(f) for f in paths], "blake2b": fingerprint,
            "sentences": int(sentences), "tokens": int(words + sentences)}


def check_not_empty(words, paths):
    """Refuse a corpus without a single token, naming its files."""
    if words == 0:
        name = corpus.display_name(paths[0]) if len(paths) == 1 else ", ".join(map(corpus.display_name, paths))
        raise LmtoolError("no tokens in the corpus (only empty lines)", name)


def read_corpus(paths, level="word", vocab=None, min_count=1, max_vocab=None, keep=None, progress=silent):
    """Read and encode ``paths``.

    Without ``vocab``, builds the vocabulary from the text (frequency-ordered, limited by
    ``min_count``, ``max_vocab`` and the token set ``keep``); with one, maps unknown tokens to
    ``<unk>``. Raises ``LmtoolError`` if the files hold no tokens at all.
    """
    if level not in corpus.LEVELS:
        raise LmtoolError(f"unknown level {level!r}; expected one of {', '.join(corpus.LEVELS)}")
    check_limits(min_count, max_vocab)
    hasher = corpus.data_hasher()
    counter = TokenCounter(level) if vocab is None else None
    encode = counter.encode if vocab is None else vocab.encode_bytes
    ids, lengths = [], []
    bar = progress("reading", total=corpus.input_size(paths), unit="B")
    try:
        for chunk in corpus.read_chunks(paths, progress=bar.update, hasher=hasher):
            chunk_ids, chunk_lengths = encode(chunk.data)
            ids.append(chunk_ids)
            lengths.append(chunk_lengths)
    finally:
        bar.close()
    ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int32)
    check_not_empty(len(ids), paths)
    if vocab is None:
        counts = np.bincount(ids, minlength=len(counter))
        vocab, remap = counter.finish(counts, min_count=min_count, max_vocab=max_vocab, keep=keep)
        ids = remap[ids]
    return EncodedCorpus(vocab, ids, lengths, hasher.hexdigest(), list(paths))
