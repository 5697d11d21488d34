"""Reductions (sum, mean, var, max/min, logsumexp) and their gradients."""
from __future__ import annotations

import warnings
from collections import namedtuple

from linea.backend import quiet
from linea import _dtype
from linea._autograd import needs_grad, record
from linea.backend import (kind_of, namespace_of, put_along_axis, space_of, take_along_axis,
                           to_host, xp)
from linea._ops_math import _unary
from linea._tensor import Tensor

_make = Tensor._make
_ndarray = xp.ndarray


#: What ``max(dim)`` / ``min(dim)`` return, as in PyTorch.
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _axes(dim, ndim: int):
    """``dim`` as a tuple of non-negative axes (None means all), checked against ``ndim``."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    checked = []
    for axis in dims:
        limit = max(ndim, 1)
        if not -limit <= axis < limit:
            raise IndexError(
                f"dimension out of range (expected to be in range of [{-limit}, {limit - 1}], "
                f"but got {axis})"
            )
        checked.append(axis % limit)
    return tuple(checked) if ndim else ()


def _expand_back(grad, axes, keepdim: bool, shape):
    """Broadcast a reduced gradient back over the reduced axes of ``shape``."""
    space = space_of(grad)
    if not keepdim and axes:
        if space is xp:
            grad = xp.expand_dims(grad, axes)
        else:
            for axis in sorted(axes):
                grad = space.expand_dims(grad, axis=axis)
    return space.broadcast_to(grad, shape)


def _record(name, tensor, out, backward, saved=()):
    result = _make(xp.asarray(out) if isinstance(out, xp.generic) else out)
    if tensor._requires_grad and needs_grad(tensor):
        record(result, name, (tensor,), lambda grad: (backward(grad),), saved)
    return result


def _sum_dtype(data, dtype):
    if dtype is not None:
        return _dtype.as_dtype(dtype).numpy
    return space_of(data).int64 if kind_of(data) in "biu" else None


@quiet
def sum(tensor: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    data = tensor._data
    axes = _axes(dim, data.ndim)
    if type(data) is _ndarray:
        out = data.sum(axis=axes, keepdims=keepdim, dtype=_sum_dtype(data, dtype))
    else:
        out = namespace_of(data).sum(data, axis=axes, keepdims=keepdim,
                                     dtype=_sum_dtype(data, dtype) if dtype is None else
                                     _dtype.as_dtype(dtype).in_namespace(namespace_of(data)))
    shape = data.shape
    return _record("Sum", tensor, out, lambda grad: _expand_back(grad, axes, keepdim, shape))


@quiet
def mean(tensor: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    data = tensor._data
    if dtype is None and kind_of(data) in "biu":
        raise TypeError(
            f"mean() needs a floating point tensor, got {tensor.dtype}; use .float().mean()"
        )
    axes = _axes(dim, data.ndim)
    count = 1
    for axis in axes:
        count *= data.shape[axis]
    if type(data) is _ndarray:
        out = data.mean(axis=axes, keepdims=keepdim,
                        dtype=None if dtype is None else _dtype.as_dtype(dtype).numpy)
    else:
        space = namespace_of(data)
        out = space.mean(data if dtype is None else space.astype(
            data, _dtype.as_dtype(dtype).in_namespace(space)), axis=axes, keepdims=keepdim)
    shape = data.shape
    return _record("Mean", tensor, out,
                   lambda grad: _expand_back(grad / count, axes, keepdim, shape))


@quiet
def var(tensor: Tensor, dim=None, keepdim: bool = False, correction: int = 1) -> Tensor:
    data = tensor._data
    axes = _axes(dim, data.ndim)
    count = 1
    for axis in axes:
        count *= data.shape[axis]
    space = space_of(data)
    centered = data - space.mean(data, axis=axes, keepdims=True)
    out = space.sum(centered * centered, axis=axes, keepdims=keepdim) / (count - correction)
    shape = data.shape

    def backward(grad):
        return _expand_back(grad, axes, keepdim, shape) * centered * (2 / (count - correction))

    return _record("Var", tensor, out, backward, (data,))  # PyTorch saves the input


@quiet
def extreme(tensor: Tensor, dim, keepdim: bool, largest: bool):
    """``max``/``min``: the value over everything, or (values, indices) along ``dim``."""
    data = tensor._data
    if data.size == 0:
        raise RuntimeError(
            f"{'max' if largest else 'min'}() of an empty tensor (shape {tensor.shape}) "
            "has no value; give a non-empty tensor"
        )
    if dim is None:
        space = space_of(data)
        out = space.max(data) if largest else space.min(data)

        def backward_all(grad):
            # Ties share the gradient evenly, as PyTorch does for a full reduction.
            hits = space.astype(data == out, data.dtype)
            return grad * hits / space.sum(hits)

        return _record("Max" if largest else "Min", tensor, out, backward_all, (data, out))
    axis = _axes(dim, data.ndim)[0] if data.ndim else None
    kept_indices = (space_of(data).argmax if largest else space_of(data).argmin)(data, axis=axis,
                                                                            keepdims=True)
    values = take_along_axis(data, kept_indices, axis=axis) if data.ndim else data
    indices = kept_indices
    shape = data.shape

    space = space_of(data)

    def backward_dim(grad):
        full = space.zeros(shape, dtype=grad.dtype)
        upstream = grad if keepdim or not data.ndim else space.expand_dims(grad, axis=axis)
        put_along_axis(full, kept_indices, upstream, axis=axis)
        return full

    if not keepdim and data.ndim:
        values, indices = space.squeeze(values, axis=axis), space.squeeze(indices, axis=axis)
    values_tensor = _record("Max" if largest else "Min", tensor, values, backward_dim)
    indices = xp.asarray(indices, dtype=xp.int64) if space is xp else space.astype(indices, space.int64)
    return ValuesIndices(values_tensor, _make(indices))


def arg_extreme(tensor: Tensor, dim, keepdim: bool, largest: bool) -> Tensor:
    data = tensor._data
    if dim is None:
        space = space_of(data)
        flat = space.reshape(data, (-1,))
        index = space.argmax(flat) if largest else space.argmin(flat)
        out = xp.asarray(index, dtype=xp.int64) if space is xp else space.astype(index, space.int64)
        return _make(out.reshape((1,) * data.ndim) if keepdim else out)
    axis = _axes(dim, data.ndim)[0]
    space = space_of(data)
    chosen = (space.argmax if largest else space.argmin)(data, axis=axis, keepdims=keepdim)
    return _make(xp.asarray(chosen, dtype=xp.int64) if space is xp else space.astype(chosen, space.int64))


@quiet
def logsumexp(tensor: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log Σ exp(x) along ``dim``, computed without overflow."""
    data = tensor._data
    axes = _axes(dim, data.ndim)
    space = space_of(data)
    peak = space.max(data, axis=axes, keepdims=True)
    peak = space.where(space.isfinite(peak), peak, 0)
    shifted = space.exp(data - peak)
    total = space.sum(shifted, axis=axes, keepdims=True)
    out_keep = space.log(total) + peak
    out = out_keep if keepdim else space.squeeze(out_keep, axis=axes)
    shape = data.shape

    def backward(grad):
        return _expand_back(grad, axes, keepdim, shape) * (shifted / total)

    return _record("LogSumExp", tensor, out, backward, (data, out))  # as PyTorch saves


