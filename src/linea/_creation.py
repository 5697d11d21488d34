"""Making tensors: ``tensor``, ``zeros``, ``randn`` … with PyTorch's dtype rules.

Python floats become float32, ints int64, bools bool; NumPy arrays keep their
dtype. Sizes are given as ``zeros(2, 3)`` or ``zeros((2, 3))``.
"""
from __future__ import annotations

import numbers

from linea import _dtype
from linea.backend import from_host, host_dtype, xp
from linea._random import draw_integers, draw_normal, draw_permutation, draw_uniform
from linea._tensor import Tensor, check_device, host_array

__all__ = ["tensor", "as_tensor", "from_numpy", "from_dlpack", "zeros", "ones", "empty", "full", "rand",
           "randn", "randint", "randperm", "arange", "linspace", "eye", "zeros_like",
           "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "as_array"]


def _inferred_numpy_dtype(data, array):
    """PyTorch's inference for data that did not come with a dtype of its own."""
    if isinstance(data, (xp.ndarray, xp.generic)):
        return array.dtype
    kind = array.dtype.kind
    if kind == "f":
        return xp.dtype(xp.float32)
    if kind in "iu":
        return xp.dtype(xp.int64)
    if kind == "c":
        return xp.dtype(xp.complex64)
    return array.dtype


def numbers_of_object_array(array, what: str) -> list:
    """The elements of a NumPy object array as nested lists, when every one is a real number.

    (A pandas frame of mixed columns gives such arrays.) Anything else — a string, None,
    a complex number, a nested list — is a TypeError naming the first such element and
    its index; nothing is converted.
    """
    for index, element in enumerate(array.flat):
        if isinstance(element, (numbers.Real, xp.bool_)):  # bool and NumPy's numbers included
            continue
        where = [int(i) for i in xp.unravel_index(index, array.shape)]
        raise TypeError(
            f"cannot make {what} from a NumPy object array: element {where} is "
            f"{element!r} ({type(element).__name__}), not a real number; convert or drop it "
            "first (e.g. array.astype(numpy.float32) once every element is a number)")
    return array.tolist()


def as_array(data, dtype=None):
    """An array (a fresh copy for Python data) with PyTorch's dtype inference."""
    if isinstance(data, Tensor):
        array = data._data.copy()
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(item, Tensor) for item in data):
            data = [item._data if isinstance(item, Tensor) else item for item in data]
        hosted = None if isinstance(data, (list, tuple, xp.ndarray)) else host_array(data)
        if hosted is not None:  # a torch tensor: its exact values, bfloat16 included
            data = hosted
        if isinstance(data, xp.ndarray) and data.dtype == object:
            data = numbers_of_object_array(data, "a tensor")  # then inferred as Python numbers
        try:
            array = xp.array(data)
        except (ValueError, TypeError) as error:
            raise TypeError(f"cannot make a tensor from {type(data).__name__}: {error}") from None
        if array.dtype == object or array.dtype.kind in "SU" or (
                array.dtype.kind == "V" and not _dtype.is_floating(array.dtype)):
            raise TypeError(
                f"cannot make a tensor from {type(data).__name__} holding non-numeric values "
                f"(dtype {array.dtype}); give numbers, nested lists of numbers or an array"
            )
        target = _inferred_numpy_dtype(data, array)
        if target != array.dtype:
            array = array.astype(target)
    if dtype is not None:
        array = array.astype(_dtype.as_dtype(dtype).numpy, copy=False)
    return array


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists, arrays, tensors)."""
    check_device(device)
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array or tensor when it can."""
    check_device(device)
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    if isinstance(data, xp.ndarray):
        target = data.dtype if dtype is None else _dtype.as_dtype(dtype).numpy
        return Tensor._make(data.astype(target, copy=False))
    return Tensor(data, dtype=dtype)


