"""Layers that move values without weights: ``flatten`` (to (N, features); of images, their
(C, H, W) order recorded) and ``dropout`` (the identity at inference, its rate kept)."""
from __future__ import annotations

import numpy as np

from linea import nn
from linea._creation import as_tensor
from linea._tensor import Tensor
from linea.io.kinds._kind import LayerKind, LayerSpec, plain_row

__all__ = ["FLATTEN", "DROPOUT", "OnnxFlatten"]


class OnnxFlatten(nn.Module):
    """ONNX's Flatten: (d0, …, dn) → (d0·…·d(axis-1), d(axis)·…·dn), always 2-D."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, input):
        tensor = input if isinstance(input, Tensor) else as_tensor(input)
        shape = tuple(tensor.shape)
        if not 0 <= self.axis <= len(shape):
            raise ValueError(f"ONNX Flatten axis {self.axis} is out of range for an input of shape "
                             f"{shape}")
        rows = int(np.prod(shape[:self.axis], dtype=np.int64))
        return tensor.reshape(rows, int(np.prod(shape[self.axis:], dtype=np.int64)))

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


def _flatten_module(spec) -> list:
    axis = spec.extra.get("onnx_axis")
    return [nn.Flatten() if axis is None else OnnxFlatten(axis)]


def _flatten_spec(module, shape, before) -> list:
    """A flatten; of images it records their (C, H, W), or that they are not known."""
    if isinstance(module, OnnxFlatten):
        return [LayerSpec("flatten", extra={"onnx_axis": module.axis})]
    if (module.start_dim, module.end_dim) != (1, -1):
        raise TypeError("only Flatten(start_dim=1, end_dim=-1) can be converted")
    if shape is not None and len(shape) == 3:
        return [LayerSpec("flatten", extra={"image_shape": tuple(shape)})]
    from linea.io.kinds import KINDS  # the table this row belongs to

    if shape is None and any(KINDS[spec.kind].image for spec in before):
        return [LayerSpec("flatten", extra={"image_shape": None})]
    return [LayerSpec("flatten")]


FLATTEN = LayerKind("flatten", None, lambda spec, index, convention: plain_row(spec, "flatten"),
                    lambda spec: ["flatten"], _flatten_module, (nn.Flatten, OnnxFlatten),
                    _flatten_spec, keras_weightless=("flatten",))
DROPOUT = LayerKind("dropout", None, lambda spec, index, convention: plain_row(spec, "dropout"),
                    lambda spec: [f"dropout(p={spec.rate!r})"],
                    lambda spec: [nn.Dropout(spec.rate)], (nn.Dropout,),
                    lambda module, shape, before: [LayerSpec("dropout", rate=float(module.p))],
                    keras_weightless=("dropout",))
