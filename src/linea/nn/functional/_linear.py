"""``linear``: y = x Wᵀ + b over the last dimension, with a fused gradient rule.

One fused node (rather than matmul + add) because it is measurably faster: the
input is flattened to 2-D once so every product is a single GEMM, the bias is
added in place into the GEMM's fresh output, and the backward pass is three
BLAS calls. ``tests/nn/test_functional_linear.py`` checks it against the
composed ops and finite differences.
"""
from __future__ import annotations

import math

from linea._autograd import LINEAR_NODE, grad_enabled, record
from linea.backend import (blas_ready, from_host, host_dtype, kind_of, namespace_of, outer, quiet,
                           space_of, xp)
from linea._dtype import is_floating
from linea._errors import DTypeError, ShapeError
from linea._tensor import Tensor
from linea._autocast import autocast_dtype, cast_for, widened

__all__ = ["linear", "dense"]

_make = Tensor._make
_matmul = xp.matmul
_ndarray = xp.ndarray
_FLOAT32 = xp.float32


def _name(kernel_layout: bool) -> str:
    return "dense()" if kernel_layout else "linear()"


def as_float_input(input, weight: Tensor, function: str) -> Tensor:
    """Check a layer input against the layer's weight; convert raw data to its dtype.

    linea Tensors are strict, as in PyTorch: an integer or bool tensor, or one
    of another float dtype, is an error. Raw data (NumPy arrays, lists,
    numbers) is converted to the weight's dtype, as Keras does.
    """
    if isinstance(input, Tensor):
        if kind_of(input._data) != "f" and not is_floating(input._data.dtype):
            raise DTypeError(
                f"{function} needs a floating-point input, got a tensor of dtype {input.dtype}; "
                f"convert it with x.float() (or x.to({weight.dtype}))"
            )
        if input._data.dtype != weight._data.dtype:
            raise DTypeError(
                f"{function} got an input of dtype {input.dtype} but its weight is "
                f"{weight.dtype}; convert the input (x.to({weight.dtype})) or the layer "
                f"(.to({input.dtype}))"
            )
        return input
    try:
        raw = xp.asarray(input)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{function} expects a linea.Tensor, a NumPy array or nested lists of numbers, "
            f"got {type(input).__name__}: {error}"
        ) from None
    if raw.dtype.kind not in "biuf" and not is_floating(raw.dtype):  # None, strings, objects
        raise TypeError(
            f"{function} expects numbers, got {type(input).__name__} holding {raw.dtype} values "
            f"(None, strings or objects are not converted); give a linea.Tensor, a NumPy array "
            f"or nested lists of numbers"
        )
    array = raw.astype(host_dtype(weight._data.dtype), copy=False)
    return _make(from_host(array) if type(weight._data) is not _ndarray else array)


