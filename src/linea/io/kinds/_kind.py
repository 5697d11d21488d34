"""What a layer kind is: one row of the kinds table, the facts every interchange driver needs.

A driver (a format's reader or writer, ``inspect``, layout detection, ``convert``) loops over
the table and asks the row; it never branches on a kind's name. Adding a kind is one module
of its family plus its row in ``KINDS``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LayerKind", "LayerSpec"]


@dataclass
class LayerSpec:
    """One layer of the neutral layer list: its kind (a name in ``KINDS``) and its numbers, in
    PyTorch's layout (weight (out, in), conv weight (out, in/groups, kh, kw))."""

    kind: str  # a name in KINDS
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    activation: str | None = None  # for kind == "activation": a Keras name
    rate: float = 0.0
    eps: float = 1e-5
    name: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def parameter_count(self) -> int:
        return sum(int(a.size) for a in (self.weight, self.bias) if a is not None)


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
    - ``from_nn(module, shape, before)``: the specs of an ``nn`` module this kind takes
      (``accepts(module)``), given the per-sample input shape (or None) and the specs before
      it; TypeError where the module has a setting the other frameworks cannot express.
    - ``image``: the kind works on images (C, H, W).
    - ``torch_entries(spec)``: its (leaf, array) entries in a PyTorch state dict, in the
      module's order; ``nn_count(spec)``: how many ``nn.Sequential`` places it takes.
    - ``keras_entries(spec)``: its (variable, array) entries in a Keras state dict where its
      variables are named by kind alone (Dense, LayerNormalization), else None.
    - ``keras_variables``: the names of a Keras weights-file group's variables ``0, 1, …`` where
      their count alone settles them (None for BatchNormalization, whose gamma or beta may be
      missing); ``keras_weightless``: the Keras classes without weights this kind reads.
    """

    name: str
    keras_group: str | None
    inspect_row: object
    layers_entries: object
    to_nn: object
    nn_types: tuple = ()
    from_nn: object = None
    image: bool = False
    accepts_module: object = None  # module → bool, where the type alone does not say
    torch_entries: object = lambda spec: []
    nn_count: object = lambda spec: 1
    keras_entries: object = None
    keras_variables: tuple | None = None
    keras_weightless: tuple = ()

    @property
    def weighted(self) -> bool:
        return self.keras_group is not None

    def accepts(self, module) -> bool:
        if self.accepts_module is not None:
            return self.accepts_module(module)
        return isinstance(module, self.nn_types)


def row(spec, index: int, label: str, convention: str = "", shapes: str = "", dtype: str = "",
        params: int = 0) -> dict:
    """An inspect row: the layer's name (else its position), what it is, and its numbers."""
    return {"layer": spec.name or str(index), "type": label, "convention": convention,
            "shapes": shapes, "dtype": dtype, "params": params}


def weight_and_bias(spec) -> list:
    """The (leaf, array) entries of a layer holding ``weight`` and, if it has one, ``bias``."""
    return [(leaf, value) for leaf, value in (("weight", spec.weight), ("bias", spec.bias))
            if value is not None]


def bias_shape(spec) -> str:
    return f", bias {spec.bias.shape}" if spec.bias is not None else ""


def plain_row(spec, label: str) -> dict:
    """The row of a layer without numbers of its own (an activation, a Flatten, a Dropout)."""
    return {"layer": spec.name or "", "type": label, "convention": "", "shapes": "", "dtype": "",
            "params": 0}


def dtype_name(array) -> str:
    """The name of an array's dtype, as ``dtype=`` arguments of the nn layers take it."""
    return array.dtype.name


def copied(array):
    """A copy of a module's array, or None: a spec never shares memory with the module."""
    return None if array is None else np.array(array, copy=True)


def holding(module, spec):
    """``module`` with the spec's weight and bias copied into its parameters."""
    module.weight._data[...] = spec.weight
    if spec.bias is not None:
        module.bias._data[...] = spec.bias
    return module
