"""The one table of layer kinds of the neutral layer list: ``KINDS[spec.kind]`` is the row with
every fact the interchange drivers need about that kind (see ``LayerKind``). Each kind is
defined once, in the module of its family; drivers loop over the table.
"""
from linea.io.kinds._activation import ACTIVATION, activation_module, activation_settings
from linea.io.kinds._convolution import CONV2D
from linea.io.kinds._dense import LINEAR, QLINEAR
from linea.io.kinds._kind import LayerKind, LayerSpec
from linea.io.kinds._normalization import BATCHNORM, LAYERNORM
from linea.io.kinds._pooling import AVGPOOL2D, GLOBALAVGPOOL, MAXPOOL2D
from linea.io.kinds._shape import DROPOUT, FLATTEN, OnnxFlatten

__all__ = ["LayerKind", "LayerSpec", "KINDS", "keras_groups", "keras_variables",
           "keras_weightless", "activation_settings",
           "activation_module",
           "OnnxFlatten"]

KINDS = {kind.name: kind for kind in (LINEAR, QLINEAR, ACTIVATION, DROPOUT, FLATTEN, LAYERNORM,
                                      BATCHNORM, CONV2D, MAXPOOL2D, AVGPOOL2D, GLOBALAVGPOOL)}


def keras_variables() -> dict:
    """{Keras group class: its variables' names in order}, where their count settles them."""
    return {kind.keras_group: kind.keras_variables for kind in KINDS.values()
            if kind.keras_variables is not None}


def keras_weightless() -> dict:
    """{Keras class without weights: the kind it is} for the classes the kinds read."""
    return {group: kind.name for kind in KINDS.values() for group in kind.keras_weightless}


def keras_groups() -> dict:
    """{kind name: the class part of its Keras weights-file group} for the kinds with weights."""
    return {name: kind.keras_group for name, kind in KINDS.items() if kind.weighted}
