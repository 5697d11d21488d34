"""Normalization: ``layernorm`` (scale, shift over the last axes) and ``batchnorm`` (over the
channels of images or the features of vectors, with running statistics)."""
from __future__ import annotations

from linea import nn
import numpy as np

from linea.io.kinds._kind import (LayerKind, LayerSpec, copied, dtype_name, holding, row,
                                  weight_and_bias)

__all__ = ["LAYERNORM", "BATCHNORM"]


def _layernorm_row(spec, index: int, convention: str) -> dict:
    return row(spec, index, f"LayerNorm(eps={spec.eps:g})", convention,
               f"scale {spec.weight.shape}", str(spec.weight.dtype), spec.parameter_count)


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
    return [holding(nn.LayerNorm(spec.weight.shape, eps=spec.eps, bias=spec.bias is not None,
                                 dtype=dtype_name(spec.weight)), spec)]


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


def _layernorm_spec(module, shape, before) -> list:
    size = module.normalized_shape
    weight = np.ones(size, np.float32) if module.weight is None else copied(module.weight._data)
    bias = None if module.bias is None else copied(module.bias._data)
    return [LayerSpec("layernorm", weight, bias, eps=float(module.eps))]


def _batchnorm_spec(module, shape, before) -> list:
    kind = type(module).__name__
    if not module.track_running_stats:
        raise TypeError(f"{kind}(track_running_stats=False) normalizes with each batch's own "
                        "statistics even in eval mode; Keras's BatchNormalization cannot, so "
                        "it cannot be converted")
    if module.momentum is None:
        raise TypeError(f"{kind}(momentum=None) keeps a cumulative average, which Keras's "
                        "BatchNormalization has no setting for; set module.momentum to a number")
    if isinstance(module, nn.BatchNorm1d) and shape is not None and len(shape) != 1:
        raise TypeError("BatchNorm1d over (N, C, L) sequences cannot be converted; linea "
                        "converts BatchNorm1d on (N, features) and BatchNorm2d on images")
    return [LayerSpec("batchnorm", None if module.weight is None else copied(module.weight._data),
                      None if module.bias is None else copied(module.bias._data),
                      eps=float(module.eps),
                      extra={"running_mean": copied(module.running_mean._data),
                             "running_var": copied(module.running_var._data),
                             "num_batches_tracked": int(module.num_batches_tracked.item()),
                             "momentum": float(module.momentum),
                             "rank": 4 if isinstance(module, nn.BatchNorm2d) else 2})]


def _batchnorm_entries_torch(spec) -> list:
    extra = spec.extra
    return weight_and_bias(spec) + [
        ("running_mean", extra["running_mean"]), ("running_var", extra["running_var"]),
        ("num_batches_tracked", np.array(extra.get("num_batches_tracked", 0), np.int64))]


def _layernorm_entries_keras(spec) -> list:
    return [("gamma", spec.weight)] + ([("beta", spec.bias)] if spec.bias is not None else [])


LAYERNORM = LayerKind("layernorm", "layer_normalization", _layernorm_row,
                      lambda spec: [f"layernorm(eps={spec.eps!r})"], _layernorm_module,
                      (nn.LayerNorm,), _layernorm_spec, torch_entries=weight_and_bias,
                      keras_entries=_layernorm_entries_keras, keras_variables=("gamma", "beta"))
def _batchnorm_entries(spec) -> list[str]:
    return [f"batchnorm(eps={spec.eps!r}, momentum={spec.extra['momentum']!r})"]


BATCHNORM = LayerKind("batchnorm", "batch_normalization", _batchnorm_row, _batchnorm_entries,
                      _batchnorm_module, (nn.BatchNorm1d, nn.BatchNorm2d), _batchnorm_spec,
                      image=True, torch_entries=_batchnorm_entries_torch)
