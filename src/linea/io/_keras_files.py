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
from linea.io._layout import StoredState, natural_key
from linea.io.kinds import keras_variables
from linea.io._spec import keras_from_spec, spec_from_keras
from linea.formats import read_weights_file
from linea.keras._saving import weights_h5_bytes
from linea._files import atomic_write

_VARIABLE_NAMES = keras_variables()
#: BatchNormalization's variables by how many it holds (3 is ambiguous: gamma or beta missing).
_BATCH_NORM_NAMES = {4: ("gamma", "beta", "moving_mean", "moving_variance"),
                     2: ("moving_mean", "moving_variance")}


def _layer_class(path: str) -> str:
    return re.sub(r"_\d+$", "", path)


def stored_state(stored: dict, source: str, ordered: bool = False) -> StoredState:
    """A ``StoredState`` of ``"dense/kernel"``-style keys from ``{layer path: [arrays]}``.

    Weightless groups are kept by name, so the reader can refuse what it cannot place.
    A file that does not record its layers' order lists them by name, as text (``dense``,
    ``dense_1``, ``dense_10``, ``dense_2``); they come in natural order (``dense_2`` before
    ``dense_10``), which is the layer order within each layer class — across classes the
    names do not say it, and the order of the dict is then not a layer order.
    """
    state, weightless = OrderedDict(), []
    for path in stored if ordered else sorted(stored, key=natural_key):
        arrays = stored[path]
        if not arrays:
            weightless.append(path)
            continue
        names = _VARIABLE_NAMES.get(_layer_class(path))
        if _layer_class(path) == "batch_normalization":
            names = _BATCH_NORM_NAMES.get(len(arrays))
            if names is None:
                raise FormatError(f"{source}: BatchNormalization {path!r} holds {len(arrays)} "
                                  "weights: gamma or beta is missing (scale=False or center=False), "
                                  "and a weights file does not say which; read the .keras file")
        if names is None or len(arrays) > len(names):
            raise FormatError(f"{source}: layer group {path!r} holds {len(arrays)} weights; linea "
                              "reads Dense, Conv2D, BatchNormalization and LayerNormalization layers")
        if names[0] == "gamma" and len(arrays) == 1:
            raise FormatError(f"{source}: layer {path!r} holds one weight, which is gamma "
                              "(center=False) or beta (scale=False); a weights file does not say "
                              "which: read the .keras file, which records the layer's config")
        for name, array in zip(names, arrays):
            state[f"{path}/{name}"] = array
    return StoredState(state, ordered=ordered, weightless=weightless, records_weightless=True)


def is_legacy_model(path) -> bool:
    """True for a Keras 2-style ``model.save("m.h5")`` file (architecture and weights)."""
    from linea.formats import legacy_kind

    source = os.fspath(path)
    if source.endswith(".weights.h5") or not source.endswith((".h5", ".hdf5")):
        return False
    return legacy_kind(source) == "model"


def _legacy_weights(source: str) -> StoredState:
    """A legacy weights-only ``.h5``: "layer/variable" keys in the file's recorded layer order."""
    from linea.formats import read_legacy_h5

    state, weightless = OrderedDict(), []
    for layer, weights in read_legacy_h5(source).layers:
        if not weights:
            weightless.append(layer)
        for variable, array in weights:
            state[f"{layer}/{variable}"] = array
    return StoredState(state, ordered=True, weightless=weightless, records_weightless=True)


def read_stored(path, shapes_only: bool = False) -> StoredState:
    """The tensors of a ``.weights.h5``, ``.keras`` or legacy ``.h5`` file, with their order."""
    source = os.fspath(path)
    source_is_model = source.endswith(".keras") or is_legacy_model(source)
    if not source_is_model and not source.endswith(".weights.h5"):
        from linea.formats import is_legacy_h5

        if is_legacy_h5(source):
            return _legacy_weights(source)
    if source_is_model:
        model = read_model(source)
        state = OrderedDict()
        for layer in model.layers:
            for variable in layer.weights:
                state[variable.path] = variable._data.copy()
        return StoredState(state, ordered=True)
    stored, ordered = read_weights_file(source, report_order=True, shapes_only=shapes_only)
    return stored_state(stored, source, ordered)


def read_state(path) -> "OrderedDict[str, object]":
    """{"dense/kernel": array, "dense/bias": array, …}."""
    return read_stored(path).tensors


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
