"""The one table of activations that cross a boundary: layer lists, files, Keras, ONNX, compile.

Each entry names an activation (Keras's name where Keras has one), the ``nn``
module computing it from its settings, the Keras name it converts to, the
single ONNX op that computes it (None where a pattern of ops is needed), and
the in-place array step ``linea.compile`` may use (bitwise equal to the eager
op), if any. Every consumer reads this table; none keeps its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from linea.backend import xp
from linea.nn.modules import _activation as modules

__all__ = ["Activation", "ACTIVATIONS", "activation_of_module"]


@dataclass(frozen=True)
class Activation:
    name: str
    module: object                  # settings → nn module (None for "linear": no module)
    keras: str | None               # the Keras activation string; None where Keras has none
    onnx_op: str | None = None      # the one ONNX op computing it, if one does
    inplace: object = None          # buffer → buffer, in place, for compile
    defaults: dict = field(default_factory=dict)  # settings with Keras's defaults


def _relu_inplace(buffer):
    return xp.maximum(buffer, 0, out=buffer)


def _tanh_inplace(buffer):
    return xp.tanh(buffer, out=buffer)


ACTIVATIONS = {entry.name: entry for entry in (
    Activation("linear", None, "linear", "Identity", inplace=lambda buffer: buffer),
    Activation("relu", lambda: modules.ReLU(), "relu", "Relu", inplace=_relu_inplace),
    Activation("tanh", lambda: modules.Tanh(), "tanh", "Tanh", inplace=_tanh_inplace),
    Activation("sigmoid", lambda: modules.Sigmoid(), "sigmoid", "Sigmoid"),
    Activation("gelu", lambda: modules.GELU(), "gelu"),
    Activation("gelu_tanh", lambda: modules.GELU(approximate="tanh"), None),
    Activation("silu", lambda: modules.SiLU(), "silu"),
    Activation("softmax", lambda: modules.Softmax(dim=-1), "softmax"),
    Activation("log_softmax", lambda: modules.LogSoftmax(dim=-1), "log_softmax"),
    Activation("leaky_relu", lambda negative_slope: modules.LeakyReLU(negative_slope), "leaky_relu",
               defaults={"negative_slope": 0.2}),
    Activation("softplus", lambda threshold: modules.Softplus(beta=1.0, threshold=threshold),
               "softplus", defaults={"threshold": float("inf")}),
)}


def activation_of_module(module) -> tuple[str, dict] | None:
    """(name, settings) of the registry entry an ``nn`` module computes, or None."""
    kind = type(module)
    simple = {modules.ReLU: "relu", modules.Tanh: "tanh", modules.Sigmoid: "sigmoid",
              modules.SiLU: "silu"}
    if kind in simple:
        return simple[kind], {}
    if kind is modules.GELU:
        return ("gelu" if module.approximate == "none" else "gelu_tanh"), {}
    if kind is modules.Softmax and module.dim == -1:
        return "softmax", {}
    if kind is modules.LogSoftmax and module.dim == -1:
        return "log_softmax", {}
    if kind is modules.LeakyReLU:
        return "leaky_relu", {"negative_slope": float(module.negative_slope)}
    if kind is modules.Softplus and module.beta == 1.0:
        return "softplus", {"threshold": float(module.threshold)}
    return None
