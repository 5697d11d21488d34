"""NumPy kernels of the backend: BLAS ger, operand layout, thread pools, random bits.

The NumPy implementations behind ``linea.backend``'s named functions that only
NumPy (and SciPy's BLAS) can do fast.
"""
from __future__ import annotations

import numpy as np

__all__ = ["new_bit_generator", "set_num_threads", "get_num_threads", "outer", "owner",
           "blas_ready"]


def new_bit_generator(seed: int | None = None) -> np.random.Generator:
    """A fresh PCG64 random generator (never NumPy's global one)."""
    return np.random.Generator(np.random.PCG64(seed))


def outer(a, b):
    """a ⊗ b as a column-major (len(a), len(b)) array.

    A rank-1 product is what a weight gradient is at batch size 1. NumPy's
    broadcasting multiply and its matmul with an inner size of 1 both miss BLAS
    (85 µs and 380 µs for 512 × 512 on the reference machine); BLAS ``ger`` into
    a zeroed buffer takes 30 µs.
    """
    if a.dtype == b.dtype and a.dtype in (np.float32, np.float64) and a.size and b.size:
        from scipy.linalg import blas

        ger = blas.sger if a.dtype == np.float32 else blas.dger
        buffer = np.zeros((a.size, b.size), a.dtype, order="F")
        return ger(1.0, a, b, a=buffer, overwrite_a=1)
    return np.asfortranarray(np.multiply.outer(a, b))


def blas_ready(array):
    """``array`` as an operand BLAS takes: itself where it is C- or F-contiguous, else a copy.

    Gradients of sum/mean/expand are stride-0 broadcast views; NumPy's matmul on
    such a view runs its own loop instead of BLAS (280 µs against 28 µs for a
    (1, 512) × (512, 512) product), and a copy of the view costs under a microsecond.
    """
    if not isinstance(array, np.ndarray):
        return array  # other libraries lay out their own operands
    flags = array.flags
    if flags.c_contiguous or flags.f_contiguous:
        return array
    return np.ascontiguousarray(array)


def owner(array):
    """The array that owns ``array``'s memory (itself unless it is a view)."""
    if not isinstance(array, np.ndarray):
        return array
    while array.base is not None and isinstance(array.base, np.ndarray):
        array = array.base
    return array


_thread_limiter = None


def set_num_threads(num_threads: int) -> None:
    """Limit the BLAS thread pools (and OpenMP ones) to ``num_threads``."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"set_num_threads expects a positive int, got {num_threads!r}")
    from threadpoolctl import threadpool_limits

    from linea.backend import _int8

    _int8.set_threads(num_threads)  # the int8 kernel's own threads follow the same limit
    global _thread_limiter
    # threadpool_limits applies the limit when constructed and keeps it until
    # restore_original_limits(); keep the object so it is not collected.
    _thread_limiter = threadpool_limits(limits=num_threads)


def get_num_threads() -> int:
    """The number of threads the BLAS library will use for a matmul."""
    from threadpoolctl import threadpool_info

    blas = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    if blas:
        return int(blas[0])
    import os

    return os.cpu_count() or 1
