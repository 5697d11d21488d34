"""Activations: relu, leaky_relu, gelu, tanh, sigmoid, softplus, softmax, log_softmax.

Each nonlinearity is a primitive with its own gradient; softmax and
log_softmax subtract the row maximum first, so logits of ±1e4 never overflow.
"""
from __future__ import annotations

import math

from linea import _dtype
from linea.backend import erf, space_of
from linea._ops_math import relu as _relu
from linea._ops_math import sigmoid as _sigmoid
from linea._ops_math import _unary, stable_sigmoid, stable_softplus
from linea._ops_math import tanh as _tanh
from linea._ops_reduce import log_softmax, softmax  # noqa: F401 - defined with the reductions
from linea._ops_reduce import op_input as _tensor  # raw data accepted, as by Linear
from linea._tensor import Tensor

__all__ = ["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "softplus", "softmax",
           "log_softmax", "silu"]

_make = Tensor._make
_LOW = (_dtype.bfloat16, _dtype.float16)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return _relu(_tensor(input, "relu"))


def tanh(input: Tensor) -> Tensor:
    return _tanh(_tensor(input, "tanh"))


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e^-x), computed without overflow."""
    return _sigmoid(_tensor(input, "sigmoid"))


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope·x otherwise."""
    input = _tensor(input, "leaky_relu")
    x = input._data
    space = space_of(x)
    positive = x > 0
    out = space.where(positive, x, x * negative_slope)
    return _unary("LeakyRelu", input, out,
                  lambda grad: space.where(positive, grad, grad * negative_slope), (x,))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x) (``approximate='none'``) or its tanh approximation (``'tanh'``)."""
    input = _tensor(input, "gelu")
    x = input._data
    space = space_of(x)
    if approximate == "none":
        cdf = 0.5 * (1.0 + erf(x * (1 / math.sqrt(2.0))))
        out = x * cdf

        def gradient(grad):
            pdf = space.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
            return grad * (cdf + x * pdf)

    elif approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
        t = space.tanh(inner)
        out = 0.5 * x * (1 + t)

        def gradient(grad):
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)

    else:
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary("Gelu", input, out, gradient, (x,))


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x·sigmoid(x)."""
    input = _tensor(input, "silu")
    return input * sigmoid(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(βx)) / β, linear where βx > threshold (PyTorch's rule)."""
    input = _tensor(input, "softplus")
    x = input._data
    space = space_of(x)
    scaled = x * beta
    linear = scaled > threshold
    out = space.where(linear, x, stable_softplus(scaled) / beta)

    def gradient(grad):  # d softplus(βx)/β / dx = sigmoid(βx)
        return grad * space.where(linear, space.ones_like(scaled), stable_sigmoid(scaled))

    return _unary("Softplus", input, out, gradient, (x,))