def _order(data, axis: int, descending: bool):
    """Stable sort indices along ``axis``; NaN counts as the largest value, as in PyTorch."""
    host = to_host(data)
    moved = xp.moveaxis(host, axis, -1)
    nan = xp.isnan(moved) if moved.dtype.kind == "f" else xp.zeros(moved.shape, bool)
    clean = xp.where(nan, 0, moved)
    if descending:
        keys = (-clean.astype(xp.float64) if clean.dtype.kind in "fc" else -clean.astype(xp.int64), ~nan)
    else:
        keys = (clean, nan)
    order = xp.lexsort(keys, axis=-1)  # the last key is the primary one; lexsort is stable
    return xp.moveaxis(order, -1, axis)


def _gathered(tensor: Tensor, indices_host, axis: int, name: str) -> ValuesIndices:
    data = tensor._data
    space = space_of(data)
    indices = indices_host if space is xp else space.asarray(indices_host)
    values = take_along_axis(data, indices, axis=axis)
    shape = data.shape

    def backward(grad):
        full = space.zeros(shape, dtype=grad.dtype)
        put_along_axis(full, indices, grad, axis=axis)
        return full

    values_tensor = _record(name, tensor, values, backward)
    index_array = xp.asarray(indices_host, dtype=xp.int64)
    return ValuesIndices(values_tensor, _make(index_array if space is xp else space.asarray(index_array)))


