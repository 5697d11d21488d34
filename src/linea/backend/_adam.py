"""The one-pass Adam step (C, optional) and how to tell whether it runs.

``adam_step`` updates a float32 or float64 NumPy parameter and its two moment arrays in
place, with exactly the operations of the NumPy path in ``linea.optim._adam`` (so the
results are bit-identical) but in one pass over memory. It returns False, touching
nothing, where it does not apply (no C kernel, another array library, another dtype,
non-contiguous or mixed arrays, or ``LINEA_ADAM_KERNEL=numpy``); the caller then runs
the NumPy path.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["adam_step", "kernel_info"]

try:
    from linea.backend import _adam_kernel as _native
    _NATIVE_ERROR = None
except ImportError as error:  # no compiler at install time: the NumPy path runs
    _native = None
    _NATIVE_ERROR = str(error)

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _enabled() -> bool:
    return _native is not None and os.environ.get("LINEA_ADAM_KERNEL", "").lower() != "numpy"


def kernel_info() -> dict:
    """Which Adam path runs here: {"path": "c" or "numpy", "reason": why not C, if not}."""
    if _native is None:
        return {"path": "numpy", "reason": f"the C kernel was not built ({_NATIVE_ERROR})"}
    if not _enabled():
        return {"path": "numpy", "reason": "LINEA_ADAM_KERNEL=numpy"}
    return {"path": "c", "reason": ""}


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, w1: float, beta2: float,
              bias_correction2_sqrt: float, eps: float, step_size: float) -> bool:
    """One Adam update in C if it applies (see the module docstring); True if it ran."""
    if not _enabled():
        return False
    arrays = (param, grad, exp_avg, exp_avg_sq) + ((max_exp_avg_sq,) if max_exp_avg_sq is not None else ())
    dtype = param.dtype if type(param) is np.ndarray else None
    if dtype not in _DTYPES:
        return False
    for array in arrays:
        if type(array) is not np.ndarray or array.dtype != dtype or array.shape != param.shape \
                or not array.flags.c_contiguous:
            return False
    # may_share_memory only compares bounds (cheap on this per-step path); an overlap, real or
    # not, leaves the update to the NumPy path, which gives the same bits.
    if not param.flags.writeable or np.may_share_memory(param, grad):
        return False
    _native.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, float(w1), float(beta2),
                      float(1 - beta2), float(bias_correction2_sqrt), float(eps), float(-step_size))
    return True
