"""Reductions (sum, mean, var, max/min, logsumexp) and their gradients."""
from __future__ import annotations

from collections import namedtuple

from linea import _dtype
from linea._autograd import needs_grad, record
from linea.backend import kind_of, namespace_of, put_along_axis, space_of, take_along_axis, xp
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
