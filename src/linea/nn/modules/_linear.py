"""``Linear``, ``LazyLinear`` and ``Identity``."""
from __future__ import annotations

import math
import numbers

from linea import _dtype
from linea.backend import copy_into, xp
from linea._errors import DTypeError, ShapeError
from linea._tensor import Tensor, check_device
from linea.nn.functional._linear import _affine
from linea.nn import init
from linea.nn.modules._lazy import last_dimension
from linea.nn.modules._module import Module
from linea.nn.modules._parameter import Parameter, UninitializedParameter

__all__ = ["Linear", "LazyLinear", "Identity"]


def _check_size(value, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{layer}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{layer}: {name} must be non-negative, got {value}")
    return int(value)


def column_major_weight(out_features: int, in_features: int, dtype):
    """An (out, in) weight laid out column-major: its transpose is a contiguous (in, out).

    Shape and values are PyTorch's; only the memory order differs, so the forward
    product x Wᵀ and the input gradient g W read contiguous memory (measured
    1.1× faster at batch 1 with OpenBLAS) and weight gradients arrive in the
    same order without copies.
    """
    return xp.empty((in_features, out_features), dtype).T


def reset_affine_parameters(weight, bias, generator=None) -> None:
    """PyTorch's default for Linear and Conv: U(±1/√fan_in) for the weight and the bias."""
    # PyTorch writes the weight's draw as kaiming_uniform_(a=√5); with gain √(2/(1+5))
    # that bound is √3·gain/√fan_in = 1/√fan_in. We call it the same way on purpose.
    if weight.numel():
        init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in = init._calculate_fan_in_and_fan_out(weight.shape)[0] if weight.ndim > 1 else 0
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound, generator=generator)


def _factory_dtype(device, dtype):
    check_device(device)
    target = _dtype.float32 if dtype is None else _dtype.as_dtype(dtype)
    if not target.is_floating_point:
        raise TypeError(f"a layer's dtype must be a floating point dtype, got {target}")
    return target.numpy


class Linear(Module):
    """Applies an affine map to the last dimension: y = x Wᵀ + b.

    Shapes: x (*, in_features) → y (*, out_features); ``weight`` is
    (out_features, in_features), ``bias`` (out_features,) or None.

    Args:
        in_features: size of each input's last dimension.
        out_features: size of each output's last dimension.
        bias: learn an additive bias (default True).
        device: only ``"cpu"`` (or None).
        dtype: parameter dtype (default ``linea.float32``).

    Both parameters start as U(-1/√in_features, 1/√in_features), as in PyTorch.

    Example::

        >>> import linea
        >>> layer = linea.nn.Linear(3, 30)
        >>> layer(linea.ones(5, 3)).shape
        (5, 30)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.in_features = _check_size(in_features, "in_features", "Linear")
        self.out_features = _check_size(out_features, "out_features", "Linear")
        numpy_dtype = _factory_dtype(device, dtype)
        self.weight = Parameter(column_major_weight(self.out_features, self.in_features, numpy_dtype))
        if bias:
            self.bias = Parameter(xp.empty((self.out_features,), numpy_dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, generator=None) -> None:
        """Draw fresh weights: U(±1/√fan_in) for both weight and bias, as PyTorch does."""
        reset_affine_parameters(self.weight, self.bias, generator)

    def forward(self, input) -> Tensor:
        try:
            return _affine(input, self.weight, self.bias, False)  # = F.linear, one call shorter
        except (ShapeError, DTypeError) as error:
            raise type(error)(f"{self!r}: {error}") from None

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

    @classmethod
    def from_dense(cls, dense) -> "Linear":
        """A Linear holding a built Keras-style Dense's weights (weight = kernelᵀ).

        Reads the Dense by duck typing (``get_weights()``); any activation of the
        Dense is not part of a Linear and must be applied separately.
        """
        weights = dense.get_weights() if hasattr(dense, "get_weights") else None
        if not weights:
            raise ValueError(
                "from_dense needs a built Dense layer with weights (call it once, or build it)"
            )
        kernel = xp.asarray(weights[0])
        if kernel.ndim != 2:
            raise ShapeError(f"a Dense kernel must be 2-D (in, units), got shape {kernel.shape}")
        use_bias = len(weights) > 1
        layer = cls(kernel.shape[0], kernel.shape[1], bias=use_bias,
                    dtype=_dtype.from_numpy_dtype(kernel.dtype))
        layer.weight._data[...] = kernel.T
        if use_bias:
            layer.bias._data[...] = xp.asarray(weights[1])
        return layer


class LazyLinear(Linear):
    """A ``Linear`` whose ``in_features`` is taken from its first input.

    After the first call (or a ``load_state_dict``) it becomes a plain ``Linear``.

    Example::

        >>> import linea
        >>> layer = linea.nn.LazyLinear(4)
        >>> layer(linea.ones(2, 7)).shape, layer.in_features
        ((2, 4), 7)
    """

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        Module.__init__(self)
        self.in_features = 0
        self.out_features = _check_size(out_features, "out_features", "LazyLinear")
        self._dtype = _factory_dtype(device, dtype)
        self.weight = UninitializedParameter(self._dtype)
        if bias:
            self.bias = UninitializedParameter(self._dtype)
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self, generator=None) -> None:
        if not isinstance(self.weight, UninitializedParameter):
            super().reset_parameters(generator)

    def forward(self, input) -> Tensor:
        self.materialize(last_dimension(input, "LazyLinear"))
        return Linear.forward(self, input)

    def materialize(self, in_features: int) -> None:
        """Create the weights for ``in_features`` inputs and become a ``Linear``."""
        in_features = _check_size(in_features, "in_features", "LazyLinear")
        has_bias = self.bias is not None
        self.in_features = in_features
        self.weight = Parameter(column_major_weight(self.out_features, in_features, self._dtype))
        if has_bias:
            self.bias = Parameter(xp.empty((self.out_features,), self._dtype))
        self.__class__ = Linear
        self.reset_parameters()

    def _accepts_lazy_shape(self, name: str, shape) -> str | None:
        wanted = "(out_features, in_features)" if name == "weight" else "(out_features,)"
        ok = (len(shape) == 2 if name == "weight" else len(shape) == 1) and \
            shape[0] == self.out_features
        return None if ok else (
            f"LazyLinear({self.out_features}).{name} needs shape {wanted} with "
            f"out_features={self.out_features}, got {tuple(shape)}"
        )

    def _materialize_from(self, name: str, value) -> None:
        if name == "weight":
            self.materialize(value.shape[1])
            copy_into(self.weight._data, value)
        else:
            self.bias._data = xp.array(value, dtype=self._dtype)

    def extra_repr(self) -> str:
        return f"in_features=0, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input unchanged (arguments are accepted and ignored)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input):
        return input