def sort(tensor: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    """(values, indices) sorted along ``dim``; always stable (equal values keep their order)."""
    data = tensor._data
    if data.ndim == 0:
        return ValuesIndices(tensor.clone(), _make(xp.zeros((), xp.int64)))
    axis = _axes(dim, data.ndim)[0]
    return _gathered(tensor, _order(data, axis, descending), axis, "Sort")


def topk(tensor: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, in order."""
    data = tensor._data
    axis = _axes(dim, data.ndim)[0] if data.ndim else 0
    size = data.shape[axis] if data.ndim else 1
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= size:
        raise RuntimeError(f"topk: k ({k!r}) must be between 0 and the size of dim {dim} ({size})")
    if data.ndim == 0:
        return sort(tensor)
    order = _order(data, axis, descending=largest)
    chosen = xp.take(order, xp.arange(k), axis=axis)
    return _gathered(tensor, chosen, axis, "TopK")


# ---- softmax and log_softmax: normalizations along one dim (nn.functional re-exports them) ----

def op_input(input, function: str) -> Tensor:
    """The input as a Tensor: raw data (NumPy arrays, lists, numbers) is accepted, as by Linear."""
    if isinstance(input, Tensor):
        return input
    from linea._creation import as_tensor

    try:
        return as_tensor(input)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{function}() expects a linea.Tensor, a NumPy array or nested lists of "
                        f"numbers, got {type(input).__name__}: {error}") from None


def _softmax_dim(ndim: int, dim, function: str) -> int:
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {function} has been deprecated. "
            "Change the call to include dim=X as an argument.", stacklevel=3)
        return 0 if ndim in (0, 1, 3) else 1
    limit = max(ndim, 1)
    if not -limit <= dim < limit:
        raise IndexError(f"dimension out of range (expected in [{-limit}, {limit - 1}], got {dim})")
    return dim % limit


@quiet
def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """exp(x) / Σ exp(x) along ``dim``."""
    input = op_input(input, "softmax")
    if input.dtype in (_dtype.bfloat16, _dtype.float16):  # computed in float32, the output rounded once
        return softmax(input.float(), dim).to(input.dtype)
    if dtype is not None:
        input = input.to(dtype)
    x = input._data
    axis = _softmax_dim(x.ndim, dim, "softmax")
    space = space_of(x)
    if x.ndim == 0:
        return _unary("Softmax", input, space.ones_like(x), lambda grad: space.zeros_like(grad))
    shifted = space.exp(x - space.max(x, axis=axis, keepdims=True))
    out = shifted / space.sum(shifted, axis=axis, keepdims=True)

    def gradient(grad):
        return out * (grad - space.sum(grad * out, axis=axis, keepdims=True))

    return _unary("Softmax", input, out, gradient, (out,))


@quiet
def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """x - log Σ exp(x) along ``dim``."""
    input = op_input(input, "log_softmax")
    if input.dtype in (_dtype.bfloat16, _dtype.float16):
        return log_softmax(input.float(), dim).to(input.dtype)
    if dtype is not None:
        input = input.to(dtype)
    x = input._data
    axis = _softmax_dim(x.ndim, dim, "log_softmax")
    space = space_of(x)
    if x.ndim == 0:
        return _unary("LogSoftmax", input, space.zeros_like(x), lambda grad: space.zeros_like(grad))
    shifted = x - space.max(x, axis=axis, keepdims=True)
    out = shifted - space.log(space.sum(space.exp(shifted), axis=axis, keepdims=True))

    def gradient(grad):
        return grad - space.exp(out) * space.sum(grad, axis=axis, keepdims=True)

    return _unary("LogSoftmax", input, out, gradient, (out,))
