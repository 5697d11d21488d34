"""Keras activations by name, on linea's differentiable ops.

``get("relu")`` returns the function; ``serialize(function)`` its Keras name.
Keras defaults kept: ``gelu`` is exact (approximate=False), ``leaky_relu``'s
negative_slope is 0.2, ``softmax`` works on the last axis.
"""
from __future__ import annotations

from linea._tensor import Tensor
from linea.nn import functional as F

__all__ = ["get", "serialize", "linear", "relu", "gelu", "tanh", "sigmoid", "softmax",
           "log_softmax", "elu", "selu", "celu", "softplus", "softsign", "silu", "swish",
           "leaky_relu", "relu6", "exponential", "hard_sigmoid", "hard_silu", "hard_swish",
           "hard_tanh", "log_sigmoid", "mish", "tanh_shrink", "soft_shrink", "hard_shrink"]


def linear(x: Tensor) -> Tensor:
    """The identity: Keras's "no activation"."""
    return x


def relu(x: Tensor) -> Tensor:
    return F.relu(x)


def gelu(x: Tensor, approximate: bool = False) -> Tensor:
    return F.gelu(x, approximate="tanh" if approximate else "none")


def tanh(x: Tensor) -> Tensor:
    return F.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    return F.sigmoid(x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return F.softmax(x, axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return F.log_softmax(x, axis)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha·(eˣ − 1) otherwise."""
    return F.elu(x, alpha)


def selu(x: Tensor) -> Tensor:
    """scale·elu(x, alpha) with Klambauer et al.'s constants."""
    return F.selu(x)


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return F.celu(x, alpha)


def softplus(x: Tensor) -> Tensor:
    return F.softplus(x, 1.0, float("inf"))


def softsign(x: Tensor) -> Tensor:
    return F.softsign(x)


def silu(x: Tensor) -> Tensor:
    return F.silu(x)


swish = silu


def leaky_relu(x: Tensor, negative_slope: float = 0.2) -> Tensor:
    return F.leaky_relu(x, negative_slope)


def relu6(x: Tensor) -> Tensor:
    return F.relu6(x)


def exponential(x: Tensor) -> Tensor:
    return x.exp()


def hard_sigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6, Keras 3's definition (Keras 2's slope was 0.2)."""
    return F.hardsigmoid(x)


def hard_silu(x: Tensor) -> Tensor:
    """x·relu6(x + 3) / 6."""
    return F.hardswish(x)


hard_swish = hard_silu


def hard_tanh(x: Tensor) -> Tensor:
    return F.hardtanh(x)


def log_sigmoid(x: Tensor) -> Tensor:
    return F.logsigmoid(x)


def mish(x: Tensor) -> Tensor:
    return F.mish(x)


def tanh_shrink(x: Tensor) -> Tensor:
    return F.tanhshrink(x)


def soft_shrink(x: Tensor, threshold: float = 0.5) -> Tensor:
    return F.softshrink(x, threshold)


def hard_shrink(x: Tensor, threshold: float = 0.5) -> Tensor:
    return F.hardshrink(x, threshold)


_BY_NAME = {
    "linear": linear, "relu": relu, "gelu": gelu, "tanh": tanh, "sigmoid": sigmoid,
    "softmax": softmax, "log_softmax": log_softmax, "elu": elu, "selu": selu, "celu": celu,
    "softplus": softplus, "softsign": softsign, "silu": silu, "swish": silu,
    "leaky_relu": leaky_relu, "relu6": relu6, "exponential": exponential,
    "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu, "hard_swish": hard_silu,
    "hard_tanh": hard_tanh, "log_sigmoid": log_sigmoid, "mish": mish, "tanh_shrink": tanh_shrink,
    "soft_shrink": soft_shrink, "hard_shrink": hard_shrink,
}
#: Aliases Keras serializes under another name.
_ALIASES = ("swish", "hard_swish")


def names() -> list:
    """The Keras activation names linea has, aliases included."""
    return list(_BY_NAME)


def get(identifier):
    """An activation function from its Keras name, a callable, or None (linear)."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        function = _BY_NAME.get(identifier)
        if function is None:
            raise ValueError(
                f"Unknown activation {identifier!r}; expected one of {sorted(_BY_NAME)} "
                "or a callable"
            )
        return function
    if isinstance(identifier, dict):  # a serialized Keras activation
        return get(identifier.get("config", identifier.get("class_name")))
    if callable(identifier):
        return identifier
    raise TypeError(f"activation must be a name, a callable or None, got {identifier!r}")


def serialize(function) -> str:
    """The Keras name of an activation function (its __name__ for custom callables)."""
    for name, known in _BY_NAME.items():
        if known is function and name not in _ALIASES:
            return name
    return getattr(function, "__name__", repr(function))
