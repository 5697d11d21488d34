"""Activations: relu, leaky_relu, gelu, tanh, sigmoid, softplus, softmax, log_softmax, and
the rest of PyTorch's pointwise ones that Keras 3 shares — elu, selu, celu, relu6, hardtanh,
hardsigmoid, hardswish, softsign, logsigmoid, mish, tanhshrink, softshrink, hardshrink.

Each nonlinearity is a primitive with its own gradient, whose mask at the kinks is
PyTorch's (e.g. hardtanh passes no gradient at its bounds); softmax and log_softmax
subtract the row maximum first, so logits of ±1e4 never overflow.
"""
from __future__ import annotations

import math

from linea import _dtype
from linea.backend import erf, quiet, space_of
from linea._ops_math import relu as _relu
from linea._ops_math import sigmoid as _sigmoid
from linea._ops_math import _unary, stable_sigmoid, stable_softplus
from linea._ops_math import tanh as _tanh
from linea._ops_reduce import log_softmax, softmax  # noqa: F401 - defined with the reductions
from linea._ops_reduce import op_input as _tensor  # raw data accepted, as by Linear
from linea._tensor import Tensor

__all__ = ["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "softplus", "softmax",
           "log_softmax", "silu", "elu", "selu", "celu", "relu6", "hardtanh", "hardsigmoid",
           "hardswish", "softsign", "logsigmoid", "mish", "tanhshrink", "softshrink", "hardshrink"]

_make = Tensor._make
_LOW = (_dtype.bfloat16, _dtype.float16)


@quiet
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return _relu(_tensor(input, "relu"))


@quiet
def tanh(input: Tensor) -> Tensor:
    return _tanh(_tensor(input, "tanh"))


@quiet
def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e^-x), computed without overflow."""
    return _sigmoid(_tensor(input, "sigmoid"))


@quiet
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


@quiet
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x) (``approximate='none'``) or its tanh approximation (``'tanh'``).

    At ±∞ linea gives the limits, gelu(+∞) = +∞ and gelu(−∞) = 0, with gradients 1 and 0;
    PyTorch gives NaN there (its formula meets ∞·0). Finite inputs agree with PyTorch.
    """
    input = _tensor(input, "gelu")
    x = input._data
    space = space_of(x)
    infinite = space.isinf(x)

    def finite_only(term):  # the x·(…) terms that are ∞·0 at ±∞, where their limit is 0
        return space.where(infinite, space.zeros_like(term), term)

    if approximate == "none":
        cdf = 0.5 * (1.0 + erf(x * (1 / math.sqrt(2.0))))
        out = space.where(infinite & (x > 0), x, finite_only(x * cdf))

        def gradient(grad):
            pdf = space.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
            return grad * (cdf + finite_only(x * pdf))

    elif approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
        t = space.tanh(inner)
        out = space.where(infinite & (x > 0), x, finite_only(0.5 * x * (1 + t)))

        def gradient(grad):
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return grad * (0.5 * (1 + t) + finite_only(0.5 * x * (1 - t * t) * d_inner))

    else:
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary("Gelu", input, out, gradient, (x,))


@quiet
def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x·sigmoid(x)."""
    input = _tensor(input, "silu")
    return input * sigmoid(input)


@quiet
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




def _pointwise(name: str, input, function):
    """``function(x, space) -> (out, gradient factor)``: out, and d out / dx read at backward."""
    input = _tensor(input, name.lower())
    x = input._data
    out, factor = function(x, space_of(x))
    return _unary(name, input, out, lambda grad: grad * factor(), (x,))


def _elu_core(x, space, alpha: float, scale: float, input_scale: float,
              backward_input_scale: float | None = None):
    """PyTorch's one ELU kernel: scale·x above 0, scale·alpha·(e^(input_scale·x) − 1) below;
    the gradient below 0 is scale·alpha·input_scale·e^(input_scale·x)."""
    negative = x <= 0
    below = space.where(negative, x, space.zeros_like(x))
    out = space.where(negative, (space.exp(below * input_scale) - 1) * (alpha * scale), x * scale)
    slope = input_scale if backward_input_scale is None else backward_input_scale

    def factor():
        return space.where(negative, space.exp(below * slope) * slope * (alpha * scale),
                           space.full_like(x, scale))

    return out, factor


@quiet
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha·(eˣ − 1) otherwise."""
    return _pointwise("Elu", input, lambda x, space: _elu_core(x, space, alpha, 1.0, 1.0))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@quiet
