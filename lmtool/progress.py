"""Progress reporting without a dependency: the library calls a factory, the CLI passes tqdm.

A progress factory is called as ``factory(desc, total=None, unit="it")`` and returns an object
with ``update(n)`` and ``close()`` (a ``tqdm`` bar is one). ``silent`` is the default; ``bar``
holds one open for a ``with`` block.
"""

from contextlib import contextmanager


class _Silent:
    def update(self, n=1):
        pass

    def close(self):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass


def silent(desc=None, total=None, unit="it"):
    """A progress factory whose bars show nothing."""
    return _Silent()


@contextmanager
def bar(factory, desc=None, total=None, unit="it"):
    """A bar from ``factory`` for the length of a ``with`` block, closed however the block ends."""
    progress = factory(desc, total=total, unit=unit)
    try:
        yield progress
    finally:
        progress.close()
