"""Dense / Linear: ``linear`` (weight (out, in), PyTorch's layout) and ``qlinear`` (its int8 twin
with per-output-channel scales)."""
from __future__ import annotations

from linea import nn
from linea.io.kinds._kind import LayerKind, bias_shape, dtype_name, plain_row, row

__all__ = ["LINEAR", "QLINEAR"]


def _inspect_row(spec, index: int, convention: str) -> dict:
    keras = convention == "keras"
    shapes = (f"kernel {spec.weight.shape[::-1]}" if keras else f"weight {spec.weight.shape}") + \
        bias_shape(spec)
    return row(spec, index, "Dense" if keras else "Linear", convention, shapes,
               str(spec.weight.dtype), spec.parameter_count)


def _linear_module(spec) -> list:
    out_features, in_features = spec.weight.shape
    layer = nn.Linear(in_features, out_features, bias=spec.bias is not None,
                      dtype=dtype_name(spec.weight))
    layer.weight._data[...] = spec.weight
    if spec.bias is not None:
        layer.bias._data[...] = spec.bias
    return [layer]


def _quantized_module(spec) -> list:
    from linea.quantization import QuantizedLinear

    out_features, in_features = spec.weight.shape
    layer = QuantizedLinear(in_features, out_features, bias=spec.bias is not None)
    state = {"weight": spec.weight, "weight_scale": spec.extra["scale"]}
    if spec.bias is not None:
        state["bias"] = spec.bias
    layer.load_state_dict(state)
    return [layer]


LINEAR = LayerKind("linear", "dense", _inspect_row, lambda spec: ["linear"], _linear_module)
QLINEAR = LayerKind("qlinear", "dense", lambda spec, index, convention: plain_row(spec, "qlinear"),
                    lambda spec: ["qlinear"], _quantized_module)
