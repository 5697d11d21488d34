"""The int8 matrix product behind quantized Linear layers: C paths and the NumPy fallback.

Scheme (Keras 3's ``int8``, symmetric, per output channel and per input row)::

    w_scale[n] = 127 / (max_k |W[n, k]| + 1e-7)     wq = clip(round(W · w_scale), ±127)  (int8)
    x_scale[m] = 127 / (max_k |x[m, k]| + 1e-7)     xq = clip(round(x · x_scale), ±127)
    acc[m, n]  = Σ_k xq[m, k] · wq[n, k]             exact, int32
    y[m, n]    = float32(acc[m, n]) / (w_scale[n] · x_scale[m]) + bias[n]

Rounding is half to even; a row holding inf or NaN gives NaN. Every path computes the
same accumulators and the same float32 operations, so outputs are bit-identical
whichever path runs. The C extension (``_int8_kernel.c``) is optional: without it,
or with ``LINEA_INT8_KERNEL=numpy``, the NumPy fallback runs float32 BLAS on the int8
values in K-blocks of at most 1040, where every partial sum stays below 2²⁴ and is
therefore exact, and adds the blocks in int64.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["PackedWeight", "quantize_weight", "quantize_rows", "kernel_info", "kernel_paths",
           "MAX_IN_FEATURES", "EXACT_BLOCK", "set_threads", "get_threads"]

#: int32 accumulation is exact while K · 127² < 2³¹.
MAX_IN_FEATURES = (2 ** 31 - 1) // (127 * 127)
#: The fallback's K-block: 127² · K < 2²⁴, so float32 partial sums are exact integers.
EXACT_BLOCK = (2 ** 24 - 1) // (127 * 127)
_EPSILON = np.float32(1e-7)

try:
    from linea.backend import _int8_kernel as _native
    _NATIVE_ERROR = None
except ImportError as error:  # no compiler at install time: the fallback runs
    _native = None
    _NATIVE_ERROR = str(error)
#: {path name: kernel id} of the C paths this CPU runs, best first (read once: the CPU stays).
_NATIVE_PATHS = dict(_native.available_paths()) if _native is not None else {}


#: Threads the C kernel may use for one product (it starts them only for ≥ 2²⁴ multiply-adds
#: each); the CPUs this process may run on, until linea.set_num_threads says otherwise.
_THREADS = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)]


def set_threads(threads: int) -> None:
    _THREADS[0] = max(1, int(threads))


def get_threads() -> int:
    return _THREADS[0]


def kernel_paths() -> list:
    """Names of the paths this machine can run, best first; "numpy" is always last."""
    return (list(_NATIVE_PATHS) if _native is not None else []) + ["numpy"]


def _chosen_path(path: str | None) -> str:
    paths = kernel_paths()
    wanted = path or os.environ.get("LINEA_INT8_KERNEL") or paths[0]
    if wanted not in paths:
        raise ValueError(f"int8 kernel path {wanted!r} is not available here; this machine runs "
                         f"{paths} (set LINEA_INT8_KERNEL to one of them, or unset it)")
    return wanted


def kernel_info() -> dict:
    """Which int8 path runs here and why: {"path", "available", "extension", "reason"}."""
    path = _chosen_path(None)
    threads = f"up to {_THREADS[0]} thread(s) for large products"
    if _native is None:
        reason = f"the C extension is not built ({_NATIVE_ERROR}); the exact NumPy fallback runs"
    elif os.environ.get("LINEA_INT8_KERNEL"):
        reason = f"forced by LINEA_INT8_KERNEL={os.environ['LINEA_INT8_KERNEL']}"
    else:
        reason = "the best path this CPU supports"
    return {"path": path, "available": kernel_paths(), "extension": _native is not None,
            "reason": reason, "threads": threads if _native is not None else "NumPy's BLAS threads"}


def _abs_max_scale(array, axis: int):
    """127 / (max |array| + 1e-7) along ``axis`` in float32 (Keras's AbsMaxQuantizer)."""
    amax = np.max(np.abs(array), axis=axis, keepdims=True) if array.shape[axis] else \
        np.zeros(array.shape[:axis] + (1,) + array.shape[axis + 1:], np.float32)
    return (np.float32(127) / (amax.astype(np.float32) + _EPSILON)).astype(np.float32)


def quantize_weight(weight):
    """(wq int8 (N, K), w_scale float32 (N,)) for a float (N, K) weight; per output channel."""
    weight = np.asarray(weight, dtype=np.float32)
    if not np.all(np.isfinite(weight)):
        raise ValueError("cannot quantize a weight holding inf or NaN; fix the float model first")
    scale = _abs_max_scale(weight, axis=1)
    quantized = np.clip(np.round(weight * scale), -127, 127).astype(np.int8)
    return quantized, scale[:, 0]


def quantize_rows(x):
    """(xq int8 (M, K), x_scale float32 (M,), finite bool (M,)) for float32 rows ``x``."""
    x = np.asarray(x, dtype=np.float32)
    finite = np.isfinite(x).all(axis=1)
    clean = np.where(finite[:, None], x, 0)  # rows holding inf/NaN quantize as zeros (and give NaN)
    scale = _abs_max_scale(clean, axis=1)
    quantized = np.clip(np.round(clean * scale), -127, 127).astype(np.int8)
    return quantized, scale[:, 0], finite


def _accumulate_numpy(xq, wq):
    """Σ_k xq[m, k]·wq[n, k] exactly: float32 BLAS per K-block (< 2²⁴), summed in int64."""
    total = np.zeros((xq.shape[0], wq.shape[0]), np.int64)
    for start in range(0, xq.shape[1], EXACT_BLOCK):
        block_x = xq[:, start:start + EXACT_BLOCK].astype(np.float32)
        block_w = wq[:, start:start + EXACT_BLOCK].astype(np.float32)
        total += (block_x @ block_w.T).astype(np.int64)
    return total.astype(np.int32)


class PackedWeight:
    """An int8 weight (N, K) with its per-channel scales, ready for the int8 product.

    With the C extension the weight is held only in the kernel's packed blocks;
    ``int8()`` unpacks a copy. ``nbytes`` counts what is held.
    """

    def __init__(self, quantized, scale):
        quantized = np.ascontiguousarray(quantized, dtype=np.int8)
        scale = np.ascontiguousarray(scale, dtype=np.float32)
        if quantized.ndim != 2 or scale.shape != quantized.shape[:1]:
            raise ValueError(f"an int8 weight is (out_features, in_features) with one scale per "
                             f"output channel; got weight {quantized.shape} and scale {scale.shape}")
        if quantized.shape[1] > MAX_IN_FEATURES:
            raise ValueError(f"in_features={quantized.shape[1]} is above {MAX_IN_FEATURES}, where "
                             f"int32 accumulation of int8 products could overflow")
        if np.any(quantized == -128):
            raise ValueError("int8 weights must lie in [-127, 127] (symmetric); found -128")
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("int8 weight scales must be finite and positive")
        self.shape = quantized.shape
        self.scale = scale
        self._packed = None
        self._quantized = None
        if _native is not None:
            self._packed = _native.Packed(quantized, scale, quantized.shape[0], quantized.shape[1])
        else:
            self._quantized = quantized
            self._quantized.flags.writeable = False

    @property
    def nbytes(self) -> int:
        if self._packed is not None:
            return self._packed.nbytes
        return self._quantized.nbytes + self.scale.nbytes

    def int8(self):
        """The (N, K) int8 weight, a fresh read-only array."""
        if self._packed is None:
            return self._quantized
        out = np.empty(self.shape, np.int8)
        self._packed.unpack(out)
        out.flags.writeable = False
        return out

    def matmul(self, x, bias=None, path: str | None = None):
        """y (M, N) float32 for float32 rows x (M, K): quantize, int8 product, rescale, bias."""
        path = _chosen_path(path)
        m = x.shape[0]
        if path != "numpy":
            out = np.empty((m, self.shape[0]), np.float32)
            self._packed.forward(x, out, m, bias, _NATIVE_PATHS[path], _THREADS[0])
            return out
        xq, x_scale, finite = quantize_rows(x)
        acc = _accumulate_numpy(xq, self.int8())
        y = acc.astype(np.float32) / (self.scale[None, :] * x_scale[:, None])
        if bias is not None:
            y += bias
        y[~finite] = np.nan
        return y

    def accumulate(self, xq, path: str | None = None):
        """The exact int32 accumulators Σ_k xq[m, k]·wq[n, k] for int8 rows ``xq`` (M, K)."""
        path = _chosen_path(path)
        xq = np.ascontiguousarray(xq, dtype=np.int8)
        if path == "numpy":
            return _accumulate_numpy(xq, self.int8())
        out = np.empty((xq.shape[0], self.shape[0]), np.int32)
        self._packed.accumulate(xq, out, xq.shape[0], _NATIVE_PATHS[path])
        return out
