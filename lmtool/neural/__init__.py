"""Neural language models: configuration, parameters, the networks (forward and backward), training.

``NetworkConfig``, ``NetworkState`` and ``RecurrentNetwork`` are imported on first use: the
command line reads the options and choices of this package at start, and the networks' kernels
would load Numba.
"""

__all__ = ["NetworkConfig", "NetworkState", "RecurrentNetwork"]
_HOMES = {"NetworkConfig": ".config", "NetworkState": ".state", "RecurrentNetwork": ".network"}


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(_HOMES[name], __name__), name)
