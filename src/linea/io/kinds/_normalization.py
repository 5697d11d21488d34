"""Normalization: ``layernorm`` (scale, shift over the last axes) and ``batchnorm`` (over the
channels of images or the features of vectors, with running statistics)."""
from __future__ import annotations

from linea import nn
from linea.io.kinds._kind import LayerKind, dtype_name, row

__all__ = ["LAYERNORM", "BATCHNORM"]


def _layernorm_row(spec, index: int, convention: str) -> dict:
    return row(spec, index, f"LayerNorm(eps={spec.eps:g})", convention, f"scale {spec.weight.shape}",
               str(spec.weight.dtype), spec.parameter_count)


def _batchnorm_row(spec, index: int, convention: str) -> dict:
    extra, keras = spec.extra, convention == "keras"
    size = len(extra["running_mean"])
    momentum = extra["momentum"]
    label = (f"BatchNormalization(epsilon={spec.eps:g}, momentum={1 - momentum:.6g})" if keras
             else f"BatchNorm(eps={spec.eps:g}, momentum={momentum:.6g})")
    names = ("gamma", "beta", "moving_mean", "moving_variance") if keras else \
        ("weight", "bias", "running_mean", "running_var")
    present = [spec.weight is not None, spec.bias is not None, True, True]
    shapes = ", ".join(f"{name} ({size},)" for name, there in zip(names, present) if there)
    return row(spec, index, label, convention, shapes, str(extra["running_mean"].dtype),
               spec.parameter_count + 2 * size)


def _layernorm_module(spec) -> list:
    norm = nn.LayerNorm(spec.weight.shape, eps=spec.eps, bias=spec.bias is not None,
                        dtype=dtype_name(spec.weight))
    norm.weight._data[...] = spec.weight
    if spec.bias is not None:
        norm.bias._data[...] = spec.bias
    return [norm]


def _batchnorm_module(spec) -> list:
    extra = spec.extra
    if spec.weight is None and spec.bias is not None:
        raise TypeError("a BatchNormalization with beta but no gamma (scale=False) has no "
                        "nn.BatchNorm twin (PyTorch's affine=False drops both)")
    size = len(extra["running_mean"])
    module = (nn.BatchNorm2d if extra["rank"] == 4 else nn.BatchNorm1d)(
        size, eps=spec.eps, momentum=extra["momentum"], affine=spec.weight is not None,
        bias=spec.bias is not None, dtype=dtype_name(extra["running_mean"]))
    if spec.weight is not None:
        module.weight._data[...] = spec.weight
    if spec.bias is not None:
        module.bias._data[...] = spec.bias
    module.running_mean._data[...] = extra["running_mean"]
    module.running_var._data[...] = extra["running_var"]
    module.num_batches_tracked._data[...] = extra.get("num_batches_tracked", 0)
    return [module]


LAYERNORM = LayerKind("layernorm", "layer_normalization", _layernorm_row,
                      lambda spec: [f"layernorm(eps={spec.eps!r})"], _layernorm_module)
BATCHNORM = LayerKind("batchnorm", "batch_normalization", _batchnorm_row,
                      lambda spec: [f"batchnorm(eps={spec.eps!r}, momentum={spec.extra['momentum']!r})"],
                      _batchnorm_module)
