"""PyTorch-compatible weight initialisers, all in place, all taking ``generator=``.

Fan rules follow PyTorch for a weight laid out (out_features, in_features,
*kernel): fan_in = size(1)·receptive field, fan_out = size(0)·receptive field.
The Keras flavour reuses ``variance_scaling_`` with its own (in, out) fans.
"""
from __future__ import annotations

import math
import warnings

from linea._autograd import no_grad
from linea.backend import copy_into, host_dtype, xp
from linea._random import draw_dtype, draw_normal, draw_uniform, fill_normal, fill_uniform
from linea._tensor import Tensor
from linea._versions import mark_written

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_",
           "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "trunc_normal_", "orthogonal_", "variance_scaling_"]

_LINEAR_LIKE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"Unsupported nonlinearity {nonlinearity!r}; expected one of "
        f"{list(_LINEAR_LIKE) + ['tanh', 'relu', 'leaky_relu', 'selu']}"
    )


def _calculate_fan_in_and_fan_out(shape) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(
            f"Fan in and fan out can not be computed for a tensor with fewer than 2 "
            f"dimensions (shape {tuple(shape)})"
        )
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _fan(shape, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} is not supported; use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(shape)
    return fan_in if mode == "fan_in" else fan_out


def _check(tensor) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init functions fill a linea.Tensor in place, got {type(tensor).__name__}")
    return tensor


@no_grad()
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with samples of U(a, b)."""
    return _check(tensor).uniform_(a, b, generator=generator)


@no_grad()
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with samples of N(mean, std²)."""
    return _check(tensor).normal_(mean, std, generator=generator)


@no_grad()
def constant_(tensor: Tensor, val: float) -> Tensor:
    return _check(tensor).fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


@no_grad()
def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix."""
    if _check(tensor).ndim != 2:
        raise ValueError(f"eye_ only supports 2-D tensors, got shape {tensor.shape}")
    copy_into(tensor._data, xp.eye(*tensor.shape, dtype=host_dtype(tensor._data.dtype)))
    mark_written(tensor._data)
    return tensor


@no_grad()
def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-D conv weight so the convolution is the identity."""
    shape = _check(tensor).shape
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"dirac_ only supports 3-, 4- and 5-D tensors, got shape {shape}")
    if shape[0] % groups:
        raise ValueError(f"dim 0 ({shape[0]}) must be divisible by groups ({groups})")
    out_per_group = shape[0] // groups
    tensor._data[...] = 0
    centre = tuple(size // 2 for size in shape[2:])
    for group in range(groups):
        for d in range(min(out_per_group, shape[1])):
            tensor._data[(group * out_per_group + d, d) + centre] = 1
    mark_written(tensor._data)
    return tensor


def _uniform_with_std(tensor: Tensor, std: float, generator) -> Tensor:
    """U(-a, a) of standard deviation ``std``: a = √3·std, in PyTorch's arithmetic."""
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def _glorot_std(tensor: Tensor, gain: float) -> float:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_check(tensor).shape)
    return gain * math.sqrt(2.0 / float(fan_in + fan_out)) if fan_in + fan_out else 0.0


