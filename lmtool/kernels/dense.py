"""Dense building blocks shared by the recurrent and softmax kernels: BLAS gemm, activations, checks.

``gemm`` calls the CBLAS ``sgemm``/``dgemm`` of the OpenBLAS that NumPy's wheel bundles (it is faster on
small matrices than the one SciPy bundles, which ``np.dot`` inside Numba uses) and falls back to SciPy's
``cython_blas``. It is bound by symbol name (``llvmlite.binding.add_symbol``), so the kernels that call it
stay cacheable. Unlike ``np.dot`` it accumulates (``beta``), transposes without copies and accepts row
slices of larger arrays (any row stride, unit column stride).

``tanh``, ``sigmoid`` and ``exp`` are scalar functions that Numba inlines and vectorises: for float32
they are branch-free approximations within a few float32 ulps (a [13/6] rational for tanh, Cody–Waite
reduction and a degree-6 polynomial for exp); for float64 they are the libm functions, so gradient
checks in float64 see the exact functions. Kernels calling them need ``fastmath=True`` and
``error_model="numpy"`` (``KERNEL``) to vectorise, and a loop vectorises only when it runs over plain
1-D arrays, so per-row work lives in small functions of its own (``_forward_row`` and the like):
written inline over views of 3-D arrays, the LSTM's gate loop ran 6x slower.

Numba's on-disk cache is keyed on each function's own source file: after editing this module, delete
``lmtool/kernels/__pycache__`` so that the kernels that inline these helpers are rebuilt.
"""

import ctypes
import math
import os

import llvmlite.binding as llvm
import llvmlite.ir
import numpy as np
from numba import cfunc, njit, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic, overload

KERNEL = dict(cache=True, fastmath=True, error_model="numpy", nogil=True)
"""Options every float kernel is compiled with (nogil: callers may run kernels in threads)."""
HELPER = dict(KERNEL, inline="always")
"""Options of a float function that kernels call and LLVM may not inline (a loop over rows, a
softmax block): Numba inlines it into each caller. Otherwise Numba links a copy of it into the
caller's module, where it is optimised again and fast math may sum or fuse in another order; the
process that compiles the caller calls the callee's own code, later processes load the caller's
copy from the cache, and the first run of a command after installing gave other floats (and model
bytes) than the next ones with the same seed (``tests/neural/test_train.py``). The cells' small row
functions stay as they are: LLVM inlines them either way, and Numba's inlining stops their loops
from vectorising (the LSTM's forward pass was 1.6x slower)."""

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_I32, _I64, _PTR = types.int32, types.int64, types.voidptr


def _cblas_signature(real):
    return types.void(_I32, _I32, _I32, _I64, _I64, _I64, real, _PTR, _I64, _PTR, _I64, real, _PTR, _I64)


def _numpy_openblas():
    """Addresses of CBLAS s/dgemm in the OpenBLAS bundled with NumPy's wheel, or None."""
    from ..threads import numpy_openblas

    try:
        lib = numpy_openblas()
        return tuple(ctypes.cast(getattr(lib, f"scipy_cblas_{p}gemm64_"), ctypes.c_void_p).value for p in "sd")
    except AttributeError:  # no library (None), or one without these entry points
        return None


def _scipy_fallback():
    """CBLAS-shaped wrappers around SciPy's Fortran s/dgemm (LP64), compiled as C callbacks."""
    fortran = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)
    addresses = []
    for prefix, real, dtype in (("s", types.float32, np.float32), ("d", types.float64, np.float64)):
        fn = fortran(get_cython_function_address("scipy.linalg.cython_blas", prefix + "gemm"))
        compiled = cfunc(_cblas_signature(real))(_fortran_adapter(fn, dtype))
        _scipy_fallback.keep.append((fn, compiled))
        addresses.append(compiled.address)
    return tuple(addresses)


