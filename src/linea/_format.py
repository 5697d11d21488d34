"""PyTorch-style printing of tensors: ``tensor([[1., 2.]], requires_grad=True)``."""
from __future__ import annotations

from linea.backend import to_host, xp

_DEFAULT_DTYPES = ("float32", "int64", "bool")


def format_tensor(tensor) -> str:
    data = to_host(tensor._data)
    prefix = "tensor("
    body = xp.array2string(
        data, separator=", ", prefix=prefix, precision=4, threshold=1000, edgeitems=3,
        floatmode="maxprec",
    )
    extras = []
    if data.size == 0 and data.ndim != 1:
        extras.append(f"size={tuple(data.shape)}")
    name = tensor.dtype.name
    if name not in _DEFAULT_DTYPES:
        extras.append(f"dtype=linea.{name}")
    if tensor.grad_fn is not None:
        extras.append(f"grad_fn={tensor.grad_fn!r}")
    elif tensor.requires_grad:
        extras.append("requires_grad=True")
    return prefix + ", ".join([body] + extras) + ")"
