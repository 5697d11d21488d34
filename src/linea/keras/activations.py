"""Keras activations by name, on linea's differentiable ops.

``get("relu")`` returns the function; ``serialize(function)`` its Keras name.
Keras defaults kept: ``gelu`` is exact (approximate=False), ``leaky_relu``'s
negative_slope is 0.2, ``softmax`` works on the last axis.
"""
from __future__ import annotations

from linea._tensor import Tensor
from linea.nn import functional as F

__all__ = ["get", "serialize", "linear", "relu", "gelu", "tanh", "sigmoid", "softmax",
           "log_softmax", "elu", "selu", "softplus", "softsign", "silu", "swish",
           "leaky_relu", "relu6", "exponential", "hard_sigmoid", "mish"]


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
    from linea._ops_shape import where

    return where(x > 0, x, (x.clamp(max=0.0).exp() - 1) * alpha)


def selu(x: Tensor) -> Tensor:
    """scale·elu(x, alpha) with Klambauer et al.'s constants."""
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return elu(x, alpha) * scale


def softplus(x: Tensor) -> Tensor:
    return F.softplus(x, 1.0, float("inf"))


def softsign(x: Tensor) -> Tensor:
    return x / (x.abs() + 1)


def silu(x: Tensor) -> Tensor:
    return F.silu(x)


swish = silu


def leaky_relu(x: Tensor, negative_slope: float = 0.2) -> Tensor:
    return F.leaky_relu(x, negative_slope)


def relu6(x: Tensor) -> Tensor:
    return x.clamp(0.0, 6.0)


def exponential(x: Tensor) -> Tensor:
    return x.exp()


def hard_sigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6, Keras 3's definition."""
    return relu6(x + 3.0) / 6.0


def mish(x: Tensor) -> Tensor:
    return x * softplus(x).tanh()


_BY_NAME = {
    "linear": linear, "relu": relu, "gelu": gelu, "tanh": tanh, "sigmoid": sigmoid,
    "softmax": softmax, "log_softmax": log_softmax, "elu": elu, "selu": selu,
    "softplus": softplus, "softsign": softsign, "silu": silu, "swish": silu,
    "leaky_relu": leaky_relu, "relu6": relu6, "exponential": exponential,
    "hard_sigmoid": hard_sigmoid, "mish": mish,
}


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
        if known is function and name != "swish":
            return name
    return getattr(function, "__name__", repr(function))
