"""Keras 2's legacy HDF5 files loaded into the Keras flavour: ``load_legacy_model`` builds the
model from the file's config, ``load_legacy_weights`` fills a built model. The file is read
by ``linea.formats``; nothing is assigned until every layer's weights have been checked.
"""
from __future__ import annotations

import os

from linea._errors import FormatError
from linea._versions import mark_written
from linea.backend import xp
from linea.formats import read_legacy_h5

__all__ = ["load_legacy_model", "load_legacy_weights"]


def _plan(model_layers, stored_layers, source: str, by_name: bool) -> list:
    """(variable, array) pairs for every weighted layer, checked before any is assigned."""
    weighted = [layer for layer in model_layers if layer.weights]
    stored = [(name, weights) for name, weights in stored_layers if weights]
    if by_name:
        table = dict(stored)
        pairs = [(layer, table.get(layer.name)) for layer in weighted]
        extra = sorted(set(table) - {layer.name for layer in weighted})
        if extra:
            raise FormatError(f"{source}: the file holds weights for {extra}, which the model "
                              "config does not have")
    else:  # a weights-only file is matched by order, as Keras matches it
        if len(stored) != len(weighted):
            raise FormatError(f"{source}: the file holds weights for {len(stored)} layers "
                              f"({[n for n, _ in stored]}), the model has {len(weighted)} layers "
                              f"with weights ({[layer.name for layer in weighted]})")
        pairs = [(layer, weights) for layer, (_, weights) in zip(weighted, stored)]
    plan = []
    for layer, weights in pairs:
        if weights is None:
            raise FormatError(f"{source}: the file holds no weights for layer {layer.name!r}")
        arrays = dict(weights)
        expected = {variable.name: variable for variable in layer.weights}
        if len(arrays) != len(weights) or set(arrays) != set(expected):
            raise FormatError(f"{source}: layer {layer.name!r} has variables {sorted(expected)}, "
                              f"the file holds {[n for n, _ in weights]}")
        for name, variable in expected.items():
            if tuple(arrays[name].shape) != tuple(variable.shape):
                raise FormatError(f"{source}: {layer.name}/{name} has shape {tuple(arrays[name].shape)} "
                                  f"in the file, the model's is {tuple(variable.shape)}")
            plan.append((variable, arrays[name]))
    return plan


def _apply(plan) -> None:
    for variable, array in plan:
        xp.copyto(variable._data, array, casting="unsafe")
        mark_written(variable._data)


def load_legacy_model(path):
    """A ``linea.keras.Sequential`` from a legacy ``model.save("m.h5")`` file."""
    from linea.keras._model_config import check_against_weights, expected_shapes, sequential_config
    from linea.keras._sequential import Sequential

    source = os.fspath(path)
    legacy = read_legacy_h5(source)
    if legacy.config is None:
        raise FormatError(f"{source}: holds weights only (save_weights), not a model: build the "
                          "model and call model.load_weights(path)")
    config = sequential_config(legacy.config, source)
    stored = {name: [array for _, array in weights] for name, weights in legacy.layers}
    check_against_weights(expected_shapes(config, source), stored, source)
    try:
        model = Sequential.from_config(config.get("config", {}))
    except FormatError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise FormatError(f"{source}: the model config cannot be rebuilt: {error}") from None
    if not model.built:
        raise FormatError(f"{source}: the model config does not say its input shape, so the "
                          "model cannot be built")
    _apply(_plan(model.layers, legacy.layers, source, by_name=True))
    return model


def load_legacy_weights(model, path) -> None:
    """Assign a legacy weights file to a built model: layers with weights matched in order."""
    source = os.fspath(path)
    legacy = read_legacy_h5(source)
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: build or call it before load_weights")
    _apply(_plan(model.layers, legacy.layers, source, by_name=False))
