"""Keras-style global settings: the default float type and the fuzz factor epsilon."""
from __future__ import annotations

from linea import _dtype

__all__ = ["floatx", "set_floatx", "epsilon", "set_epsilon"]

_FLOATX = ["float32"]
_EPSILON = [1e-7]


def floatx() -> str:
    """The dtype of new layers' weights when none is given ("float32" by default)."""
    return _FLOATX[0]


def set_floatx(value: str) -> None:
    if value not in ("float16", "float32", "float64", "bfloat16"):
        raise ValueError(f"floatx must be one of 'float16', 'float32', 'float64', 'bfloat16'; got {value!r}")
    _FLOATX[0] = value


def epsilon() -> float:
    """The fuzz factor Keras clips probabilities with (1e-7)."""
    return _EPSILON[0]


def set_epsilon(value: float) -> None:
    _EPSILON[0] = float(value)


def resolve_dtype(dtype) -> _dtype.DType:
    """A layer's dtype from a name, a dtype, a Keras DTypePolicy config, or floatx()."""
    if dtype is None:
        return _dtype.as_dtype(floatx())
    if isinstance(dtype, dict):  # {"class_name": "DTypePolicy", "config": {"name": "float32"}}
        dtype = dtype.get("config", {}).get("name", floatx())
    if hasattr(dtype, "name") and not isinstance(dtype, (str, _dtype.DType)):
        dtype = dtype.name  # a Keras DTypePolicy object
    resolved = _dtype.as_dtype(dtype)
    if not resolved.is_floating_point:
        raise TypeError(f"a Keras layer's dtype must be floating point, got {resolved}")
    return resolved
