"""Activations as a layer kind: ``activation`` names an entry of linea's one activation registry
(``linea.nn``'s), with its settings where they are not Keras's defaults."""
from __future__ import annotations

from linea import nn
from linea.io.kinds._kind import LayerKind, LayerSpec, plain_row
from linea.nn.registry import ACTIVATIONS, NO_TWIN, activation_of_module

__all__ = ["ACTIVATION", "activation_settings", "activation_module"]


def activation_settings(name: str, extra: dict | None = None) -> dict:
    """The parameters of activation ``name``: Keras's defaults updated by ``extra``."""
    entry = ACTIVATIONS.get(name)
    settings = dict(entry.defaults) if entry is not None else {}
    settings.update({k: v for k, v in (extra or {}).items() if k in settings})
    return settings


def _layers_entries(spec) -> list[str]:
    if spec.activation == "linear":
        return []
    settings = activation_settings(spec.activation, spec.extra)
    if not settings:
        return [spec.activation]
    return [spec.activation + "(" + ", ".join(f"{k}={v!r}" for k, v in settings.items()) + ")"]


def activation_module(name: str, extra: dict | None = None):
    """The ``nn`` module computing activation ``name`` (None for "linear")."""
    entry = ACTIVATIONS.get(name)
    if entry is None:
        reason = f" ({NO_TWIN[name]})" if name in NO_TWIN else ""
        raise ValueError(f"the activation {name!r} has no linea.nn module{reason}; supported: "
                         f"{sorted(ACTIVATIONS)}")
    return entry.build(**activation_settings(name, extra))


def _activation_modules(spec) -> list:
    module = activation_module(spec.activation, spec.extra)
    return [module if module is not None else nn.Identity()]


def _activation_spec(module, shape, before) -> list:
    name, settings = activation_of_module(module)
    return [LayerSpec("activation", activation=name, extra=settings)]


def _inspect_row(spec, index: int, convention: str) -> dict:
    return plain_row(spec, f"activation: {spec.activation}")


ACTIVATION = LayerKind("activation", None, _inspect_row, _layers_entries, _activation_modules,
                       from_nn=_activation_spec, keras_weightless=("activation", "leaky_re_lu"),
                       accepts_module=lambda module: activation_of_module(module) is not None)