def _fortran_adapter(fn, dtype):
    """A CBLAS-signature function that calls the Fortran gemm ``fn`` (scalars passed by pointer)."""
    def adapter(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        # Row-major C = op(A) op(B) is column-major C' = op(B)' op(A)'.
        ints = np.empty(6, np.int32)
        ints[0] = n
        ints[1] = m
        ints[2] = k
        ints[3] = ldb
        ints[4] = lda
        ints[5] = ldc
        chars = np.empty(2, np.uint8)
        chars[0] = 84 if tb == _TRANS else 78
        chars[1] = 84 if ta == _TRANS else 78
        scalars = np.empty(2, dtype)
        scalars[0] = alpha
        scalars[1] = beta
        fn(chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes,
           scalars[0:].ctypes, b, ints[3:].ctypes, a, ints[4:].ctypes, scalars[1:].ctypes, c,
           ints[5:].ctypes)
    return adapter


_scipy_fallback.keep = []
_ADDRESSES = None if os.environ.get("LMTOOL_BLAS") == "scipy" else _numpy_openblas()
BLAS_BACKEND = "numpy-openblas64" if _ADDRESSES else "scipy-cython-blas"
if _ADDRESSES is None:
    _ADDRESSES = _scipy_fallback()
llvm.add_symbol("lmtool_cblas_sgemm", _ADDRESSES[0])
llvm.add_symbol("lmtool_cblas_dgemm", _ADDRESSES[1])
_sgemm = types.ExternalFunction("lmtool_cblas_sgemm", _cblas_signature(types.float32))
_dgemm = types.ExternalFunction("lmtool_cblas_dgemm", _cblas_signature(types.float64))


@njit(cache=True, nogil=True)
def gemm(trans_a, trans_b, alpha, a, b, beta, c):
    """c = alpha * op(a) @ op(b) + beta * c, through BLAS; op transposes when its flag is set.

    a: float[m, k] (or [k, m] if trans_a); b: float[k, n] (or [n, k] if trans_b); c: float[m, n].
    All three share one dtype (float32 or float64) and have unit stride along their last axis; their
    row strides may be anything (row slices of bigger arrays are fine). Shapes are not checked here.
    """
    m, n = c.shape
    if m == 0 or n == 0:
        return
    k = a.shape[0] if trans_a else a.shape[1]
    if k == 0:
        if beta != 1.0:
            c *= beta
        return
    lda = a.strides[0] // a.itemsize
    ldb = b.strides[0] // b.itemsize
    ldc = c.strides[0] // c.itemsize
    ta = _TRANS if trans_a else _NO_TRANS
    tb = _TRANS if trans_b else _NO_TRANS
    if c.itemsize == 4:
        _sgemm(_ROW_MAJOR, ta, tb, m, n, k, np.float32(alpha), a.ctypes, max(lda, 1), b.ctypes,
               max(ldb, 1), np.float32(beta), c.ctypes, max(ldc, 1))
    else:
        _dgemm(_ROW_MAJOR, ta, tb, m, n, k, np.float64(alpha), a.ctypes, max(lda, 1), b.ctypes,
               max(ldb, 1), np.float64(beta), c.ctypes, max(ldc, 1))


STEP_ROWS = 64
STEP_K_BLOCK = 80


@njit(cache=True, nogil=True)
def step_product(a, b, beta, c):
    """c = a @ b + beta * c for the per-step products of a recurrence, which have few rows (a batch).

    With at most ``STEP_ROWS`` rows, k is cut into even blocks of at most ``STEP_K_BLOCK``: OpenBLAS
    runs a (10 x 200) @ (200 x 800) product 1.6x faster that way, and (10 x 800) @ (800 x 200) 2.2x
    (measured on a 2-core Xeon; 20 rows gain 1.1x and 1.4x), which is what ``--threads`` leaves each
    thread's shard of a batch. Larger products go to ``gemm`` whole.
    """
    m, k = a.shape
    if m > STEP_ROWS or k <= STEP_K_BLOCK:
        gemm(False, False, 1.0, a, b, beta, c)
        return
    blocks = -(-k // STEP_K_BLOCK)
    size = -(-k // blocks)
    for lo in range(0, k, size):
        gemm(False, False, 1.0, a[:, lo:lo + size], b[lo:lo + size], beta if lo == 0 else 1.0, c)


# ---------------------------------------------------------------------------------------------------
# Scalar activations: float32 approximations that vectorise, exact libm for float64.

def tanh(x):
    """Hyperbolic tangent (float32: rational approximation, |error| < 3e-7 relative)."""
    return math.tanh(x)


def exp(x):
    """Exponential (float32: Cody–Waite + polynomial, relative error < 2e-7; clamped to [-87, 88])."""
    return math.exp(x)


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x))."""
    return 1.0 / (1.0 + math.exp(-x))


@intrinsic
def fmax(typingctx, a, b):
    """The larger of two floats of one type (LLVM's maxnum). A running maximum written with it
    vectorises; with ``max``, which Numba compiles with a branch for NaN, it does not: the maximum
    of a softmax row was 3x slower (11.6 against 3.9 ms over 700 rows of 12,388 logits)."""
    if a != b or a not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        real = context.get_value_type(a)
        name = "llvm.maxnum.f32" if a == types.float32 else "llvm.maxnum.f64"
        fn = cgutils.get_or_insert_function(builder.module, llvmlite.ir.FunctionType(real, [real, real]), name)
        return builder.call(fn, args)
    return a(a, b), codegen


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret the bits of an int32 as a float32 (a no-op the vectoriser understands)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return types.float32(types.int32), codegen


_F = np.float32
_TANH_CLAMP = _F(7.90531110763549805)
_TP = tuple(_F(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                            5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                            4.89352455891786e-03))
_TQ = tuple(_F(v) for v in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                            4.89352518554385e-03))
_EP = tuple(_F(v) for v in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                            1.6666665459e-1, 5.0000001201e-1))
_LOG2E, _LN2_HI, _LN2_LO = _F(1.44269504088896341), _F(0.693359375), _F(-2.12194440e-4)
_EXP_LO, _EXP_HI, _HALF, _ONE = _F(-87.0), _F(88.0), _F(0.5), _F(1.0)


def _tanh32(x):
    v = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = v * v
    p = _TP[0]
    p = p * x2 + _TP[1]
    p = p * x2 + _TP[2]
    p = p * x2 + _TP[3]
    p = p * x2 + _TP[4]
    p = p * x2 + _TP[5]
    p = p * x2 + _TP[6]
    q = _TQ[0]
    q = q * x2 + _TQ[1]
    q = q * x2 + _TQ[2]
    q = q * x2 + _TQ[3]
    return p * v / q


def _exp32(x):
    v = min(max(x, _EXP_LO), _EXP_HI)
    n = np.floor(v * _LOG2E + _HALF)
    r = v - n * _LN2_HI - n * _LN2_LO
    p = _EP[0]
    p = p * r + _EP[1]
    p = p * r + _EP[2]
    p = p * r + _EP[3]
    p = p * r + _EP[4]
    p = p * r + _EP[5]
    p = p * (r * r) + r + _ONE
    return p * _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))


@overload(tanh, inline="always", jit_options=KERNEL)
def _tanh_overload(x):
    if x == types.float32:
        return _tanh32
    return lambda x: math.tanh(x)


@overload(exp, inline="always", jit_options=KERNEL)
def _exp_overload(x):
    if x == types.float32:
        return _exp32
    return lambda x: math.exp(x)


@overload(sigmoid, inline="always", jit_options=KERNEL)
def _sigmoid_overload(x):
    if x == types.float32:
        return lambda x: _ONE / (_ONE + exp(-x))
    return lambda x: 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------------------------------------------
# Rows and masks.

@njit(**KERNEL)
def gather_rows(table, ids, out):
    """out[k] = table[ids[k]], or zeros where ids[k] < 0 (padding): an embedding lookup.

    table: float[V, E]; ids: int32[N]; out: float[N, E].
    """
    for k in range(ids.shape[0]):
        i = ids[k]
        if i < 0:
            out[k, :] = 0.0
        else:
            out[k, :] = table[i, :]


@njit(**KERNEL)
def scatter_add_rows(grad_out, ids, grad_table):
    """grad_table[ids[k]] += grad_out[k] for ids[k] >= 0: the embedding lookup's backward pass.

    grad_out: float[N, E]; ids: int32[N]; grad_table: float[V, E] (accumulated).
    """
    for k in range(ids.shape[0]):
        i = ids[k]
        if i >= 0:
            grad_table[i, :] += grad_out[k, :]


@njit(**KERNEL)
def masked_rows(a, flags, scratch):
    """``a`` with the rows flagged in ``flags`` zeroed: ``a`` itself if none is, else a copy in scratch.

    a, scratch: float[B, H]; flags: bool[B]. Used for the state entering a step with resets.
    """
    if not flags.any():
        return a
    scratch[:] = a
    for b in range(flags.shape[0]):
        if flags[b]:
            scratch[b, :] = 0.0
    return scratch


@njit(**KERNEL)
def add_product_unmasked(out, a, b, flags, scratch):
    """out += a @ b on the rows not flagged: the recurrent gradient dh_{t-1} += da_t W' with resets.

    out, scratch: float[B, H]; a: float[B, G]; b: float[G, H] (W' made contiguous, which BLAS
    runs ~15% faster than a transposed W on these shapes); flags: bool[B].
    """
    if not flags.any():
        step_product(a, b, 1.0, out)
        return
    step_product(a, b, 0.0, scratch)
    for r in range(flags.shape[0]):
        if not flags[r]:
            out[r, :] += scratch[r, :]


@njit(**KERNEL)
def dropout_mask(bits, threshold, keep, mask):
    """Inverted-dropout mask from 16-bit random numbers: mask = keep where bits >= threshold, else 0.

    bits: uint16[n] uniform; threshold: round(p * 65536), so a unit is dropped with probability p
    (to 2^-16); keep: 1 / (1 - p), so that E[mask] = 1; mask: float[n] written.
    """
    k = mask.dtype.type(keep)
    z = mask.dtype.type(0.0)
    for i in range(mask.shape[0]):
        mask[i] = k if bits[i] >= threshold else z


@njit(**KERNEL)
def multiply(a, b, out):
    """out = a * b elementwise. a, b, out: float[n] (out may alias a or b)."""
    for k in range(a.shape[0]):
        out[k] = a[k] * b[k]


# ---------------------------------------------------------------------------------------------------
# Checks for the public wrappers.

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check(name, a, shape, dtype):
    """Raise ValueError unless ``a`` is a C-contiguous ndarray of ``shape`` and ``dtype``."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, found {type(a).__name__}")
    if a.shape != tuple(shape) or a.dtype != dtype:
        raise ValueError(f"{name}: expected {np.dtype(dtype).name}{list(shape)}, "
                         f"found {a.dtype.name}{list(a.shape)}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array; pass np.ascontiguousarray({name})")


def check_segment(x, p, ws, reset, param_shapes):
    """Check what every cell's forward/backward takes (see ``lmtool.kernels.lstm``); (T, B, I, H, dtype)."""
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.dtype not in FLOATS:
        raise ValueError(f"x: expected float32 or float64 [T, B, I], found "
                         f"{getattr(x, 'dtype', type(x))}{list(getattr(x, 'shape', ()))}")
    T, B, I = x.shape
    H = ws["h"].shape[2]
    check("x", x, (T, B, I), x.dtype)
    for name, shape in param_shapes(I, H).items():
        check(name, p[name], shape, x.dtype)
    check("reset", reset, (T, B), np.bool_)
    check("h", ws["h"], (T + 1, B, H), x.dtype)
    return T, B, I, H, x.dtype


def check_grads(p, g, dh, dx, T, B, I, H, dtype):
    """Check backward's gradient arguments against the forward ones."""
    check("dh", dh, (T, B, H), dtype)
    check("dx", dx, (T, B, I), dtype)
    for name, a in p.items():
        check("grad " + name, g[name], a.shape, dtype)
