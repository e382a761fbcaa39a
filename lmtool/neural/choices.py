"""The names ``train`` offers as choices: recurrent cells, activations, initialisations, output
layers, word-class methods and optimisers, each mapped to its implementation.

Entries are imported when first used (``lmtool.registry``), so the command line can offer them
without importing Numba.
"""

from ..registry import Registry

CELLS = Registry("cell", {"rnn": "lmtool.kernels.rnn", "lstm": "lmtool.kernels.lstm", "gru": "lmtool.kernels.gru",
                          "lstm-peephole": "lmtool.kernels.lstm_peephole",
                          "lstm-coupled": "lmtool.kernels.lstm_coupled"})
"""Recurrent cells by name; each module follows the cell protocol in ``lmtool.kernels.lstm``."""
ARCHITECTURES = (*CELLS, "window")
"""What ``--cell`` offers: the recurrent cells, and the fixed-window model (``neural.window``), which
is not recurrent and is a model kind of its own."""
ACTIVATIONS = ("tanh", "relu", "sigmoid")
"""Nonlinearities of the vanilla RNN (the gated cells have their own fixed ones); ``kernels.rnn`` codes them."""
INITS = ("default", "identity")
"""default: PyTorch-like; identity: W = I, b = 0 for the RNN (IRNN, use with relu)."""
OUTPUTS = Registry("softmax", {"full": "lmtool.neural.output:FullSoftmax",
                               "class": "lmtool.neural.output:ClassSoftmax"})
"""Output layers: full softmax or class-factored softmax; each is built as ``OUTPUTS[name](V, H, classes)``."""
CLASS_METHODS = Registry("class method", {"exchange": "lmtool.neural.classes:exchange_classes",
                                          "frequency": "lmtool.neural.classes:frequency_classes"})
"""How a class softmax's words are put into classes, each called as ``method(contexts, targets, V, n, log)``."""
OPTIMIZERS = ("sgd", "adam")
"""Optimisers (``neural.optimizer``)."""
DEFAULT_LR = {"sgd": 20.0, "adam": 2e-3}
"""The learning rate of each optimiser when ``--lr`` is not given."""
CELL_DEFAULTS = {"recurrent": {"batch": 20, "optimizer": "sgd"}, "window": {"batch": 1024, "optimizer": "adam"}}
"""Defaults that depend on ``--cell``: ``--batch`` counts streams of a recurrent model but windows of
the fixed-window one, and SGD at the recurrent models' rate and clipping learns the window model
slowly (``bench/RESULTS.md``, the fixed-window section)."""
