"""Keras 2's legacy HDF5 files: ``model.save("m.h5")`` (architecture and weights) and
``save_weights("w.h5")`` (weights only), as Keras 2 wrote them and Keras 3 still does.

A full model file holds the ``model_config`` attribute (JSON) and a ``model_weights``
group; a weights file holds that group's contents at its root. The group's
``layer_names`` attribute lists the layers in order; each layer's group lists its
variables in ``weight_names`` ("dense/kernel:0" in Keras 2, "sequential/dense/kernel"
in Keras 3), whose last part names the variable. Every dataset's declared size is
checked against the file's size before it is read, links to other files are not
followed, and nothing is assigned until every layer's weights have been checked.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass

from linea._errors import FormatError
from linea._files import open_regular
from linea._versions import mark_written
from linea.backend import xp

__all__ = ["LegacyFile", "is_legacy_h5", "read_legacy_h5", "load_legacy_model", "load_legacy_weights"]

_MAX_JSON = 64 * 1024 ** 2
_MAX_LAYERS = 10_000
_MAX_WEIGHTS = 1_000


@dataclass
class LegacyFile:
    """What a legacy file holds: its model config (None for weights only), and per layer
    in file order (name, [(variable name, array)])."""
    config: dict | None
    layers: list
    keras_version: str


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _text(value.item())
    if isinstance(value, str):
        return value
    raise TypeError(f"not text: {type(value).__name__}")


def _texts(values, what: str, source: str, limit: int) -> list[str]:
    if values is None:
        return []
    try:
        items = list(values) if getattr(values, "ndim", 1) else [values]
    except TypeError:
        raise FormatError(f"{source}: {what} is not a list of names") from None
    if len(items) > limit:
        raise FormatError(f"{source}: {what} lists {len(items)} entries, more than {limit}")
    try:
        return [_text(item) for item in items if not (hasattr(item, "dtype") and item.dtype.kind == "f")]
    except (TypeError, UnicodeDecodeError):
        raise FormatError(f"{source}: {what} holds entries that are not names") from None


def is_legacy_h5(path) -> bool:
    """True for an HDF5 file laid out as Keras 2 saved it (not a Keras 3 ``.weights.h5``)."""
    from linea.keras._saving import _h5py

    h5py = _h5py()
    source = os.fspath(path)
    with os.fdopen(open_regular(source), "rb") as stream:
        if stream.read(8) != b"\x89HDF\r\n\x1a\n":
            return False
        stream.seek(0)
        try:
            with h5py.File(stream, "r") as handle:
                return "layers" not in handle and ("model_weights" in handle or "layer_names" in handle.attrs)
        except Exception:  # h5py's and HDF5's own errors: not a readable legacy file
            return False


def read_legacy_h5(path) -> LegacyFile:
    """Read a legacy file's config and weights; FormatError if it is not one or is malformed."""
    from linea.keras._saving import _h5py

    h5py = _h5py()
    source = os.fspath(path)
    with os.fdopen(open_regular(source), "rb") as stream:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        if stream.read(8) != b"\x89HDF\r\n\x1a\n":
            raise FormatError(f"{source}: not an HDF5 file (Keras .h5 files are HDF5)")
        stream.seek(0)
        try:
            with h5py.File(stream, "r") as handle:
                return _read(handle, h5py, size, source)
        except FormatError:
            raise
        except Exception as error:  # h5py's and HDF5's own errors, whatever their class
            raise FormatError(f"{source}: cannot read the HDF5 file: {error}") from None


def _child(group, name, where, h5py, source):
    # Hard links only: an external or soft link would make HDF5 open other files.
    if name not in group or not isinstance(group.get(name, getlink=True), h5py.HardLink):
        raise FormatError(f"{source}: {where} is missing or a link to elsewhere, which linea "
                          "does not follow")
    return group[name]


def _read(handle, h5py, size: int, source: str) -> LegacyFile:
    config = None
    if "model_config" in handle.attrs:
        raw = handle.attrs["model_config"]
        text = _text(raw) if not isinstance(raw, (bytes, str)) else raw
        if len(text) > _MAX_JSON:
            raise FormatError(f"{source}: model_config is {len(text)} bytes, more than {_MAX_JSON}")
        try:
            config = json.loads(text)
        except (ValueError, RecursionError, UnicodeDecodeError) as error:
            raise FormatError(f"{source}: model_config is not JSON: {error}") from None
        if not isinstance(config, dict):
            raise FormatError(f"{source}: model_config is not a JSON object")
    if "model_weights" in handle:
        group = _child(handle, "model_weights", "model_weights", h5py, source)
    elif config is None and "layer_names" in handle.attrs:
        group = handle
    else:
        raise FormatError(f"{source}: no model_weights group or layer_names attribute: not a Keras "
                          "legacy HDF5 file (Keras 3 weights files end in .weights.h5)")
    if not isinstance(group, h5py.Group) or "layer_names" not in group.attrs:
        raise FormatError(f"{source}: the weights group has no layer_names attribute")
    version = group.attrs.get("keras_version", handle.attrs.get("keras_version", b""))
    names = _texts(group.attrs["layer_names"], "layer_names", source, _MAX_LAYERS)
    if len(set(names)) != len(names):
        raise FormatError(f"{source}: layer_names lists a layer twice")
    layers = []
    for name in names:
        layer = _child(group, name, f"layer group {name!r}", h5py, source)
        if not isinstance(layer, h5py.Group):
            raise FormatError(f"{source}: {name!r} is not a group")
        weights = []
        for weight_name in _texts(layer.attrs.get("weight_names"), f"{name}'s weight_names",
                                  source, _MAX_WEIGHTS):
            node = layer
            for part in weight_name.split("/"):
                node = _child(node, part, f"{name}/{weight_name}", h5py, source)
            if not isinstance(node, h5py.Dataset) or node.dtype.kind not in "fiub":
                raise FormatError(f"{source}: {name}/{weight_name} is not a numeric array")
            if node.is_virtual or node.external:
                raise FormatError(f"{source}: {name}/{weight_name} keeps its data in other files, "
                                  "which linea does not read")
            if node.size * node.dtype.itemsize > size:
                raise FormatError(f"{source}: {name}/{weight_name} declares {node.shape} of "
                                  f"{node.dtype}, more than the file's {size} bytes hold")
            variable = weight_name.rsplit("/", 1)[-1].split(":")[0]
            weights.append((variable, xp.asarray(node[()])))
        layers.append((name, weights))
    try:
        version = _text(version) if version is not None else ""
    except (TypeError, UnicodeDecodeError):
        version = ""
    return LegacyFile(config, layers, version)


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
