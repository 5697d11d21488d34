"""layer_norm, batch_norm and dropout."""
from __future__ import annotations

import math

from linea import _dtype
from linea._autograd import needs_grad, record
from linea.backend import copy_of, host_dtype, namespace_of, quiet, space_of, xp
from linea._errors import ShapeError
from linea._random import draw_keep_mask
from linea._tensor import Tensor
from linea._versions import mark_written
from linea.nn.functional._activation import _tensor as _activation_input
from linea.nn.functional._linear import as_float_input

__all__ = ["layer_norm", "batch_norm", "batch_norm_over", "dropout"]

_make = Tensor._make


@quiet
def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / √(var + eps) · weight + bias over the last ``len(normalized_shape)`` dims.

    The variance is the biased one (divided by N), as in PyTorch and Keras. One
    fused node: the gradient is the closed form, tested against the composed ops.
    """
    if isinstance(input, Tensor) and input.dtype in (_dtype.bfloat16, _dtype.float16):
        # Computed in float32, the output rounded once to the input's dtype (PyTorch's CPU kernel).
        wide = [None if t is None else t.float() for t in (weight, bias)]
        return layer_norm(input.float(), normalized_shape, wide[0], wide[1], eps).to(input.dtype)
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not isinstance(input, Tensor):  # raw data, converted as a Linear converts it
        input = as_float_input(input, weight, "layer_norm()") if weight is not None else \
            _activation_input(input, "layer_norm")
    x = input._data
    count = len(normalized_shape)
    if x.shape[x.ndim - count:] != normalized_shape or x.ndim < count:
        raise ShapeError(
            f"layer_norm over normalized_shape={list(normalized_shape)} expects an input whose "
            f"last dimensions are {list(normalized_shape)}, got shape {tuple(x.shape)}"
        )
    for name, parameter in (("weight", weight), ("bias", bias)):
        if parameter is not None and parameter._data.shape != normalized_shape:
            raise ShapeError(f"layer_norm {name} must have shape {normalized_shape}, "
                             f"got {parameter._data.shape}")
    axes = tuple(range(x.ndim - count, x.ndim))
    space = space_of(x)
    mean = space.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    variance = space.mean(centered * centered, axis=axes, keepdims=True)
    rstd = 1.0 / space.sqrt(variance + eps)
    normalized = centered * rstd
    out = normalized * weight._data if weight is not None else copy_of(normalized)
    if bias is not None:
        out += bias._data
    result = _make(out)
    inputs = (input, weight, bias)
    if needs_grad(*inputs):
        lead = tuple(range(x.ndim - count))
        w = weight._data if weight is not None else None

        def backward(grad):
            grad_normalized = grad * w if w is not None else grad
            grad_x = rstd * (
                grad_normalized
                - space.mean(grad_normalized, axis=axes, keepdims=True)
                - normalized * space.mean(grad_normalized * normalized, axis=axes, keepdims=True)
            )
            grad_w = space.sum(grad * normalized, axis=lead) if weight is not None else None
            grad_b = space.sum(grad, axis=lead) if bias is not None else None
            return grad_x, grad_w, grad_b

        saved = tuple(t._data for t in inputs if t is not None)  # input, weight, bias as PyTorch
        record(result, "LayerNorm", inputs, backward, saved)
    return result


@quiet
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """(x − mean) / √(var + eps) · weight + bias per channel (dim 1), as PyTorch.

    Shapes: x (N, C, *) → same; running_mean, running_var, weight, bias (C,). With
    ``training`` the batch's statistics (over every dim but 1; biased variance) are used
    and the running ones, if given, move: r ← (1 − momentum)·r + momentum·batch, the
    variance term unbiased (·n/(n−1)). Otherwise the running statistics are used.
    """
    return batch_norm_over(input, 1, running_mean, running_var, weight, bias, training,
                           keep=1.0 - momentum, take=momentum, eps=eps, unbiased_update=True)


def _check_channels(x, axis, parameters) -> None:
    if x.ndim < 2:
        raise ShapeError(f"batch_norm expects an input with a batch and a channel dim, got shape "
                         f"{tuple(x.shape)}")
    channels = x.shape[axis]
    for name, value in parameters:
        if value is not None and tuple(value.shape) != (channels,):
            raise ShapeError(f"batch_norm: {name} must have shape ({channels},) for an input of "
                             f"shape {tuple(x.shape)} with channels on dim {axis}, got "
                             f"{tuple(value.shape)}")


def batch_norm_over(input, axis: int, running_mean, running_var, weight, bias, training: bool,
                    keep: float, take: float, eps: float, unbiased_update: bool) -> Tensor:
    """Batch normalization with channels on ``axis``; running stats r ← keep·r + take·batch.

    PyTorch's BatchNorm passes axis 1, keep = 1 − momentum, take = momentum and an
    unbiased variance update; Keras's BatchNormalization axis −1, keep = momentum,
    take = 1 − momentum and the biased variance. One fused node; low-precision inputs
    are computed in float32 and rounded once, as both frameworks do.
    """
    if isinstance(input, Tensor) and input.dtype in (_dtype.bfloat16, _dtype.float16):
        wide = [None if t is None else t.float() for t in (weight, bias)]
        return batch_norm_over(input.float(), axis, running_mean, running_var, wide[0], wide[1],
                               training, keep, take, eps, unbiased_update).to(input.dtype)
    if not isinstance(input, Tensor):
        input = _activation_input(input, "batch_norm")
    x = input._data
    stats = [(n, getattr(v, "_data", v)) for n, v in (("running_mean", running_mean),
                                                       ("running_var", running_var))]
    _check_channels(x, axis, stats + [("weight", weight), ("bias", bias)])
    axis = axis % x.ndim
    axes = tuple(a for a in range(x.ndim) if a != axis)
    shape = tuple(x.shape[a] if a == axis else 1 for a in range(x.ndim))
    space = space_of(x)
    count = math.prod(x.shape[a] for a in axes)
    if training:
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {tuple(x.shape)}")
        mean = space.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        variance = space.mean(centered * centered, axis=axes, keepdims=True)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var (or "
                             "training=True to use the batch's statistics)")
        mean = space.reshape(stats[0][1], shape)
        variance = space.reshape(stats[1][1], shape)
        centered = x - mean
    rstd = 1.0 / space.sqrt(variance + eps)
    normalized = centered * rstd
    out = normalized * space.reshape(weight._data, shape) if weight is not None else copy_of(normalized)
    if bias is not None:
        out = out + space.reshape(bias._data, shape)
    if training:  # the running statistics move only once the batch is known to be good
        for (name, target), batch in zip(stats, (mean, variance)):
            if target is None:
                continue
            batch = space.reshape(batch, (x.shape[axis],))
            if name == "running_var" and unbiased_update:
                batch = batch * (count / (count - 1))
            target[...] = space.astype(target * keep + batch * take, target.dtype)
            mark_written(target)
    result = _make(out)
    inputs = (input, weight, bias)
    if needs_grad(*inputs):
        w = space.reshape(weight._data, shape) if weight is not None else None

        def backward(grad):
            grad_normalized = grad * w if w is not None else grad
            if training:
                grad_x = rstd * (
                    grad_normalized
                    - space.mean(grad_normalized, axis=axes, keepdims=True)
                    - normalized * space.mean(grad_normalized * normalized, axis=axes, keepdims=True))
            else:  # the statistics are constants: an affine map
                grad_x = grad_normalized * rstd
            grad_w = space.sum(grad * normalized, axis=axes) if weight is not None else None
            grad_b = space.sum(grad, axis=axes) if bias is not None else None
            return grad_x, grad_w, grad_b

        record(result, "BatchNorm", inputs, backward, tuple(t._data for t in inputs if t is not None))
    return result


@quiet
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator=None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only).

    The mask is torch 2.13's CPU ``bernoulli_(1 − p)``: one float64 uniform per element,
    kept where below 1 − p — the same mask as torch after the same seed (older torch builds
    drew it from MKL's stream on Intel CPUs, and differ).
    """
    if not 0.0 <= p <= 1.0 or (isinstance(p, float) and math.isnan(p)):
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not isinstance(input, Tensor):
        input = _activation_input(input, "dropout")
    if not training or p == 0.0:
        return input
    x = input._data
    if type(x) is not xp.ndarray:  # another library: the host draws the mask, as for NumPy
        space = namespace_of(x)
        if p == 1.0:
            return input * _make(space.zeros((), dtype=x.dtype))
        dtype = host_dtype(x.dtype)
        keep = draw_keep_mask(x.shape, 1.0 - p, generator)
        return input * _make(space.asarray(keep.astype(dtype) / dtype.type(1.0 - p)))
    if p == 1.0:
        return input * xp.zeros((), x.dtype)
    # torch: noise = bernoulli_(1 − p) in the input's dtype, noise /= 1 − p, input · noise.
    keep = draw_keep_mask(x.shape, 1.0 - p, generator)
    return input * _make(keep.astype(x.dtype) / x.dtype.type(1.0 - p))
