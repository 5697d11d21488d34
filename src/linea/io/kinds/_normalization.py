"""Normalization: ``layernorm`` (scale, shift over the last axes) and ``batchnorm`` (over the
channels of images or the features of vectors, with running statistics)."""
from __future__ import annotations

from linea.io.kinds._kind import LayerKind, row

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


LAYERNORM = LayerKind("layernorm", "layer_normalization", _layernorm_row,
                      lambda spec: [f"layernorm(eps={spec.eps!r})"])
BATCHNORM = LayerKind("batchnorm", "batch_normalization", _batchnorm_row,
                      lambda spec: [f"batchnorm(eps={spec.eps!r}, momentum={spec.extra['momentum']!r})"])
