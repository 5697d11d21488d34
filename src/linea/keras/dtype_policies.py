"""Keras 3's dtype policies: a layer's variable dtype and its compute dtype.

``"float32"``, ``"float64"``, ``"bfloat16"``, ``"float16"``: both dtypes the same.
``"mixed_bfloat16"`` / ``"mixed_float16"``: variables in float32 (the master weights),
computation in bfloat16 / float16 — inputs and weights are cast to the compute dtype
inside ``call`` (recorded casts, so gradients reach the float32 variables), layer
outputs are in the compute dtype, and losses compute in float32. Under
``"mixed_float16"`` ``Model.compile`` wraps the optimizer in a ``LossScaleOptimizer``
(Keras's ``auto_scale_loss=True``).
"""
from __future__ import annotations

from linea import _dtype

__all__ = ["DTypePolicy", "get", "POLICY_NAMES"]

POLICY_NAMES = ("float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16")


class DTypePolicy:
    """A named pair (variable_dtype, compute_dtype), as ``keras.DTypePolicy``."""

    quantization_mode = None

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            from linea.keras.config import floatx

            name = floatx()
        if not isinstance(name, str) or name not in POLICY_NAMES:
            raise ValueError(f"Cannot convert '{name}' to a mixed precision DTypePolicy. Valid "
                             f"policies include 'mixed_float16', 'mixed_bfloat16', and the name "
                             f"of any float dtype such as 'float32'.")
        self.name = name
        if name.startswith("mixed_"):
            self.variable_dtype, self.compute_dtype = "float32", name[len("mixed_"):]
        else:
            self.variable_dtype = self.compute_dtype = name

    @property
    def variable(self) -> _dtype.DType:
        return _dtype.as_dtype(self.variable_dtype)

    @property
    def compute(self) -> _dtype.DType:
        return _dtype.as_dtype(self.compute_dtype)

    def get_config(self) -> dict:
        return {"name": self.name}

    def __eq__(self, other) -> bool:
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self.name}">'


def get(identifier) -> DTypePolicy:
    """A policy from a name, a policy, a linea dtype, or a Keras config dict."""
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):  # {"class_name": "DTypePolicy", "config": {"name": ...}}
        config = identifier.get("config") or {}
        if identifier.get("class_name") == "QuantizedDTypePolicy":  # the layer quantizes itself
            identifier = config.get("source_name")
        else:
            identifier = config.get("name")
    if isinstance(identifier, _dtype.DType):
        identifier = identifier.name
    if identifier is not None and not isinstance(identifier, str) and hasattr(identifier, "name"):
        identifier = identifier.name  # a real Keras DTypePolicy
    return DTypePolicy(identifier)
