"""Keras's automatic layer names: "dense", "dense_1", … per class, until clear_session()."""
from __future__ import annotations

import re

_COUNTS: dict[str, int] = {}


def snake_case(class_name: str) -> str:
    """Keras's to_snake_case: "LayerNormalization" → "layer_normalization", "Conv2D" → "conv2d"."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_in_order(bases) -> list[str]:
    """Keras's paths inside one model: "dense", "dense_1", … each base numbered in order."""
    used: dict[str, int] = {}
    names = []
    for base in bases:
        count = used.get(base, -1) + 1
        used[base] = count
        names.append(base if count == 0 else f"{base}_{count}")
    return names


def unique_name(class_name: str) -> str:
    base = snake_case(class_name)
    count = _COUNTS.get(base, 0)
    _COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def clear_session() -> None:
    """Reset the name counters, as keras.backend.clear_session() does."""
    _COUNTS.clear()
