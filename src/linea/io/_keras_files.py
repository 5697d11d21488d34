"""Keras 3 files as state dicts and as models.

A ``.weights.h5`` file names its groups after layer classes (``dense``,
``dense_1``, ``layer_normalization``); the class tells what each numbered
variable is (Dense: kernel, bias; LayerNormalization: gamma, beta). A ``.keras``
file adds the architecture (activations, epsilons) in its config.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict

from linea._errors import FormatError
from linea.io._formats import read_bounded
from linea.io._spec import keras_from_spec, spec_from_keras
from linea.keras._saving import read_keras_archive, read_weights_h5, weights_h5_bytes
from linea._serialization import atomic_write

_VARIABLE_NAMES = {"dense": ("kernel", "bias"), "layer_normalization": ("gamma", "beta")}


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _layer_class(path: str) -> str:
    return re.sub(r"_\d+$", "", path)


def _model_order(stored: dict) -> list[str]:
    """Layer paths in model order.

    Groups come back in creation order from files linea wrote, alphabetically
    from others. Dense layers are numbered in order; each norm layer goes after
    the first Dense (in order) whose output size it matches and that has none yet.
    """
    paths = [p for p in stored if stored[p]]
    dense = sorted((p for p in paths if _layer_class(p) == "dense"), key=_natural_key)
    norms = sorted((p for p in paths if _layer_class(p) != "dense"), key=_natural_key)
    if [p for p in paths if _layer_class(p) == "dense"] == dense and not norms:
        return dense
    if paths == sorted(paths, key=_natural_key) or not dense:
        ordered = list(dense)
        for norm in norms:
            size = stored[norm][0].shape[-1] if stored[norm][0].ndim else None
            spot = next((i for i, d in enumerate(ordered)
                         if _layer_class(d) == "dense" and stored[d][0].shape[-1] == size and
                         (i + 1 == len(ordered) or _layer_class(ordered[i + 1]) == "dense")), None)
            ordered.insert(len(ordered) if spot is None else spot + 1, norm)
        return ordered
    return paths  # creation order, as linea writes it


def _named(stored: dict, source: str) -> "OrderedDict[str, object]":
    state = OrderedDict()
    for path in _model_order(stored):
        arrays = stored[path]
        names = _VARIABLE_NAMES.get(_layer_class(path))
        if names is None or len(arrays) > len(names):
            raise FormatError(f"{source}: layer group {path!r} holds {len(arrays)} weights; linea "
                              "reads Dense and LayerNormalization layers")
        for name, array in zip(names, arrays):
            state[f"{path}/{name}"] = array
    return state


def read_state(path) -> "OrderedDict[str, object]":
    """{"dense/kernel": array, "dense/bias": array, …} in model order."""
    source = os.fspath(path)
    if source.endswith(".keras"):
        model = read_model(source)
        state = OrderedDict()
        for layer in model.layers:
            for variable in layer.weights:
                state[variable.path] = variable._data.copy()
        return state
    data = read_bounded(source)
    return _named(read_weights_h5(data, source), source)


def read_model(path):
    from linea.keras._saving import load_model

    return load_model(os.fspath(path), compile=False)


def write_weights(specs, path) -> None:
    """A ``.weights.h5`` for the model the layer list describes."""
    atomic_write(os.fspath(path), weights_h5_bytes(keras_from_spec(specs)))


def write_model(specs, path) -> None:
    keras_from_spec(specs).save(os.fspath(path))


def specs_of_model_file(path):
    return spec_from_keras(read_model(path))


def check_readable(path) -> None:
    read_keras_archive(os.fspath(path))
