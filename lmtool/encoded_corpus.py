"""A corpus read into id arrays: the shared first step of counting, training and evaluation."""

from dataclasses import dataclass

import numpy as np

from . import corpus
from .errors import LmtoolError
from .progress import bar, silent
from .vocab import ThreadTallies, check_limits


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


def encode_corpus(paths, level="word", vocab=None, min_count=1, max_vocab=None, keep=None, progress=silent, threads=1,
                chunk_bytes=None):
    """Read and encode ``paths``.

    Without ``vocab``, builds the vocabulary from the text (frequency-ordered, limited by
    ``min_count``, ``max_vocab`` and the token set ``keep``); with one, maps unknown tokens to
    ``<unk>``. Chunks of ``chunk_bytes`` (default ``corpus.CHUNK_BYTES``) are encoded on
    ``threads`` threads while this one reads and checks the next ones; the result does not depend
    on ``threads``. Raises ``LmtoolError`` if the files hold no tokens at all.
    """
    from .threads import ordered_map

    if level not in corpus.LEVELS:
        raise LmtoolError(f"unknown level {level!r}; expected one of {', '.join(corpus.LEVELS)}")
    check_limits(min_count, max_vocab)
    hasher = corpus.data_hasher()
    if vocab is None:
        tallies = ThreadTallies(level)
        encode = tallies.add
    else:
        encode = lambda data: (0, *vocab.encode_bytes(data))  # noqa: E731
    tallied, ids, lengths = [], [], []
    with bar(progress, "reading", total=corpus.input_size(paths), unit="B") as shown:
        chunks = map(corpus.MarkerWatch(level), corpus.read_chunks(
            paths, chunk_bytes=chunk_bytes or corpus.CHUNK_BYTES, progress=shown.update, hasher=hasher))
        for tally, chunk_ids, chunk_lengths in ordered_map(lambda chunk: encode(chunk.data), chunks, threads):
            tallied.append(tally)
            ids.append(chunk_ids)
            lengths.append(chunk_lengths)
    check_not_empty(sum(map(len, ids)), paths)
    if vocab is None:
        joined, maps = tallies.joined()
        vocab, remap = joined.vocabulary(min_count=min_count, max_vocab=max_vocab, keep=keep)
        final = [remap[m] for m in maps]  # each tally's provisional ids -> the vocabulary's
        ids = [final[tally][chunk_ids] for tally, chunk_ids in zip(tallied, ids)]
    ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int32)
    return EncodedCorpus(vocab, ids, lengths, hasher.hexdigest(), list(paths))
