"""Worker threads for the commands that take ``--threads``: the option's check, BLAS kept to one
thread per worker, and an order-preserving parallel map with a bounded number of items in flight.

Threads (not processes) suffice because the kernels release the GIL (``nogil=True``); results come
back in input order, so the output of N threads is the output of one.
"""

import collections
import os

from .errors import LmtoolError

MAX_THREADS = 1024


def even_ranges(n, parts):
    """``parts`` ranges (a, b) cutting range(n) into near-equal pieces, in order: a share each."""
    edges = [n * k // parts for k in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def check_threads(threads):
    """Refuse a --threads value outside 1..MAX_THREADS with one line that names the option."""
    if threads is None or threads < 1:
        raise LmtoolError(f"--threads must be a positive integer, got {threads}")
    if threads > MAX_THREADS:
        raise LmtoolError(f"--threads {threads} is absurdly large (at most {MAX_THREADS})")
    return threads


def numpy_openblas():
    """The OpenBLAS that NumPy's wheel bundles (a ``ctypes.CDLL``), or None where there is none."""
    import ctypes
    import glob

    import numpy as np

    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*.so*"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def set_blas_threads(n):
    """Limit the OpenBLAS that NumPy bundles (the one ``kernels.dense.gemm`` calls) to ``n`` threads.

    Environment variables only work before NumPy loads; this works at any time. Returns the
    previous thread count, to restore it, or None when that library is not found (then the
    environment variables set earlier are all there is).
    """
    import ctypes

    try:
        lib = numpy_openblas()
        getter, setter = lib.scipy_openblas_get_num_threads64_, lib.scipy_openblas_set_num_threads64_
    except AttributeError:  # no library (None), or one without these entry points
        return None
    previous = int(getter())
    setter(ctypes.c_int(int(n)))
    return previous


def for_each(fn, items, threads=1, in_flight=None):
    """``fn(item)`` for each item, for its effect, on ``threads`` threads (``ordered_map``'s bounds)."""
    for _ in ordered_map(fn, items, threads, in_flight):
        pass


def ordered_map(fn, items, threads=1, in_flight=None):
    """Yield ``fn(item)`` for each item, in input order, computed on ``threads`` threads.

    At most ``in_flight`` items (default 2 per thread) are read ahead of the consumer, so memory
    stays bounded however long ``items`` is. With one thread this is a plain loop.
    """
    if threads <= 1:
        for item in items:
            yield fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    in_flight = in_flight or 2 * threads
    pending = collections.deque()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
