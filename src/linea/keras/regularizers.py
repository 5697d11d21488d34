"""Weight penalties added to the training loss: L1, L2, L1L2 (Keras's definitions)."""
from __future__ import annotations

from linea.keras._registry import lookup
from linea.keras._registry import serialize as serialize_config

from linea._tensor import Tensor

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "serialize"]

class Regularizer:
    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

def _non_negative(value, name: str) -> float:
    value = float(value)
    if value < 0:
        raise ValueError(f"{name} must be a non-negative float, got {value}")
    return value

class L1(Regularizer):
    """l1 · Σ|x|."""

    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = _non_negative(l1, "l1")

    def __call__(self, x: Tensor) -> Tensor:
        return x.abs().sum() * self.l1

    def get_config(self) -> dict:
        return {"l1": self.l1}

class L2(Regularizer):
    """l2 · Σx² (no ½, as in Keras)."""

    def __init__(self, l2: float = 0.01) -> None:
        self.l2 = _non_negative(l2, "l2")

    def __call__(self, x: Tensor) -> Tensor:
        return (x * x).sum() * self.l2

    def get_config(self) -> dict:
        return {"l2": self.l2}

class L1L2(Regularizer):
    """l1 · Σ|x| + l2 · Σx²."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1, self.l2 = _non_negative(l1, "l1"), _non_negative(l2, "l2")

    def __call__(self, x: Tensor) -> Tensor:
        penalty = x.abs().sum() * self.l1
        return penalty + (x * x).sum() * self.l2

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2}

def get(identifier):
    """A regularizer from a Keras name, a config dict, an instance, a callable or None."""
    return lookup(identifier, "regularizer", Regularizer, _NAMES, _CLASSES)

def serialize(regularizer):
    return serialize_config(regularizer, "keras.regularizers")
