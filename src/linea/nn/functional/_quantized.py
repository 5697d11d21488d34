"""``int8_linear``: the dynamically quantized affine map, forward only by default.

    y = float32(Σ_k xq[m, k] · wq[n, k]) / (w_scale[n] · x_scale[m]) + bias[n]

with each input row quantized at run time (``linea.backend._int8`` has the scheme
and the kernels). Shapes: input (*, in_features) float32 → output (*, out_features).
There is no gradient through the rounding: ``backward()`` raises unless the caller
asks for Keras's rule, the input gradient through the dequantized weight.
"""
from __future__ import annotations

import math

from linea._autograd import grad_enabled, record
from linea._errors import DTypeError, ShapeError
from linea._tensor import Tensor
from linea.backend import quiet, xp

__all__ = ["int8_linear"]


def _refuse(grad):
    raise RuntimeError(
        "an int8 quantized Linear has no backward: its weights are rounded integers. Train the "
        "float model and quantize it after (linea.quantization.quantize_dynamic), or run "
        "inference under linea.no_grad()")


@quiet
def int8_linear(input, packed, bias=None, *, input_gradient: bool = False) -> Tensor:
    """y = dequantized(int8 product) + bias for a ``PackedWeight`` (out_features, in_features).

    ``input_gradient=True`` gives Keras's gradient rule: grad_x = grad · dequantized(W).
    """
    if isinstance(input, Tensor):
        if input.dtype.numpy != xp.float32:
            raise DTypeError(f"an int8 quantized Linear takes float32 inputs, got {input.dtype}; "
                             f"convert with x.float()")
        x = input._data
    else:
        x = xp.asarray(input)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"int8_linear expects numbers, got {x.dtype} values")
        x = x.astype(xp.float32, copy=False)
        input = Tensor._make(x)
    out_features, in_features = packed.shape
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ShapeError(f"int8 quantized Linear expects inputs (*, {in_features}), got "
                         f"{tuple(x.shape)}")
    lead = x.shape[:-1]
    rows = xp.ascontiguousarray(x.reshape((math.prod(lead), in_features)))
    b = None if bias is None else xp.ascontiguousarray(bias, dtype=xp.float32)
    result = Tensor._make(packed.matmul(rows, b).reshape(lead + (out_features,)))
    if grad_enabled() and input._requires_grad:
        if input_gradient:
            def backward(grad):
                weight = packed.int8().astype(xp.float32) / packed.scale[:, None]
                return (grad.reshape((-1, out_features)) @ weight).reshape(x.shape),
            record(result, "Int8Linear", (input,), backward)
        else:
            record(result, "QuantizedLinear", (input,), _refuse)
    return result
