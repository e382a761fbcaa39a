"""When the compiled kernels pay: Numba's start-up against the NumPy paths' cost per token.

Numba costs about 0.2-0.45 s to import and as much again when the first kernel of a process runs
(its typing and lowering registries load then), before each kernel's own cached machine code
loads. Where an input is small, that start-up is most of the time a command takes, so each model
kind also has a path written in NumPy and Python that needs no compilation: the tokeniser
(``Vocabulary.encode_bytes``), the decoding of quantised files (``ngram.quantize.unpack``), n-gram
scoring and generation (``ngram.trie``) and the forward pass of every recurrent cell and of the
fixed-window model (``neural.forward``). Those paths give the numbers the kernels give (n-gram
scores exactly; neural scores within float32 rounding), and are chosen by input size, or because
the kernels are loaded already.
"""

import sys

NGRAM_NUMPY_TOKENS = 400_000
"""An n-gram model scores in NumPy, while its hash table is not built, until it has scored this many
tokens (words and ``</s>``) that way: on the KJV 5-gram the trie search with the Python tokeniser costs
about 1 us per token against 0.6-0.8 s of Numba's start-up and the table's build, so the kernels pay
from nearly a million tokens; a file known to be larger than this takes them at once (``prepare``).
"""
NGRAM_NUMPY_LONGEST = 1000
"""...and for batches whose sentences have at most this many words: the NumPy search walks a batch
position by position, some 0.2-0.5 ms a step, so one very long line is the kernels' work."""
TOKENISER_PYTHON_BYTES = 1 << 18
"""Text of at most this many bytes is split and looked up in Python (about 0.1-0.2 us per token)
unless the tokenising kernels are loaded already."""
RECURRENT_NUMPY_TOKENS = 16_384
"""A recurrent or fixed-window model scores a batch of at most this many tokens with the NumPy forward pass: it runs at
0.65-0.9x the kernels' speed (LSTM 1x200, full and class softmax), so below about 20k tokens Numba's
start-up costs more than it saves. The choice depends on the batch alone, never on what ran before,
since the two paths round differently: one input, one path, the same bytes whatever the threads or the
cluster.
"""


def numba_loaded():
    """Whether Numba is imported in this process already (its start-up is paid)."""
    return "numba" in sys.modules


def expected_tokens(input_bytes, level="word"):
    """About how many tokens ``input_bytes`` of text hold (None stays None: the size is unknown)."""
    if input_bytes is None:
        return None
    return input_bytes if level == "char" else input_bytes // 5
