"""The functions PyTorch users call at top level: ``linea.max(outputs, 1)``, ``linea.allclose``…

Each is the Tensor method (or ``nn.functional`` op) of the same name, taking a tensor or
anything ``linea.as_tensor`` takes; nothing here computes on its own.
"""
from __future__ import annotations

import builtins

from linea import _ops_reduce
from linea._creation import as_tensor
from linea._tensor import Tensor

__all__ = ["max", "min", "argmax", "argmin", "sum", "mean", "std", "var", "softmax",
           "log_softmax", "flatten", "exp", "log", "abs", "sqrt", "tanh", "sigmoid", "relu",
           "clamp", "matmul", "topk", "sort", "allclose", "isclose", "equal", "numel",
           "reshape", "transpose", "squeeze", "unsqueeze", "logsumexp", "maximum", "minimum"]


def _tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else as_tensor(value)


def max(input, dim=None, keepdim: bool = False):  # noqa: A001 - PyTorch's name
    """The largest value, ``(values, indices)`` along ``dim``, or the elementwise maximum of two."""
    return _tensor(input).max(dim, keepdim)


def min(input, dim=None, keepdim: bool = False):  # noqa: A001
    """The smallest value, ``(values, indices)`` along ``dim``, or the elementwise minimum of two."""
    return _tensor(input).min(dim, keepdim)


def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input).argmax(dim, keepdim)


def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input).argmin(dim, keepdim)


def sum(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    return _ops_reduce.sum(_tensor(input), dim, keepdim, dtype)


def mean(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    return _ops_reduce.mean(_tensor(input), dim, keepdim, dtype)


def std(input, dim=None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
    return _tensor(input).std(dim, keepdim=keepdim, correction=correction)


def var(input, dim=None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
    return _tensor(input).var(dim, keepdim=keepdim, correction=correction)


def logsumexp(input, dim, keepdim: bool = False) -> Tensor:
    return _tensor(input).logsumexp(dim, keepdim)


def softmax(input, dim: int, dtype=None) -> Tensor:
    return _ops_reduce.softmax(_tensor(input), dim, dtype)


def log_softmax(input, dim: int, dtype=None) -> Tensor:
    return _ops_reduce.log_softmax(_tensor(input), dim, dtype)


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _tensor(input).flatten(start_dim, end_dim)


def reshape(input, shape) -> Tensor:
    return _tensor(input).reshape(shape)


def transpose(input, dim0: int, dim1: int) -> Tensor:
    return _tensor(input).transpose(dim0, dim1)


def squeeze(input, dim=None) -> Tensor:
    return _tensor(input).squeeze(dim)


def unsqueeze(input, dim: int) -> Tensor:
    return _tensor(input).unsqueeze(dim)


def exp(input) -> Tensor:
    return _tensor(input).exp()


def log(input) -> Tensor:
    return _tensor(input).log()


def abs(input) -> Tensor:  # noqa: A001
    return _tensor(input).abs()


def sqrt(input) -> Tensor:
    return _tensor(input).sqrt()


def tanh(input) -> Tensor:
    return _tensor(input).tanh()


def sigmoid(input) -> Tensor:
    return _tensor(input).sigmoid()


def relu(input) -> Tensor:
    return _tensor(input).relu()


def clamp(input, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's argument names
    return _tensor(input).clamp(min, max)


def maximum(input, other) -> Tensor:
    return _tensor(input).maximum(_tensor(other))


def minimum(input, other) -> Tensor:
    return _tensor(input).minimum(_tensor(other))


def matmul(input, other) -> Tensor:
    return _tensor(input) @ _tensor(other)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) along ``dim``."""
    return _ops_reduce.topk(_tensor(input), k, dim, largest, sorted)


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """``(values, indices)`` sorted along ``dim`` (stable: equal values keep their order)."""
    return _ops_reduce.sort(_tensor(input), dim, descending, stable)


def _compared(input, other):
    from linea.backend import to_host, xp

    a, b = to_host(_tensor(input)._data), to_host(_tensor(other)._data)
    return xp.asarray(a), xp.asarray(b)


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """|input − other| ≤ atol + rtol·|other| elementwise (a bool tensor), as PyTorch."""
    from linea.backend import xp

    a, b = _compared(input, other)
    return Tensor._make(xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when every element is ``isclose`` (shapes broadcast, as in PyTorch)."""
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def equal(input, other) -> bool:
    """True when both have the same shape and the same elements."""
    a, b = _compared(input, other)
    return a.shape == b.shape and builtins.bool((a == b).all())


def numel(input) -> int:
    return _tensor(input).numel()
