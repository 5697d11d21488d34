"""Shape, indexing, joining and dtype ops, and their gradients."""
from __future__ import annotations

from linea import _dtype
from linea._autograd import RESHAPE_NODE, needs_grad, record
from linea.backend import copy_of, kind_of, namespace_of, quiet, scatter_add, space_of, xp
from linea._errors import ShapeError
from linea._tensor import Tensor, check_device, is_device_argument

_make = Tensor._make
_ndarray = xp.ndarray



def _swap(array, dim0: int, dim1: int):
    if type(array) is _ndarray:
        return xp.swapaxes(array, dim0, dim1)
    order = list(range(array.ndim))
    order[dim0], order[dim1] = order[dim1], order[dim0]
    return namespace_of(array).permute_dims(array, tuple(order))


def _record(name, tensor, out, backward, saved=()):
    result = _make(out)
    if tensor._requires_grad and needs_grad(tensor):
        record(result, name, (tensor,), lambda grad: (backward(grad),), saved)
    return result


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(tensor: Tensor, shape) -> Tensor:
    data = tensor._data
    shape = _shape_arg(shape)
    try:
        out = data.reshape(shape) if type(data) is _ndarray else namespace_of(data).reshape(data, shape)
    except ValueError:
        raise ShapeError(
            f"shape {list(shape)} is invalid for a tensor of shape {tuple(data.shape)} "
            f"({data.size} elements)"
        ) from None
    original = data.shape
    return _record(RESHAPE_NODE, tensor, out, lambda grad: space_of(grad).reshape(grad, original))