def _he_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor.shape, mode))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """U(-a, a) with a = √3·gain·√(2 / (fan_in + fan_out)) (Glorot uniform)."""
    return _uniform_with_std(tensor, _glorot_std(tensor, gain), generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """N(0, std²) with std = gain·√(2 / (fan_in + fan_out)) (Glorot normal)."""
    return normal_(tensor, 0.0, _glorot_std(tensor, gain), generator)


def _zero_elements(tensor: Tensor) -> bool:
    if tensor.numel() == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """U(-bound, bound) with bound = √3·gain/√fan (He uniform)."""
    if _zero_elements(_check(tensor)):
        return tensor
    return _uniform_with_std(tensor, _he_std(tensor, a, mode, nonlinearity), generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """N(0, std²) with std = gain / √fan (He normal)."""
    if _zero_elements(_check(tensor)):
        return tensor
    return normal_(tensor, 0.0, _he_std(tensor, a, mode, nonlinearity), generator)


def truncated_normal_array(shape, dtype, mean, std, low, high, generator=None):
    """Samples of N(mean, std²) conditioned on [low, high], by the inverse CDF."""
    from scipy.special import ndtr, ndtri

    lower = ndtr((low - mean) / std) if std > 0 else 0.0
    upper = ndtr((high - mean) / std) if std > 0 else 1.0
    unit = draw_uniform(shape, xp.float64, 0.0, 1.0, generator)
    values = mean + std * ndtri(lower + (upper - lower) * unit)
    return xp.clip(values, low, high).astype(dtype)


@no_grad()
def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """N(mean, std²) truncated to [a, b] (absolute bounds, as in PyTorch).

    Where [a, b] holds more than 30 % of the mass (the default ±2σ window holds 95 %),
    torch's algorithm: draw ``normal_``, redraw the whole tensor and keep the new values
    where an old one fell outside, until none does — the same values as torch after the
    same seed. A narrower window uses the inverse CDF: the same distribution, other values.
    """
    if a >= b:
        raise ValueError(f"trunc_normal_ needs a < b, got a={a}, b={b}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    dtype = host_dtype(_check(tensor)._data.dtype)
    mass = (math.erf((b - mean) / std / math.sqrt(2.0)) - math.erf((a - mean) / std / math.sqrt(2.0))) / 2.0
    if mass > 0.3:  # torch's branch: redraw the whole tensor where a value fell outside
        low, high = dtype.type(a), dtype.type(b)
        values = draw_normal(tensor.shape, dtype, mean, std, generator)
        while True:
            outside = (values < low) | (values > high)
            if not outside.any():
                break
            values = xp.where(outside, draw_normal(tensor.shape, dtype, mean, std, generator), values)
    else:  # a narrow window: the inverse CDF (same distribution; torch's draws are not reproduced)
        values = truncated_normal_array(tensor.shape, dtype, mean, std, a, b, generator)
    copy_into(tensor._data, values)
    mark_written(tensor._data)
    return tensor


@no_grad()
def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a normal draw."""
    if _check(tensor).ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor of at least 2 dimensions, got {tensor.shape}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    # torch's draw (rows × cols normals in the tensor's dtype), so the stream moves as torch's
    # does; the QR runs in float64, so q matches torch's float32 QR only to round-off.
    dtype = draw_dtype(host_dtype(tensor._data.dtype))
    flat = draw_normal((rows, cols), dtype, 0.0, 1.0, generator).astype(xp.float64)
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    # Multiplying by the signs of R's diagonal makes the draw uniform (Haar).
    q = q * xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    copy_into(tensor._data, (gain * q).reshape(tensor.shape))
    mark_written(tensor._data)
    return tensor


@no_grad()
def variance_scaling_(tensor: Tensor, scale: float, fan: float, distribution: str,
                      generator=None) -> Tensor:
    """Keras's VarianceScaling core: variance scale/fan, drawn from ``distribution``.

    ``distribution`` is ``"uniform"``, ``"untruncated_normal"`` or
    ``"truncated_normal"`` (cut at ±2σ, σ rescaled so the variance is kept).
    """
    variance = scale / max(1.0, fan)
    data = _check(tensor)._data
    if distribution == "uniform":  # Keras's own arithmetic (√(3v), not PyTorch's √3·√v)
        limit = math.sqrt(3.0 * variance)
        fill_uniform(data, -limit, limit, generator)
    elif distribution == "untruncated_normal":
        fill_normal(data, 0.0, math.sqrt(variance), generator)
    elif distribution == "truncated_normal":
        # 0.8796… is the std of a unit normal truncated to [-2, 2].
        std = math.sqrt(variance) / 0.87962566103423978
        copy_into(data, truncated_normal_array(data.shape, host_dtype(data.dtype), 0.0, std,
                                               -2 * std, 2 * std, generator))
    else:
        raise ValueError(
            f"distribution {distribution!r} is not one of 'uniform', 'untruncated_normal', "
            "'truncated_normal'"
        )
    mark_written(data)
    return tensor
