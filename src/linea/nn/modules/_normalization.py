"""LayerNorm, Dropout and Flatten."""
from __future__ import annotations

import numbers

from linea import _dtype
from linea.backend import xp
from linea._tensor import Tensor
from linea.nn import functional as F
from linea.nn import init
from linea.nn.modules._module import Module
from linea.nn.modules._parameter import Parameter

__all__ = ["LayerNorm", "Dropout", "Flatten"]


class LayerNorm(Module):
    """y = (x - E[x]) / √(Var[x] + eps) · weight + bias over the last dims.

    Shapes: x (*, *normalized_shape) → same shape; ``weight`` and ``bias`` have
    ``normalized_shape`` (ones and zeros at first) when ``elementwise_affine``.

    Example::

        >>> import linea
        >>> norm = linea.nn.LayerNorm(4)
        >>> norm(linea.tensor([[1.0, 2.0, 3.0, 4.0]])).mean().item() == 0.0
        True
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(size) for size in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        numpy_dtype = (_dtype.float32 if dtype is None else _dtype.as_dtype(dtype)).numpy
        if elementwise_affine:
            self.weight = Parameter(xp.empty(self.normalized_shape, numpy_dtype))
            if bias:
                self.bias = Parameter(xp.empty(self.normalized_shape, numpy_dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class Dropout(Module):
    """Zeroes elements with probability p while training (scaling the rest by 1/(1-p)).

    Inactive in ``eval()`` mode. ``generator=`` gives it its own random stream.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator=None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Flatten(Module):
    """Flattens dims ``start_dim`` … ``end_dim``: (N, C, H, W) → (N, C·H·W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input) -> Tensor:
        if not isinstance(input, Tensor):  # raw data, as a first layer may receive
            from linea._creation import as_tensor

            input = as_tensor(input)
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
