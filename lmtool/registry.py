"""Registry: names mapped to implementations that are imported on first use.

The command line offers a registry's names as the choices of an option (``--cell``, ``--softmax``,
``lmtool.load``'s model kinds), and must start without importing what they name: recurrent cells
and output layers are Numba kernels, and importing Numba costs about half a second. So each entry
is a ``"module:attribute"`` path (or a bare module path) resolved when it is looked up.
"""

import importlib
from collections.abc import Mapping


class Registry(Mapping):
    """A read-only mapping from names to lazily imported objects.

    ``what`` names the kind of thing held ("cell", "softmax"), for the error a missing name raises:
    a ``KeyError`` whose message lists the known names.
    """

    def __init__(self, what, entries):
        self.what = what
        self._paths = dict(entries)
        self._loaded = {}

    def __getitem__(self, name):
        if name not in self._loaded:
            try:
                path = self._paths[name]
            except (KeyError, TypeError):
                raise KeyError(f"unknown {self.what} {name!r}; expected one of {', '.join(self._paths)}") from None
            module, _, attribute = path.partition(":")
            loaded = importlib.import_module(module)
            self._loaded[name] = getattr(loaded, attribute) if attribute else loaded
        return self._loaded[name]

    def __iter__(self):
        return iter(self._paths)

    def __len__(self):
        return len(self._paths)

    def __contains__(self, name):
        return name in self._paths

    def __repr__(self):
        return f"Registry({self.what!r}, {list(self._paths)})"