def linear(input, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weightᵀ + bias.

    Shapes: input (*, in_features) → output (*, out_features); weight
    (out_features, in_features); bias (out_features,) or None. A 1-D input
    gives a 1-D output; zero-size dimensions give empty (or bias-only) results.
    """
    return _affine(input, weight, bias, kernel_layout=False)


def dense(input, kernel: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ kernel + bias — Keras's layout of the same map as ``linear``.

    Shapes: input (*, in) → output (*, units); kernel (in, units); bias (units,)
    or None. ``dense(x, K, b) == linear(x, Kᵀ, b)``, computed by the same fused node.
    """
    return _affine(input, kernel, bias, kernel_layout=True)


def affine_rows(x2, w_in_out, b, out=None):
    """x2 · W + b for rows x2 (N, in) and W (in, out), into ``out`` if given.

    The arithmetic of every Linear/Dense forward — eager and ``linea.compile``d alike,
    so the two are bitwise equal by construction.
    """
    out = _matmul(x2, w_in_out) if out is None else _matmul(x2, w_in_out, out=out)
    if b is not None:
        out += b
    return out


def affine_gradients(grad, x, x2, w_in_out, out_features: int, needs_x: bool, needs_w: bool,
                     needs_b: bool, kernel_layout: bool):
    """(grad_x, grad_w, grad_b) of y = x2·W + b: the rule of every Linear/Dense backward, eager
    and compiled alike. ``x`` is the input as given, ``x2`` its rows (N, in)."""
    space = space_of(grad)
    g2 = blas_ready(grad if grad.ndim == 2 else space.reshape(grad, (x2.shape[0], out_features)))
    grad_x = grad_w = grad_b = None
    if needs_x:
        grad_x = space.matmul(g2, w_in_out.T)
        if x.ndim != 2:
            grad_x = space.reshape(grad_x, x.shape)
    if needs_w:
        # xᵀg is the kernel's (in, out); its transpose, a free view, is the weight's
        # (out, in) — column-major, like the weight Linear stores.
        if x2.shape[0] == 1 and space is xp:  # NumPy's matmul with inner size 1 skips BLAS
            grad_in_out = outer(g2[0], x2[0]).T
        else:
            grad_in_out = space.matmul(x2.T, g2)
        grad_w = grad_in_out if kernel_layout else grad_in_out.T
    if needs_b:
        grad_b = g2.sum(axis=0) if space is xp else space.sum(g2, axis=0)  # the method: 1 µs less
    return grad_x, grad_w, grad_b


def _affine_any(x, w_in_out, b):
    """x · W + b in the namespace of a non-NumPy ``x`` (2-D rows; N-D through ``matmul``)."""
    out = namespace_of(x, w_in_out).matmul(x, w_in_out)
    return out if b is None else out + b


def _affine_low_precision(input, weight, bias, kernel_layout, x, w_in_out, b, out_features):
    """The affine node for float16/bfloat16 weights: float32 BLAS on the exactly widened values,
    the sum (bias included) rounded once to the weight's dtype, as PyTorch's CPU kernels do.

    NumPy has no BLAS for either type (its own loops are 8–80× slower than float32).
    The gradients are computed the same way and rounded once to their tensors' dtypes.
    """
    low = x.dtype
    lead = x.shape[:-1]
    x32 = x.reshape((math.prod(lead), x.shape[-1])).astype(_FLOAT32)
    w32 = widened(weight._data)  # once per autocast region for a cached weight cast
    w32 = w32 if kernel_layout else w32.T
    b32 = None if b is None else b.astype(_FLOAT32)
    out = affine_rows(x32, w32, b32).astype(low).reshape(lead + (out_features,))
    result = _make(out)
    if not grad_enabled():
        return result
    needs_x = input._requires_grad
    needs_w = weight._requires_grad
    needs_b = bias is not None and bias._requires_grad
    if needs_x or needs_w or needs_b:

        def backward(grad):  # the one gradient rule, in float32, each result rounded once
            g32 = grad.reshape((x32.shape[0], out_features)).astype(_FLOAT32)
            gradients = affine_gradients(g32, x, x32, w32, out_features, needs_x, needs_w,
                                         needs_b, kernel_layout)
            return tuple(None if g is None else g.astype(low) for g in gradients)

        record(result, "Dense" if kernel_layout else LINEAR_NODE, (input, weight, bias), backward,
               (weight._data,) * needs_x + (x,) * needs_w)
    return result


@quiet
def _affine(input, weight: Tensor, bias: Tensor | None, kernel_layout: bool) -> Tensor:
    """The one fused affine node behind ``linear`` (weight (out, in)) and ``dense`` (kernel (in, out))."""
    if autocast_dtype() is not None:  # round input, weight and bias to the autocast dtype
        input, weight, bias = cast_for("dense" if kernel_layout else "linear", input, weight, bias)
    w = weight._data
    # Fast path: a plain tensor of the weight's very dtype needs no conversion or dtype check.
    if input.__class__ is Tensor and input._data.dtype is w.dtype:
        x = input._data
    else:
        input = as_float_input(input, weight, "dense()" if kernel_layout else "linear()")
        x = input._data
        if type(x) is not type(w):
            namespace_of(x, w)  # two array libraries or devices: an error naming both
    if w.ndim != 2:
        expected = "(in, units)" if kernel_layout else "(out_features, in_features)"
        raise ShapeError(f"{_name(kernel_layout)} expects a 2-D weight {expected}, got {w.shape}")
    if kernel_layout:
        in_features, out_features = w.shape
        w_in_out = w
    else:
        out_features, in_features = w.shape
        w_in_out = w.T  # (in, out): contiguous for Linear's column-major weights
    x_shape = x.shape
    if not x_shape or x_shape[-1] != in_features:
        raise ShapeError(
            f"{_name(kernel_layout)} got an input of shape {tuple(x_shape)} but the weight "
            f"{tuple(w.shape)} expects in_features={in_features} in the last "
            f"dimension; give an input of shape (..., {in_features})"
        )
    b = None
    if bias is not None:
        b = bias._data
        if b.ndim != 1 or b.shape[0] != out_features:
            raise ShapeError(f"{_name(kernel_layout)} expects a bias of shape ({out_features},), "
                             f"got {b.shape}")
    if type(x) is _ndarray and w.dtype.itemsize == 2:  # float16 / bfloat16: no BLAS of their own
        return _affine_low_precision(input, weight, bias, kernel_layout, x, w_in_out, b, out_features)
    if type(x) is not _ndarray:  # another array library: the same map in its namespace
        space = namespace_of(x)
        lead = x_shape[:-1]
        x2 = x if x.ndim == 2 else space.reshape(x, (math.prod(lead), in_features))
        out = _affine_any(x2, w_in_out, b)
        if x.ndim != 2:
            out = space.reshape(out, lead + (out_features,))
    elif x.ndim == 2:
        x2 = x
        out = affine_rows(x2, w_in_out, b)
    else:  # flatten leading dims: one GEMM instead of one per batch entry
        lead = x_shape[:-1]
        x2 = x.reshape((math.prod(lead), in_features))
        out = affine_rows(x2, w_in_out, b).reshape(lead + (out_features,))
    result = _make(out)
    if not grad_enabled():  # needs_grad, written out: this is the hottest op
        return result
    needs_x = input._requires_grad
    needs_w = weight._requires_grad
    needs_b = bias is not None and bias._requires_grad
    if needs_x or needs_w or needs_b:

        def backward(grad):
            return affine_gradients(grad, x, x2, w_in_out, out_features, needs_x, needs_w,
                                    needs_b, kernel_layout)

        # As PyTorch's addmm: the weight is saved for the input's gradient, the input for the weight's.
        record(result, "Dense" if kernel_layout else LINEAR_NODE, (input, weight, bias), backward,
               (w,) * needs_x + (x,) * needs_w)
    return result
