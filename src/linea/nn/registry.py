"""The one table of activations that cross a boundary: layer lists, files, Keras, ONNX, compile.

Each entry names an activation (Keras's name where Keras has one), the ``nn`` module
class computing it and the settings it reads off that module, the Keras name it converts
to, the single ONNX op that computes it with the attributes that op takes (None where a
pattern of ops is needed, or where linea writes none), and the in-place array step
``linea.compile`` may use (bitwise equal to the eager op), if any. Every consumer reads
this table; none keeps its own. ``activation_of_module`` is a loop over it.

Keras activations without a PyTorch twin are listed in ``NO_TWIN`` with the reason, so a
file using one is refused by name, never approximated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from linea.backend import xp
from linea.nn.modules import _activation as modules

__all__ = ["Activation", "ACTIVATIONS", "NO_TWIN", "activation_of_module"]


@dataclass(frozen=True)
class Activation:
    name: str
    module: type | None             # the nn module class (None for "linear": no module)
    keras: str | None               # the Keras activation string; None where Keras has none
    onnx_op: str | None = None      # the one ONNX op computing it, if one does
    inplace: object = None          # buffer → buffer, in place, for compile
    defaults: dict = field(default_factory=dict)  # settings with Keras's defaults
    fixed: dict = field(default_factory=dict)     # module attributes this entry requires
    onnx_fixed: dict = field(default_factory=dict)     # ONNX attributes of a fixed value
    onnx_settings: dict = field(default_factory=dict)  # ONNX attribute → setting name

    def build(self, **settings):
        """The nn module for ``settings`` (None for "linear")."""
        return None if self.module is None else self.module(**self.fixed, **settings)

    def settings_of(self, module) -> dict | None:
        """This entry's settings read off ``module``, or None where the module is not this entry."""
        if self.module is None or type(module) is not self.module:
            return None
        if any(getattr(module, key) != value for key, value in self.fixed.items()):
            return None
        return {key: float(getattr(module, key)) for key in self.defaults}


def _relu_inplace(buffer):
    return xp.maximum(buffer, 0, out=buffer)


def _tanh_inplace(buffer):
    return xp.tanh(buffer, out=buffer)


ACTIVATIONS = {entry.name: entry for entry in (
    Activation("linear", None, "linear", "Identity", inplace=lambda buffer: buffer),
    Activation("relu", modules.ReLU, "relu", "Relu", inplace=_relu_inplace),
    Activation("tanh", modules.Tanh, "tanh", "Tanh", inplace=_tanh_inplace),
    Activation("sigmoid", modules.Sigmoid, "sigmoid", "Sigmoid"),
    Activation("gelu", modules.GELU, "gelu", fixed={"approximate": "none"}),
    Activation("gelu_tanh", modules.GELU, None, fixed={"approximate": "tanh"}),
    Activation("silu", modules.SiLU, "silu"),
    Activation("softmax", modules.Softmax, "softmax", fixed={"dim": -1}),
    Activation("log_softmax", modules.LogSoftmax, "log_softmax", fixed={"dim": -1}),
    Activation("leaky_relu", modules.LeakyReLU, "leaky_relu", defaults={"negative_slope": 0.2}),
    Activation("softplus", modules.Softplus, "softplus", fixed={"beta": 1.0},
               defaults={"threshold": float("inf")}),
    Activation("elu", modules.ELU, "elu", "Elu", defaults={"alpha": 1.0},
               onnx_settings={"alpha": "alpha"}),
    Activation("selu", modules.SELU, "selu", "Selu",
               onnx_fixed={"alpha": 1.6732632423543772, "gamma": 1.0507009873554805}),
    Activation("celu", modules.CELU, "celu", "Celu", defaults={"alpha": 1.0},
               onnx_settings={"alpha": "alpha"}),
    Activation("relu6", modules.ReLU6, "relu6"),
    Activation("hard_tanh", modules.Hardtanh, "hard_tanh",
               defaults={"min_val": -1.0, "max_val": 1.0}),
    Activation("hard_sigmoid", modules.Hardsigmoid, "hard_sigmoid", "HardSigmoid",
               onnx_fixed={"alpha": 1 / 6, "beta": 0.5}),
    Activation("hard_silu", modules.Hardswish, "hard_silu", "HardSwish"),
    Activation("softsign", modules.Softsign, "softsign", "Softsign"),
    Activation("log_sigmoid", modules.LogSigmoid, "log_sigmoid"),
    Activation("mish", modules.Mish, "mish"),
    Activation("tanh_shrink", modules.Tanhshrink, "tanh_shrink"),
    Activation("soft_shrink", modules.Softshrink, "soft_shrink", "Shrink", defaults={"lambd": 0.5},
               onnx_settings={"lambd": "lambd", "bias": "lambd"}),
    Activation("hard_shrink", modules.Hardshrink, "hard_shrink", "Shrink", defaults={"lambd": 0.5},
               onnx_fixed={"bias": 0.0}, onnx_settings={"lambd": "lambd"}),
    Activation("exponential", modules.Exp, "exponential", "Exp"),
)}

#: Keras 3 activations PyTorch has no exact twin for, with the reason they are refused.
NO_TWIN = {
    "squareplus": "Keras's squareplus, (x + √(x² + b)) / 2, has no PyTorch module",
    "sparse_plus": "Keras's sparse_plus (0 below −1, (x + 1)²/4 between, x above) has no "
                   "PyTorch module",
    "sparsemax": "Keras's sparsemax (a projection onto the simplex) has no PyTorch module",
    "sparse_sigmoid": "Keras's sparse_sigmoid has no PyTorch module",
    "threshold": "Keras's threshold needs its threshold and default_value arguments, which an "
                 "activation string cannot carry",
    "glu": "Keras's glu halves the last axis, which is a layer of its own in linea's chains",
}


def activation_of_module(module) -> tuple[str, dict] | None:
    """(name, settings) of the registry entry an ``nn`` module computes, or None."""
    for entry in ACTIVATIONS.values():
        settings = entry.settings_of(module)
        if settings is not None:
            return entry.name, settings
    return None
