"""Projections applied to a weight after each optimizer step: MaxNorm, NonNeg, UnitNorm."""
from __future__ import annotations

from linea.keras._registry import lookup
from linea.keras._registry import serialize as serialize_config

from linea.backend import xp

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "get", "serialize"]

class Constraint:
    """``constraint(array)`` returns the projected array (host NumPy in, NumPy out)."""

    def __call__(self, w):
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

class MaxNorm(Constraint):
    """Rescale each slice along ``axis`` whose L2 norm exceeds ``max_value``."""

    def __init__(self, max_value: float = 2.0, axis: int = 0) -> None:
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        norms = xp.sqrt(xp.sum(w * w, axis=self.axis, keepdims=True))
        desired = xp.clip(norms, 0, self.max_value)
        return w * (desired / (1e-7 + norms))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}

class NonNeg(Constraint):
    """Zero every negative entry."""

    def __call__(self, w):
        return w * (w >= 0)

class UnitNorm(Constraint):
    """Scale each slice along ``axis`` to unit L2 norm."""

    def __init__(self, axis: int = 0) -> None:
        self.axis = axis

    def __call__(self, w):
        return w / (1e-7 + xp.sqrt(xp.sum(w * w, axis=self.axis, keepdims=True)))

    def get_config(self) -> dict:
        return {"axis": self.axis}

_CLASSES = {"MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm}
_NAMES = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm}

def get(identifier):
    """A constraint from a Keras name, a config dict, an instance, a callable or None."""
    return lookup(identifier, "constraint", Constraint, _NAMES, _CLASSES)

def serialize(constraint):
    return serialize_config(constraint, "keras.constraints")
