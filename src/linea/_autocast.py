"""``linea.autocast``: mixed precision on the CPU, with PyTorch's CPU autocast semantics.

Inside ``with linea.autocast("cpu", dtype=linea.bfloat16):`` each op listed below casts
its floating-point tensor inputs on entry, through a recorded cast (so gradients flow back
to float32 master weights in their own dtype):

- ``LOW_PRECISION`` ops (linear, dense, matmul, conv2d) run in the autocast dtype: inputs,
  weights and bias are rounded to it, the product accumulates in float32 and the output
  is in the autocast dtype;
- ``FLOAT32`` ops (the losses) run in float32, whatever the dtype of what reaches them;
- every other op runs in the dtype of its inputs. softmax, log_softmax and layer_norm of
  bfloat16/float16 tensors compute in float32 and round their output once, inside or
  outside autocast — what PyTorch 2.13's CPU kernels do (its CPU autocast leaves them in
  the low dtype, unlike its CUDA autocast; measured against torch, see the tests).

This table is the one list of autocast's ops; ``cast_for(op, *tensors)`` is the one
place that applies it. Outside autocast it costs one context-variable read.
"""
from __future__ import annotations

import contextvars
import functools

from linea import _dtype

__all__ = ["autocast", "LOW_PRECISION", "FLOAT32", "cast_for", "autocast_dtype"]

LOW_PRECISION = frozenset({"linear", "dense", "matmul", "conv2d"})
FLOAT32 = frozenset({"cross_entropy", "nll_loss",
                     "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                     "huber_loss", "smooth_l1_loss"})

_STATE = contextvars.ContextVar("linea_autocast", default=None)  # the dtype, or None: off
autocast_dtype = _STATE.get
#: Inside the outermost autocast with cache_enabled: casts of leaf tensors that require grad
#: (parameters), as PyTorch caches them, keyed by tensor and checked against its version
#: counter (an in-place update makes a fresh cast), plus their float32 widenings.
_CACHE = contextvars.ContextVar("linea_autocast_cache", default=None)


def _cast_cached(tensor, target, cache):
    from linea._autograd import grad_enabled
    from linea._ops_shape import cast

    if cache is None or tensor.grad_fn is not None or not tensor.requires_grad:
        return cast(tensor, target)
    key = (id(tensor), target, grad_enabled())
    hit = cache.get(key)
    if hit is not None and hit[0] is tensor and hit[1] == tensor._version:
        return hit[2]
    result = cast(tensor, target)
    cache[key] = (tensor, tensor._version, result)
    cache[("wide", id(result._data))] = [result._data, None]
    return result


def widened(array):
    """``array`` (bfloat16/float16) as float32, exactly; computed once per cached weight cast."""
    cache = _CACHE.get()
    entry = cache.get(("wide", id(array))) if cache is not None else None
    if entry is None or entry[0] is not array:
        return array.astype(_dtype.float32.numpy)
    if entry[1] is None:
        entry[1] = array.astype(_dtype.float32.numpy)
    return entry[1]


def cast_for(op: str, *tensors):
    """``tensors`` as ``op`` takes them under the current autocast (unchanged outside it)."""
    low = _STATE.get()
    if low is None:
        return tensors
    from linea._tensor import Tensor

    target = low if op in LOW_PRECISION else _dtype.float32 if op in FLOAT32 else None
    if target is None:
        return tensors
    # PyTorch's eligibility: floating-point tensors other than float64 are cast.
    cache = _CACHE.get()
    return tuple(_cast_cached(t, target, cache) if isinstance(t, Tensor) and t.dtype.is_floating_point
                 and t.dtype not in (target, _dtype.float64) else t for t in tensors)


class autocast:
    """Run the ops of the autocast table in ``dtype`` (bfloat16 or float16) on the CPU.

    ``with linea.autocast("cpu"):`` or ``@linea.autocast("cpu", dtype=linea.float16)``;
    ``enabled=False`` turns it off inside an outer autocast. As in PyTorch, float64
    tensors are left in float64 by the low-precision ops.
    """

    def __init__(self, device_type: str = "cpu", dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if device_type != "cpu":
            raise ValueError(f"linea.autocast supports device_type='cpu', got {device_type!r}")
        dtype = _dtype.bfloat16 if dtype is None else _dtype.as_dtype(dtype)
        if dtype not in (_dtype.bfloat16, _dtype.float16):
            raise ValueError(f"autocast dtype must be linea.bfloat16 or linea.float16, got {dtype}")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)
        self.cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._tokens = []

    def __enter__(self):
        cache = None
        if self.enabled and self.cache_enabled and _CACHE.get() is None:
            cache = _CACHE.set({})  # the outermost autocast owns the cast cache
        self._tokens.append((_STATE.set(self.fast_dtype if self.enabled else None), cache))
        return self

    def __exit__(self, *exc_info) -> None:
        state, cache = self._tokens.pop()
        _STATE.reset(state)
        if cache is not None:
            _CACHE.reset(cache)

    def __call__(self, function):
        @functools.wraps(function)
        def with_autocast(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return function(*args, **kwargs)

        return with_autocast
