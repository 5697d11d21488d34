"""``QuantizedLinear``: a Linear whose weight is int8 with a float32 scale per output channel."""
from __future__ import annotations

from linea._tensor import Tensor
from linea.backend import xp
from linea.backend._int8 import PackedWeight, quantize_weight
from linea.nn.functional._quantized import int8_linear
from linea.nn.modules._module import Module

__all__ = ["QuantizedLinear"]


class QuantizedLinear(Module):
    """y ≈ x Wᵀ + b with W held as int8 and each input row quantized at run time.

    Shapes: x (*, in_features) float32 → y (*, out_features) float32. State dict:
    ``weight`` int8 (out_features, in_features), ``weight_scale`` float32
    (out_features,) with W ≈ weight / weight_scale[:, None], and ``bias`` float32
    (out_features,) when the layer has one. The int8 weight lives only in the kernel's
    packed form (a quarter of float32's bytes); ``state_dict()`` unpacks a copy.
    Inference only: ``backward()`` through it raises.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self._weight = PackedWeight(xp.zeros((self.out_features, self.in_features), xp.int8),
                                    xp.ones((self.out_features,), xp.float32))
        if bias:
            self.register_buffer("bias", Tensor._make(xp.zeros((self.out_features,), xp.float32)))
        else:
            self.bias = None

    @classmethod
    def from_float(cls, linear) -> "QuantizedLinear":
        """The quantized twin of a float ``Linear`` (its weight and bias rounded as documented)."""
        weight = xp.asarray(linear.weight.detach().numpy(), dtype=xp.float32)
        layer = cls.__new__(cls)
        Module.__init__(layer)
        layer.out_features, layer.in_features = weight.shape
        layer._weight = PackedWeight(*quantize_weight(weight))
        if linear.bias is not None:
            bias = xp.array(linear.bias.detach().numpy(), dtype=xp.float32)
            layer.register_buffer("bias", Tensor._make(bias))
        else:
            layer.bias = None
        return layer

    @property
    def nbytes(self) -> int:
        """Bytes this layer holds: packed int8 weight, scales, and the float32 bias."""
        return self._weight.nbytes + (self.bias.numel() * 4 if self.bias is not None else 0)

    def weight(self) -> Tensor:
        """The int8 weight (out_features, in_features), unpacked (as torch's ``weight()``)."""
        return Tensor._make(self._weight.int8())

    def weight_scale(self) -> Tensor:
        return Tensor._make(self._weight.scale.copy())

    def forward(self, input) -> Tensor:
        bias = None if self.bias is None else self.bias._data
        return int8_linear(input, self._weight, bias)

    # ---- state dict: the packed weight read and written as plain int8 --------------------
    def _state_entries(self, prefix: str = ""):
        yield prefix + "weight", self, "weight", self.weight()
        yield prefix + "weight_scale", self, "weight_scale", self.weight_scale()
        yield from super()._state_entries(prefix)

    def _state_problem(self, name: str, value) -> str | None:
        if name == "weight" and value.dtype != xp.int8:
            return f"weight of an int8 QuantizedLinear must be int8, got {value.dtype}"
        if name == "weight" and (value == -128).any():
            return "weight of an int8 QuantizedLinear must lie in [-127, 127]; found -128"
        if name == "weight_scale" and not (xp.isfinite(value).all() and (value > 0).all()):
            return "weight_scale must be finite and positive"
        return None

    def _load_value(self, name: str, tensor, value, assign: bool) -> None:
        if name == "weight":
            self._weight = PackedWeight(value, self._weight.scale)
        elif name == "weight_scale":
            self._weight = PackedWeight(self._weight.int8(), value)
        else:
            super()._load_value(name, tensor, value, assign)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype=int8, scheme=per-channel symmetric")