def flatten(tensor: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    shape = tensor.shape
    if not shape:
        return reshape(tensor, ((1,),))
    start, end = start_dim % len(shape), end_dim % len(shape)
    if start > end:
        raise ValueError(f"flatten() has start_dim={start_dim} after end_dim={end_dim}")
    merged = 1
    for size in shape[start:end + 1]:
        merged *= size
    return reshape(tensor, (shape[:start] + (merged,) + shape[end + 1:],))


def _dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(
            f"dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
            f"but got {dim})"
        )
    return dim % ndim


def transpose(tensor: Tensor, dim0: int, dim1: int) -> Tensor:
    ndim = max(tensor.ndim, 1)
    dim0, dim1 = _dim(dim0, ndim), _dim(dim1, ndim)
    if tensor.ndim == 0:
        return _record("Transpose", tensor, tensor._data, lambda grad: grad)
    out = _swap(tensor._data, dim0, dim1)
    return _record("Transpose", tensor, out, lambda grad: _swap(grad, dim0, dim1))


def permute(tensor: Tensor, dims) -> Tensor:
    dims = _shape_arg(dims)
    if sorted(d % max(tensor.ndim, 1) for d in dims) != list(range(tensor.ndim)):
        raise ValueError(f"permute dims {dims} are not a permutation of the {tensor.ndim} dims")
    dims = tuple(d % tensor.ndim for d in dims)
    inverse = tuple(int(i) for i in xp.argsort(dims))
    out = space_of(tensor._data).permute_dims(tensor._data, dims)
    return _record("Permute", tensor, out, lambda grad: space_of(grad).permute_dims(grad, inverse))


def unsqueeze(tensor: Tensor, dim: int) -> Tensor:
    dim = _dim(dim, tensor.ndim + 1)
    original = tensor.shape
    space = space_of(tensor._data)
    return _record("Unsqueeze", tensor, space.expand_dims(tensor._data, axis=dim),
                   lambda grad: space.reshape(grad, original))


def squeeze(tensor: Tensor, dim=None) -> Tensor:
    data = tensor._data
    space = space_of(data)
    if dim is None:
        axes = tuple(a for a, size in enumerate(data.shape) if size == 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        axes = tuple(a for a in (_dim(d, max(data.ndim, 1)) for d in dims)
                     if data.ndim and data.shape[a] == 1)
    out = space.squeeze(data, axis=axes) if axes else data
    original = data.shape
    return _record("Squeeze", tensor, out, lambda grad: space.reshape(grad, original))


def expand(tensor: Tensor, sizes) -> Tensor:
    sizes = _shape_arg(sizes)
    data = tensor._data
    lead = len(sizes) - data.ndim
    target = tuple(data.shape[i - lead] if size == -1 else size for i, size in enumerate(sizes))
    try:
        out = space_of(data).broadcast_to(data, target)
    except ValueError:
        raise ShapeError(f"cannot expand a tensor of shape {data.shape} to {sizes}") from None
    from linea._ops_math import unbroadcast

    original = data.shape
    return _record("Expand", tensor, out, lambda grad: unbroadcast(grad, original))


def clone(tensor: Tensor) -> Tensor:
    return _record("Clone", tensor, copy_of(tensor._data), lambda grad: grad)


def as_index(index):
    """An index with tensors replaced by their arrays."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(item._data if isinstance(item, Tensor) else item for item in index)
    if isinstance(index, list):
        return xp.asarray(index)
    return index


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(item is None or item is Ellipsis or isinstance(item, (int, slice)) for item in items)


def _portable_index(index, data):
    """An index the array API takes: index arrays in ``data``'s namespace, and a trailing
    Ellipsis where fewer axes are indexed than ``data`` has (NumPy's implicit slices)."""
    space = namespace_of(data)
    items = index if isinstance(index, tuple) else (index,)
    items = tuple(space.asarray(item) if isinstance(item, xp.ndarray) else item for item in items)
    if not any(item is Ellipsis for item in items) and not any(hasattr(item, "shape") and getattr(item, "ndim", 0) and
                                         kind_of(item) == "b" for item in items):
        items = items + (Ellipsis,)
    return items


def _scattered(grad, rows, shape):
    """Zeros of ``shape`` with ``grad``'s rows added at ``rows`` (repeats accumulate)."""
    full = space_of(grad).zeros(shape, dtype=grad.dtype)
    scatter_add(full, rows, grad)
    return full


def getitem(tensor: Tensor, index) -> Tensor:
    index = as_index(index)
    data = tensor._data
    space = space_of(data)
    if space is not xp:
        index = _portable_index(index, data)
        single = index[0] if len(index) == 2 and index[1] is Ellipsis else None
        if hasattr(single, "dtype") and kind_of(single) in "iu" and single.ndim == 1:
            # The standard indexes with integer arrays only on every axis: take along axis 0.
            out = space.take(data, single, axis=0)
            return _record("Index", tensor, out, lambda grad: _scattered(grad, single, data.shape),
                           (single,))
    out = data[index]
    if isinstance(out, xp.generic):
        out = xp.asarray(out)
    basic = _is_basic(index)

    mask_index = space is not xp and any(hasattr(item, "dtype") and kind_of(item) == "b"
                                         for item in (index if isinstance(index, tuple) else (index,)))

    def backward(grad):
        full = space.zeros(data.shape, dtype=grad.dtype)
        if basic or mask_index:  # a boolean mask picks each element at most once
            full[index] = grad
        else:  # advanced indices may repeat: accumulate
            scatter_add(full, index, grad)
        return full

    indices = tuple(item for item in (index if isinstance(index, tuple) else (index,))
                    if hasattr(item, "shape"))  # index arrays, saved as PyTorch saves them
    return _record("Index", tensor, out, backward, indices)


def masked_fill(tensor: Tensor, mask, value) -> Tensor:
    mask_array = mask._data if isinstance(mask, Tensor) else xp.asarray(mask)
    if kind_of(mask_array) != "b":
        raise TypeError(f"masked_fill expects a bool mask, got dtype {mask_array.dtype}")
    fill = value.item() if isinstance(value, Tensor) else value
    data = tensor._data
    space = space_of(data)
    out = space.where(mask_array, space.asarray(fill, dtype=data.dtype), data)
    if out.shape != data.shape:
        raise ShapeError(f"mask of shape {mask_array.shape} does not broadcast to {data.shape}")
    return _record("MaskedFill", tensor, out,
                   lambda grad: space.where(mask_array, space.zeros_like(grad), grad), (mask_array,))


@quiet
def cast(tensor: Tensor, dtype) -> Tensor:
    target = _dtype.as_dtype(dtype)
    data = tensor._data
    if type(data) is not _ndarray:  # another library: its own dtype of the same name
        space = namespace_of(data)
        wanted = target.in_namespace(space)
        if data.dtype == wanted:
            return tensor
        out, source = space.astype(data, wanted), data.dtype
        if not target.is_floating_point:
            return _make(out)
        return _record("ToCopy", tensor, out, lambda grad: space.astype(grad, source))
    if data.dtype == target.numpy:
        return tensor
    out = data.astype(target.numpy)
    if not target.is_floating_point:
        return _make(out)
    source = data.dtype
    return _record("ToCopy", tensor, out, lambda grad: grad.astype(source))


def to(tensor: Tensor, args, dtype, device, copy: bool) -> Tensor:
    """``t.to(dtype)``, ``t.to("cpu")``, ``t.to(other_tensor)``."""
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif is_device_argument(arg):
            device = arg
        else:
            dtype = arg
    check_device(device)
    result = tensor if dtype is None else cast(tensor, dtype)
    return clone(result) if copy and result is tensor else result


def _tensors(tensors, function: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{function}() expects a non-empty sequence of tensors")
    from linea._creation import as_tensor

    return [t if isinstance(t, Tensor) else as_tensor(t) for t in tensors]


def _join(name, tensors, out, split):
    result = _make(out)
    if needs_grad(*tensors):
        record(result, name, tensors, split)
    return result


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension."""
    tensors = _tensors(tensors, "cat")
    arrays = [t._data for t in tensors]
    axis = _dim(dim, max(arrays[0].ndim, 1))
    space = space_of(arrays[0])
    try:
        out = xp.concatenate(arrays, axis=axis) if space is xp else space.concat(arrays, axis=axis)
    except ValueError as error:
        shapes = [a.shape for a in arrays]
        raise ShapeError(f"cat() along dim {dim} got incompatible shapes {shapes}: {error}") from None
    sizes = [a.shape[axis] for a in arrays]
    if space is xp:
        bounds = xp.cumsum(sizes)[:-1]
        return _join("Cat", tensors, out, lambda grad: tuple(xp.split(grad, bounds, axis=axis)))

    def split(grad):  # the standard has no split: one slice per input
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return tuple(grad[(slice(None),) * axis + (slice(start, start + size),) + (Ellipsis,)]
                     for start, size in zip(starts, sizes))

    return _join("Cat", tensors, out, split)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension."""
    tensors = _tensors(tensors, "stack")
    arrays = [t._data for t in tensors]
    axis = _dim(dim, arrays[0].ndim + 1)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ShapeError(f"stack() expects tensors of equal shape, got {[a.shape for a in arrays]}")
    space = space_of(arrays[0])
    out = space.stack(arrays, axis=axis)
    count = len(arrays)
    if space is xp:
        return _join("Stack", tensors, out,
                     lambda grad: tuple(xp.take(grad, i, axis=axis) for i in range(count)))
    return _join("Stack", tensors, out,
                 lambda grad: tuple(copy_of(grad[(slice(None),) * axis + (i,) + (Ellipsis,)])
                                    for i in range(count)))


def where(condition, input, other) -> Tensor:  # noqa: A002 - PyTorch's names
    """``input`` where ``condition`` is true, else ``other`` (all broadcast)."""
    from linea._ops_math import _operand, _promote, unbroadcast

    mask = condition._data if isinstance(condition, Tensor) else xp.asarray(condition)
    if kind_of(mask) != "b":
        raise TypeError(f"where() expects a bool condition, got dtype {mask.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        from linea._creation import as_tensor

        input = as_tensor(input)
    x = input._data if isinstance(input, Tensor) else _operand(input, other._data)
    y = other._data if isinstance(other, Tensor) else _operand(other, input._data)
    if isinstance(x, xp.ndarray) and isinstance(y, xp.ndarray) and x.dtype != y.dtype:
        x, y = _promote(x, y)
    space = space_of(mask)
    out = xp.asarray(xp.where(mask, x, y)) if space is xp else space.where(mask, x, y)
    inputs = [t for t in (input, other) if isinstance(t, Tensor)]
    x_shape = x.shape if hasattr(x, "shape") else ()
    y_shape = y.shape if hasattr(y, "shape") else ()

    def backward(grad):
        zero = space.zeros((), dtype=grad.dtype)
        grads = []
        if isinstance(input, Tensor):
            grads.append(unbroadcast(space.where(mask, grad, zero), x_shape))
        if isinstance(other, Tensor):
            grads.append(unbroadcast(space.where(mask, zero, grad), y_shape))
        return tuple(grads)

    return _join("Where", inputs, out, backward)