def from_numpy(array) -> Tensor:
    """A tensor sharing memory with the NumPy ``array``, keeping its dtype."""
    if not isinstance(array, xp.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    if array.dtype == object or array.dtype.kind not in "biufc":
        raise TypeError(f"from_numpy cannot take an array of dtype {array.dtype}")
    return Tensor._make(array)


def from_dlpack(source) -> Tensor:
    """A tensor sharing memory with any DLPack producer (a torch tensor, a NumPy array, …).

    No copy: a write on either side is seen on the other (linea's version counters do not
    see the other side's writes, so do not change the memory of a tensor that a recorded
    operation saved before ``backward()``).
    """
    from linea.backend import default_namespace

    if not hasattr(source, "__dlpack__"):
        raise TypeError(f"from_dlpack expects an object with __dlpack__ (a torch tensor, a NumPy "
                        f"array, …), got {type(source).__name__}")
    space = default_namespace()
    return Tensor._make(space.from_dlpack(source))


def _size(size, function: str) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for dim in size:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 0:
            raise ValueError(
                f"{function}() expects non-negative integer sizes, got {tuple(size)!r}"
            )
    return tuple(int(dim) for dim in size)


def _float_dtype(dtype):
    return _dtype.get_default_dtype().numpy if dtype is None else _dtype.as_dtype(dtype).numpy


def _new(array, requires_grad: bool) -> Tensor:
    result = Tensor._make(from_host(array))
    if requires_grad:
        result.requires_grad = True
    return result


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _new(xp.zeros(_size(size, "zeros"), _float_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _new(xp.ones(_size(size, "ones"), _float_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _new(xp.empty(_size(size, "empty"), _float_dtype(dtype)), requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    if dtype is None:
        dtype = as_array(fill_value.item() if isinstance(fill_value, Tensor) else fill_value).dtype
    else:
        dtype = _dtype.as_dtype(dtype).numpy
    shape = _size((size,) if isinstance(size, (tuple, list)) else (size,), "full")
    return _new(xp.full(shape, fill_value, dtype), requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples of U[0, 1)."""
    check_device(device)
    array = draw_uniform(_size(size, "rand"), _float_dtype(dtype), 0.0, 1.0, generator)
    return _new(array, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples of N(0, 1)."""
    check_device(device)
    array = draw_normal(_size(size, "randn"), _float_dtype(dtype), 0.0, 1.0, generator)
    return _new(array, requires_grad)


def randint(low=0, high=None, size=(), *, generator=None, dtype=None, device=None) -> Tensor:
    """Integers drawn uniformly from [low, high) (``randint(high, size)`` also works)."""
    check_device(device)
    if high is None:
        raise TypeError("randint needs high (randint(low, high, size) or randint(high, size=...))")
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    numpy_dtype = xp.int64 if dtype is None else _dtype.as_dtype(dtype).numpy
    values = draw_integers(int(low), int(high), _size((tuple(size),), "randint"), generator)
    return Tensor._make(from_host(values.astype(numpy_dtype)))


def randperm(n: int, *, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0 … n-1."""
    check_device(device)
    numpy_dtype = xp.int64 if dtype is None else _dtype.as_dtype(dtype).numpy
    return Tensor._make(from_host(draw_permutation(int(n), generator).astype(numpy_dtype)))


def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; ints give int64."""
    check_device(device)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange step must be nonzero")
    if dtype is None:
        is_float = any(isinstance(value, float) for value in (start, end, step))
        numpy_dtype = _float_dtype(None) if is_float else xp.int64
    else:
        numpy_dtype = _dtype.as_dtype(dtype).numpy
    return _new(xp.arange(start, end, step).astype(numpy_dtype), requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _new(xp.linspace(start, end, int(steps)).astype(_float_dtype(dtype)), requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _new(xp.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def _like_dtype(reference: Tensor, dtype):
    return host_dtype(reference._data.dtype) if dtype is None else _dtype.as_dtype(dtype).numpy


def zeros_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return _new(xp.zeros(input.shape, _like_dtype(input, dtype)), requires_grad)


def ones_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return _new(xp.ones(input.shape, _like_dtype(input, dtype)), requires_grad)


def empty_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return _new(xp.empty(input.shape, _like_dtype(input, dtype)), requires_grad)


def full_like(input: Tensor, fill_value, *, dtype=None,  # noqa: A002
              requires_grad: bool = False) -> Tensor:
    return _new(xp.full(input.shape, fill_value, _like_dtype(input, dtype)), requires_grad)


def rand_like(input: Tensor, *, generator=None, dtype=None,  # noqa: A002
              requires_grad: bool = False) -> Tensor:
    return _new(draw_uniform(input.shape, _like_dtype(input, dtype), 0.0, 1.0, generator),
                requires_grad)


def randn_like(input: Tensor, *, generator=None, dtype=None,  # noqa: A002
               requires_grad: bool = False) -> Tensor:
    return _new(draw_normal(input.shape, _like_dtype(input, dtype), 0.0, 1.0, generator),
                requires_grad)
