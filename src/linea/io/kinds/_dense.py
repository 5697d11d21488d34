"""Dense / Linear: ``linear`` (weight (out, in), PyTorch's layout) and ``qlinear`` (its int8 twin
with per-output-channel scales)."""
from __future__ import annotations

from linea.io.kinds._kind import LayerKind, bias_shape, plain_row, row

__all__ = ["LINEAR", "QLINEAR"]


def _inspect_row(spec, index: int, convention: str) -> dict:
    keras = convention == "keras"
    shapes = (f"kernel {spec.weight.shape[::-1]}" if keras else f"weight {spec.weight.shape}") + \
        bias_shape(spec)
    return row(spec, index, "Dense" if keras else "Linear", convention, shapes,
               str(spec.weight.dtype), spec.parameter_count)


LINEAR = LayerKind("linear", "dense", _inspect_row, lambda spec: ["linear"])
QLINEAR = LayerKind("qlinear", "dense", lambda spec, index, convention: plain_row(spec, "qlinear"),
                    lambda spec: ["qlinear"])
