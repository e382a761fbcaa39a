"""Numba kernels: the only package that imports numba. Pure functions over preallocated arrays.

Importing any kernel module defers Numba's BLAS check (``_defer_blas_check``) before a kernel runs.
"""


def _defer_blas_check():
    """Let Numba's first compilation or cache load skip importing ``scipy.linalg``.

    The first kernel a process runs loads Numba's registries, and ``numba.np.arraymath`` then checks
    for BLAS (for ``np.dot`` in jitted code) by importing ``scipy.linalg.cython_blas``, which runs
    SciPy's whole ``linalg`` package: about 40% of that first call (0.12-0.17 s of CPU here). No
    lmtool kernel calls ``np.dot`` (``kernels.dense.gemm`` binds BLAS itself), and a kernel that did
    would still find SciPy, imported when its BLAS functions are looked up at compilation. So the
    check is made to pass without the import. Nothing is changed once the registries are loaded.
    """
    import sys

    if "numba.np.arraymath" in sys.modules:
        return
    try:
        import numba.np.linalg as numba_linalg
    except ImportError:  # another Numba layout: leave it alone
        return
    if callable(getattr(numba_linalg, "ensure_blas", None)):
        numba_linalg.ensure_blas = _no_check


def _no_check():
    return None


_defer_blas_check()
