"""Keras-style global settings: the default float type and the fuzz factor epsilon."""
from __future__ import annotations

from linea import _dtype

__all__ = ["floatx", "set_floatx", "epsilon", "set_epsilon", "dtype_policy", "set_dtype_policy"]

_FLOATX = ["float32"]
_EPSILON = [1e-7]
_POLICY = [None]  # None: floatx()'s policy


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


def dtype_policy():
    """The global dtype policy new layers take (``floatx()``'s unless set)."""
    from linea.keras import dtype_policies

    return _POLICY[0] if _POLICY[0] is not None else dtype_policies.DTypePolicy(floatx())


def set_dtype_policy(policy) -> None:
    """Set the global dtype policy: "mixed_bfloat16", "mixed_float16", "float32", … or a policy."""
    from linea.keras import dtype_policies

    _POLICY[0] = dtype_policies.get(policy)


def resolve_policy(dtype):
    """A layer's DTypePolicy from its ``dtype`` argument (None: the global policy)."""
    from linea.keras import dtype_policies

    if dtype is None:
        return dtype_policy()
    if isinstance(dtype, str) and dtype not in dtype_policies.POLICY_NAMES:
        resolve_dtype(dtype)  # a dtype name that is not a float: its clear error
    return dtype_policies.get(dtype)


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