def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale·elu(x, alpha), Klambauer et al.'s constants (alpha ≈ 1.6733, scale ≈ 1.0507)."""
    return _pointwise("Selu", input,
                      lambda x, space: _elu_core(x, space, _SELU_ALPHA, _SELU_SCALE, 1.0))


@quiet
def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha·(e^(x/alpha) − 1))."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides x)")
    # PyTorch's celu gradient takes 1/alpha with alpha rounded to float32 first
    # (derivatives.yaml: 1.0 / alpha.toFloat()); in float64 that shows at 1e-8.
    float32_alpha = float(_dtype.float32.numpy.type(alpha))
    return _pointwise("Celu", input, lambda x, space: _elu_core(
        x, space, alpha, 1.0, 1.0 / alpha, 1.0 / float32_alpha))


@quiet
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside, 0 at and beyond."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")

    def function(x, space):
        inside = (x > min_val) & (x < max_val)
        out = space.where(x < min_val, space.full_like(x, min_val),
                          space.where(x > max_val, space.full_like(x, max_val), x))
        return out, lambda: space.where(inside, space.ones_like(x), space.zeros_like(x))

    return _pointwise("Hardtanh", input, function)


@quiet
def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): ``hardtanh(x, 0, 6)``, as PyTorch computes it."""
    return hardtanh(input, 0.0, 6.0)


_ONE_SIXTH_FLOAT32 = 0.16666667163372040  # float32(1/6)


@quiet
def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6 (slope 1/6 — Keras 3's ``hard_sigmoid`` too; Keras 2's was 0.2)."""
    def function(x, space):
        out = space.where(x <= -3, space.zeros_like(x),
                          space.where(x >= 3, space.ones_like(x), (x + 3) / 6))
        # PyTorch's gradient multiplies by 1/6 rounded to float32 (its kernel's constant is
        # 1.0f / 6.0f), in float64 too.
        return out, lambda: space.where((x > -3) & (x < 3), space.full_like(x, _ONE_SIXTH_FLOAT32),
                                        space.zeros_like(x))

    return _pointwise("Hardsigmoid", input, function)


@quiet
def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x·relu6(x + 3) / 6 (Keras's ``hard_silu``/``hard_swish``)."""
    def function(x, space):
        out = space.where(x <= -3, space.zeros_like(x), space.where(x >= 3, x, x * (x + 3) / 6))
        return out, lambda: space.where(x <= -3, space.zeros_like(x),
                                        space.where(x < 3, x / 3 + 0.5, space.ones_like(x)))

    return _pointwise("Hardswish", input, function)


@quiet
def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    def function(x, space):
        denominator = 1 + space.abs(x)
        return x / denominator, lambda: 1 / (denominator * denominator)

    return _pointwise("Softsign", input, function)


@quiet
def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = −softplus(−x), computed without overflow."""
    def function(x, space):
        return -stable_softplus(-x), lambda: stable_sigmoid(-x)

    return _pointwise("LogSigmoid", input, function)


@quiet
def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x·tanh(softplus(x))."""
    def function(x, space):
        t = space.tanh(stable_softplus(x))
        return x * t, lambda: t + x * stable_sigmoid(x) * (1 - t * t)

    return _pointwise("Mish", input, function)


@quiet
def tanhshrink(input: Tensor) -> Tensor:
    """x − tanh(x)."""
    def function(x, space):
        t = space.tanh(x)
        return x - t, lambda: t * t

    return _pointwise("Tanhshrink", input, function)


def _shrink(name: str, input, lambd: float, shift: bool):
    if lambd < 0:
        raise ValueError(f"{name.lower()}: lambd must be non-negative, got {lambd}")

    def function(x, space):
        kept = (x < -lambd) | (x > lambd)
        moved = space.where(x > 0, x - lambd, x + lambd) if shift else x
        return space.where(kept, moved, space.zeros_like(x)), \
            lambda: space.where(kept, space.ones_like(x), space.zeros_like(x))

    return _pointwise(name, input, function)


@quiet
def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x − lambd above lambd, x + lambd below −lambd, 0 between."""
    return _shrink("Softshrink", input, lambd, shift=True)


@quiet
def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x outside [−lambd, lambd], 0 inside."""
    return _shrink("Hardshrink", input, lambd, shift=False)
