"""What a layer kind is: one row of the kinds table, the facts every interchange driver needs.

A driver (a format's reader or writer, ``inspect``, layout detection, ``convert``) loops over
the table and asks the row; it never branches on a kind's name. Adding a kind is one module
of its family plus its row in ``KINDS``.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LayerKind"]


@dataclass(frozen=True)
class LayerKind:
    """One kind of layer in the neutral layer list (a ``LayerSpec`` of ``kind == name``).

    - ``keras_group``: the class part of the group name a Keras weights file keeps the kind's
      variables under (``dense`` for ``dense_3``), or None for a kind without weights.
    - ``inspect_row(spec, index, convention)``: its row of ``linea inspect`` for an
      architecture file, ``convention`` "keras" or "onnx"/"torch" (PyTorch's layout).
    - ``layers_entries(spec)``: the ``layers=`` entries that say it (ValueError where none can).
    - ``to_nn(spec)``: the ``linea.nn`` modules computing it, holding copies of its weights
      (TypeError where PyTorch's layers cannot express it exactly).
    """

    name: str
    keras_group: str | None
    inspect_row: object
    layers_entries: object
    to_nn: object

    @property
    def weighted(self) -> bool:
        return self.keras_group is not None


def row(spec, index: int, label: str, convention: str = "", shapes: str = "", dtype: str = "",
        params: int = 0) -> dict:
    """An inspect row: the layer's name (else its position), what it is, and its numbers."""
    return {"layer": spec.name or str(index), "type": label, "convention": convention,
            "shapes": shapes, "dtype": dtype, "params": params}


def bias_shape(spec) -> str:
    return f", bias {spec.bias.shape}" if spec.bias is not None else ""


def plain_row(spec, label: str) -> dict:
    """The row of a layer without numbers of its own (an activation, a Flatten, a Dropout)."""
    return {"layer": spec.name or "", "type": label, "convention": "", "shapes": "", "dtype": "",
            "params": 0}


def dtype_name(array) -> str:
    """The name of an array's dtype, as ``dtype=`` arguments of the nn layers take it."""
    return array.dtype.name
