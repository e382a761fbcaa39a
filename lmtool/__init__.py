"""lmtool: n-gram and recurrent language models from plain text, served through one interface.

    >>> import lmtool
    >>> model = lmtool.load("kjv5.lm")
    >>> model.score("and god said")            # log10 p of the sentence, </s> included
    >>> model.perplexity("in the beginning")

Models are built with ``lmtool.ngram.build.build_ngram_model`` (what ``lmtool count`` runs) or the
recurrent trainer (``lmtool train``); both answer the ``LanguageModel`` interface.
"""

from .registry import Registry

__version__ = "0.1.0"


def load(path, verify=True):
    """Open a model file of any kind (n-gram or recurrent) and return the model.

    ``verify`` checks the data checksum (a few milliseconds per 10 MB).
    """
    from . import modelfile
    from .errors import LmtoolError

    opened = modelfile.read(path, verify=verify)
    try:
        return model_class(opened.kind).from_file(opened)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise LmtoolError(f"damaged {opened.kind} model file (missing or inconsistent {err}); rebuild it",
                          path) from None


def model_class(kind):
    """The class with a ``from_file`` constructor for model-file ``kind`` (``MODEL_CLASSES``)."""
    return MODEL_CLASSES[kind]


MODEL_CLASSES = Registry("model kind", {"ngram": "lmtool.ngram.model:NgramModel",
                                        "recurrent": "lmtool.neural.model:RecurrentModel",
                                        "window": "lmtool.neural.window_model:WindowModel"})
"""Model-file kinds and the classes that open them, imported on demand (opening an n-gram model
does not load the neural code)."""
