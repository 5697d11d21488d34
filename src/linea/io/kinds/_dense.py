"""Dense / Linear: ``linear`` (weight (out, in), PyTorch's layout) and ``qlinear`` (its int8 twin
with per-output-channel scales)."""
from __future__ import annotations

from linea import nn
from linea.io.kinds._kind import (LayerKind, LayerSpec, bias_shape, copied, dtype_name, holding,
                                  plain_row, row, weight_and_bias)
from linea.quantization import QuantizedLinear

__all__ = ["LINEAR", "QLINEAR"]


def _inspect_row(spec, index: int, convention: str) -> dict:
    keras = convention == "keras"
    shapes = (f"kernel {spec.weight.shape[::-1]}" if keras else f"weight {spec.weight.shape}") + \
        bias_shape(spec)
    return row(spec, index, "Dense" if keras else "Linear", convention, shapes,
               str(spec.weight.dtype), spec.parameter_count)


def _linear_module(spec) -> list:
    out_features, in_features = spec.weight.shape
    return [holding(nn.Linear(in_features, out_features, bias=spec.bias is not None,
                              dtype=dtype_name(spec.weight)), spec)]


def _quantized_module(spec) -> list:
    out_features, in_features = spec.weight.shape
    layer = QuantizedLinear(in_features, out_features, bias=spec.bias is not None)
    state = {"weight": spec.weight, "weight_scale": spec.extra["scale"]}
    if spec.bias is not None:
        state["bias"] = spec.bias
    layer.load_state_dict(state)
    return [layer]


def _linear_spec(module, shape, before) -> list:
    return [LayerSpec("linear", copied(module.weight._data),
                      None if module.bias is None else copied(module.bias._data))]


def _quantized_spec(module, shape, before) -> list:  # int8 (out, in) with its per-channel scales
    return [LayerSpec("qlinear", module.weight().numpy().copy(),
                      None if module.bias is None else copied(module.bias._data),
                      extra={"scale": module.weight_scale().numpy().copy()})]


def _keras_entries(spec) -> list:
    bias = [("bias", spec.bias)] if spec.bias is not None else []
    return [("kernel", spec.weight.T.copy())] + bias


LINEAR = LayerKind("linear", "dense", _inspect_row, lambda spec: ["linear"], _linear_module,
                   (nn.Linear,), _linear_spec, torch_entries=weight_and_bias,
                   keras_entries=_keras_entries, keras_variables=("kernel", "bias"))
QLINEAR = LayerKind("qlinear", "dense", lambda spec, index, convention: plain_row(spec, "qlinear"),
                    lambda spec: ["qlinear"], _quantized_module, (QuantizedLinear,),
                    _quantized_spec)
