"""torch's vectorised ``normal_`` (16 values and more): Box–Muller on blocks of 16 uniforms.

For a block ``u`` of 16 uniforms in [0, 1) and j < 8, with r = √(−2·log(1 − u[j])) and
θ = 2π·u[j + 8]:  ``out[j] = fma(r·cos θ, std, mean)``, ``out[j + 8] = fma(r·sin θ, std, mean)``.

float32 reproduces torch's AVX2 routine (Cephes float polynomials for log and sincos, with
the multiply-adds GCC fuses there; see ``_torch_random_kernel.c``); float64 uses libm's
log, cos and sin, as torch's scalar template does. ``box_muller(values, mean, std)``
runs the C kernel where it was built, else the NumPy path below, which performs the same
float32 operations one array at a time — each fused multiply-add emulated exactly
(``fma32``) — and gives the same bits, only slower. float64 without the kernel is a
Python loop (libm through ``math``; the final fused multiply-add exact through
``fractions``).
"""
from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np

__all__ = ["box_muller", "fisher_yates", "fma32", "uniform_float32", "kernel_info"]

try:
    from linea.backend import _torch_random_kernel as _native
    _NATIVE_ERROR = None
except ImportError as error:  # no compiler at install time: the NumPy path runs
    _native = None
    _NATIVE_ERROR = str(error)


def _enabled() -> bool:
    return _native is not None and os.environ.get("LINEA_RANDOM_KERNEL", "").lower() != "numpy"


def kernel_info() -> dict:
    """Which path torch-compatible normal_ and randperm take here: {"path", "fma", "reason"}."""
    if _native is None:
        return {"path": "numpy", "fma": False, "reason": f"the C kernel was not built ({_NATIVE_ERROR})"}
    if not _enabled():
        return {"path": "numpy", "fma": False, "reason": "LINEA_RANDOM_KERNEL=numpy"}
    return {"path": "c", "fma": bool(_native.has_fma()), "reason": ""}


def fma32(a, b, c) -> np.ndarray:
    """float32 ``a·b + c`` with one rounding, as a fused multiply-add computes it.

    The product of two float32 values is exact in float64; the sum is rounded to odd
    (TwoSum gives the error; a nonzero error on an even result moves it one ulp towards
    the exact value), and a round-to-odd float64 rounds to float32 as the exact value
    would (53 ≥ 2·24 + 2).
    """
    product = np.asarray(a, np.float32).astype(np.float64) * np.asarray(b, np.float32).astype(np.float64)
    addend = np.asarray(c, np.float32).astype(np.float64)
    total = product + addend
    virtual = total - product
    error = (product - (total - virtual)) + (addend - virtual)
    even = (total.view(np.uint64) & np.uint64(1)) == 0
    total = np.where((error != 0) & even, np.nextafter(total, np.where(error > 0, np.inf, -np.inf)), total)
    return total.astype(np.float32)


def _bits(values) -> np.ndarray:
    return np.asarray(values, np.float32).view(np.uint32)


def _floats(bits) -> np.ndarray:
    return np.asarray(bits, np.uint32).view(np.float32)


def _log(x: np.ndarray) -> np.ndarray:
    """Cephes logf for x in (0, 1], the operations of the C kernel's ``cephes_log``."""
    x = np.maximum(x, _floats(np.uint32(0x00800000)))
    exponent = (x.view(np.uint32) >> np.uint32(23)).astype(np.int32) - np.int32(0x7F)
    x = _floats((x.view(np.uint32) & np.uint32(~0x7F800000 & 0xFFFFFFFF)) | _bits(np.float32(0.5)))
    e = exponent.astype(np.float32) + np.float32(1.0)
    below = x < np.float32(0.707106781186547524)
    kept = np.where(below, x, np.float32(0.0))
    x = x - np.float32(1.0)
    e = e - np.where(below, np.float32(1.0), np.float32(0.0))
    x = x + kept
    z = x * x
    y = np.full_like(x, np.float32(7.0376836292E-2))
    for coefficient in (-1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
                        -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1):
        y = fma32(y, x, np.float32(coefficient))
    y = y * x
    y = fma32(y, z, e * np.float32(-2.12194440e-4))
    y = fma32(-z, np.float32(0.5), y)
    return fma32(e, np.float32(0.693359375), x + y)


