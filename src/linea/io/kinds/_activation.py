"""Activations as a layer kind: ``activation`` names an entry of linea's one activation registry
(``linea.nn``'s), with its settings where they are not Keras's defaults."""
from __future__ import annotations

from linea.io.kinds._kind import LayerKind, plain_row
from linea.nn.registry import ACTIVATIONS

__all__ = ["ACTIVATION", "activation_settings"]


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


ACTIVATION = LayerKind("activation", None,
                       lambda spec, index, convention: plain_row(spec, f"activation: {spec.activation}"),
                       _layers_entries)
