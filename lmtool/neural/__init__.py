"""Neural language models: configuration, parameters, the networks (forward and backward), training.

``NetworkConfig`` imports without the kernels; the networks import Numba, so they are loaded when
first asked for (the command line reads the options and choices of this package at start).
"""

from .config import NetworkConfig

__all__ = ["NetworkConfig", "NetworkState", "RecurrentNetwork"]


def __getattr__(name):
    if name in ("NetworkState", "RecurrentNetwork"):
        from . import network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
