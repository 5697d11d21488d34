"""The one lazy-shape mechanism: read the input's shape so weights can be made at the first call.

``LazyLinear`` and the Keras flavour's layers both build their weights from
``input_shape_of(first_input)``; each keeps its own framework's layout.
"""
from __future__ import annotations

from linea.backend import xp
from linea._errors import ShapeError


def input_shape_of(input) -> tuple:
    """The shape of a tensor, array or nested list, without converting tensors."""
    shape = getattr(input, "shape", None)
    if shape is None:
        try:
            shape = xp.shape(input)
        except ValueError:
            raise ShapeError(f"cannot read a shape from {type(input).__name__}") from None
    return tuple(shape)


def last_dimension(input, layer: str) -> int:
    shape = input_shape_of(input)
    if not shape:
        raise ShapeError(f"{layer} needs an input with at least one dimension, got a scalar")
    return int(shape[-1])