def _sincos(x: np.ndarray):
    """Cephes sincosf, the operations of the C kernel's ``cephes_sincos``."""
    sign_sin = x.view(np.uint32) & np.uint32(0x80000000)
    x = _floats(x.view(np.uint32) & np.uint32(0x7FFFFFFF))
    octant = (x * np.float32(1.27323954473516)).astype(np.int32)
    octant = (octant + 1) & ~np.int32(1)
    y = octant.astype(np.float32)
    swap_sin = (octant & 4).astype(np.uint32) << np.uint32(29)
    sine_polynomial = (octant & 2) == 0
    for part in (-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8):
        x = fma32(y, np.float32(part), x)
    sign_cos = (~(octant - 2) & 4).astype(np.uint32) << np.uint32(29)
    sign_sin = sign_sin ^ swap_sin
    z = x * x
    c = np.full_like(x, np.float32(2.443315711809948E-005))
    c = fma32(c, z, np.float32(-1.388731625493765E-003))
    c = fma32(c, z, np.float32(4.166664568298827E-002))
    c = c * z
    c = fma32(c, z, -(z * np.float32(0.5)))
    c = c + np.float32(1.0)
    s = np.full_like(x, np.float32(-1.9515295891E-4))
    s = fma32(s, z, np.float32(8.3321608736E-3))
    s = fma32(s, z, np.float32(-1.6666654611E-1))
    s = s * z
    s = fma32(s, x, x)
    sin_from_s = np.where(sine_polynomial, s, np.float32(0.0))
    sin_from_c = np.where(sine_polynomial, np.float32(0.0), c)
    s = s - sin_from_s
    c = c - sin_from_c
    return _floats(_bits(sin_from_c + sin_from_s) ^ sign_sin), _floats(_bits(c + s) ^ sign_cos)


def _box_muller_float32(values: np.ndarray, mean: float, std: float) -> None:
    blocks = values[:values.size // 16 * 16].reshape(-1, 16)
    radius = np.sqrt(np.float32(-2.0) * _log(np.float32(1.0) - blocks[:, :8]))
    sine, cosine = _sincos(np.float32(2.0 * math.pi) * blocks[:, 8:])
    mean32, std32 = np.float32(mean), np.float32(std)
    blocks[:, :8] = fma32(radius * cosine, std32, mean32)
    blocks[:, 8:] = fma32(radius * sine, std32, mean32)


def _box_muller_float64(values: np.ndarray, mean: float, std: float) -> None:
    mean_exact, std_exact = Fraction(mean), Fraction(std)
    for start in range(0, values.size // 16 * 16, 16):
        block = values[start:start + 16].tolist()
        for j in range(8):
            radius = math.sqrt(-2.0 * math.log(1.0 - block[j]))
            theta = 2.0 * math.pi * block[j + 8]
            block[j] = float(Fraction(radius * math.cos(theta)) * std_exact + mean_exact)
            block[j + 8] = float(Fraction(radius * math.sin(theta)) * std_exact + mean_exact)
        values[start:start + 16] = block


def box_muller(values: np.ndarray, mean: float, std: float) -> None:
    """Blocks of 16 uniforms in the contiguous float32/float64 ``values`` become torch's normals, in place."""
    if _enabled():
        _native.box_muller(values, float(mean), float(std))
    elif values.dtype == np.float32:
        _box_muller_float32(values, mean, std)
    else:
        _box_muller_float64(values, mean, std)


def uniform_float32(bits: np.ndarray, low: float, high: float) -> np.ndarray:
    """torch's float32 ``uniform_(low, high)`` from its 32-bit draws ``bits`` (uint32).

    ``x = (r & 0xFFFFFF)·2⁻²⁴`` (exact), ``fma(x, high − low, low)`` in float32; a value that
    rounds up to ``high`` becomes ``low``.
    """
    low32, high32 = np.float32(low), np.float32(high)
    if _enabled():
        values = np.empty(bits.shape, np.float32)
        _native.uniform_float(np.ascontiguousarray(bits, np.uint32), values, float(low32), float(high32))
        return values
    unit = (bits & np.uint32(0xFFFFFF)).astype(np.float32) * np.float32(2.0 ** -24)
    values = fma32(unit, high32 - low32, low32)
    values[values == high32] = low32
    return values


def fisher_yates(order: np.ndarray, draws: np.ndarray) -> None:
    """torch's randperm swaps, in place: for i < len(draws), swap ``order[i]`` and
    ``order[i + draws[i] % (n − i)]`` (order int64 of length n, draws uint32)."""
    if _enabled():
        _native.fisher_yates(order, np.ascontiguousarray(draws, np.uint32))
        return
    positions = np.arange(draws.size, dtype=np.int64)
    targets = draws.astype(np.int64) % (order.size - positions) + positions
    values = order.tolist()
    for i, j in enumerate(targets.tolist()):
        values[i], values[j] = values[j], values[i]
    order[:] = values
