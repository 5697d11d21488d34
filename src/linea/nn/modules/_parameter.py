"""``Parameter``: a tensor that a Module registers as a learnable weight."""
from __future__ import annotations

from linea.backend import from_host, xp
from linea._tensor import Tensor

__all__ = ["Parameter", "UninitializedParameter"]


class Parameter(Tensor):
    """A leaf tensor with ``requires_grad=True`` that ``Module`` collects.

    ``Parameter(tensor)`` shares the tensor's memory, as in PyTorch.
    """

    def __init__(self, data=None, requires_grad: bool = True) -> None:
        if data is None:
            array = xp.empty((0,), xp.float32)
        elif isinstance(data, Tensor):
            array = data._data
        else:
            from linea._creation import as_array

            array = as_array(data)
        self._data = from_host(array)  # parameters live in the default array namespace
        if requires_grad:
            self.requires_grad = True

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class UninitializedParameter(Parameter):
    """The weight of a lazy layer before its first call fixes the input size."""

    def __init__(self, dtype=xp.float32) -> None:
        super().__init__(xp.empty((0,), dtype), requires_grad=True)

    def __repr__(self) -> str:
        return "<UninitializedParameter>"
