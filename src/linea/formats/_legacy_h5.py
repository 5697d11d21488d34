"""Reading Keras 2's legacy HDF5 files: ``model.save("m.h5")`` (architecture and weights)
and ``save_weights("w.h5")`` (weights only), as Keras 2 wrote them and Keras 3 still does.

A full model file holds the ``model_config`` attribute (JSON) and a ``model_weights``
group; a weights file holds that group's contents at its root. The group's
``layer_names`` attribute lists the layers in order; each layer's group lists its
variables in ``weight_names`` ("dense/kernel:0" in Keras 2, "sequential/dense/kernel"
in Keras 3), whose last part names the variable. Every dataset's declared size is
checked against the file's size before it is read, and links to other files are not
followed. Assigning what is read to a model is the Keras flavour's (``keras._legacy_h5``).
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass

from linea._errors import FormatError
from linea._files import open_regular
from linea.backend import xp
from linea.formats._hdf5 import h5py_module
from linea.formats._hdf5_heaps import check_global_heaps, hard_child, run_reader, searchable

__all__ = ["LegacyFile", "is_legacy_h5", "legacy_kind", "read_legacy_h5"]

_MAX_JSON = 64 * 1024 ** 2
_MAX_LAYERS = 10_000
_MAX_WEIGHTS = 1_000


@dataclass
class LegacyFile:
    """What a legacy file holds: its model config (None for weights only), and per layer
    in file order (name, [(variable name, array)])."""
    config: dict | None
    layers: list


# The text attributes are read in a child process (see _hdf5_heaps.run_reader), following
# hard links only, so a corrupt heap reference crashes the child, not the caller.
_TEXT_READER = r"""
def text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    if isinstance(value, numpy.ndarray):
        if value.dtype.kind == "f" and value.size == 0:
            return []  # Keras writes an empty float array for "no weights"
        if value.ndim == 0:
            return text(value.item())
        return [text(item) for item in value.reshape(-1)[:100001].tolist()]
    raise TypeError("an attribute that is not text: " + type(value).__name__)

out = {"model_config": None, "where": "root", "layer_names": None, "weight_names": {}}
with h5py.File(sys.argv[2], "r") as handle:
    if "model_config" in handle.attrs:
        out["model_config"] = text(handle.attrs["model_config"])
    group = node(handle, "model_weights") if "model_weights" in handle else None
    if group is not None:
        out["where"] = "model_weights"
    group = handle if group is None else group
    if isinstance(group, h5py.Group) and "layer_names" in group.attrs:
        names = text(group.attrs["layer_names"])
        names = [names] if isinstance(names, str) else names
        out["layer_names"] = names
        for name in names:
            layer = node(group, name)
            if isinstance(layer, h5py.Group) and "weight_names" in layer.attrs:
                weights = text(layer.attrs["weight_names"])
                out["weight_names"][name] = [weights] if isinstance(weights, str) else weights
print(json.dumps(out))
"""


def _names(values, what: str, source: str, limit: int) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise FormatError(f"{source}: {what} is not a list of names")
    if len(values) > limit:
        raise FormatError(f"{source}: {what} lists {len(values)} entries, more than {limit}")
    return values


def legacy_kind(path) -> str | None:
    """"model" (model.save("m.h5")), "weights" (save_weights("w.h5")) or None for any other file.

    Only names are looked at, no attribute's value: this is safe on any file.
    """
    h5py = h5py_module()
    source = os.fspath(path)
    with os.fdopen(open_regular(source), "rb") as stream:
        if stream.read(8) != b"\x89HDF\r\n\x1a\n":
            return None
        stream.seek(0)
        try:
            with h5py.File(stream, "r") as handle:
                if "layers" in handle:
                    return None  # a Keras 3 weights file
                if "model_config" in handle.attrs:
                    return "model"
                if "model_weights" in handle or "layer_names" in handle.attrs:
                    return "weights"
                return None
        except Exception:  # h5py's and HDF5's own errors: not a readable legacy file
            return None


def is_legacy_h5(path) -> bool:
    """True for an HDF5 file laid out as Keras 2 saved it (not a Keras 3 ``.weights.h5``)."""
    return legacy_kind(path) is not None


def read_legacy_h5(path) -> LegacyFile:
    """Read a legacy file's config and weights; FormatError if it is not one or is malformed."""
    h5py = h5py_module()
    source = os.fspath(path)
    with os.fdopen(open_regular(source), "rb") as stream:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        if stream.read(8) != b"\x89HDF\r\n\x1a\n":
            raise FormatError(f"{source}: not an HDF5 file (Keras .h5 files are HDF5)")
        try:
            stream.seek(0)
            with h5py.File(stream, "r") as handle:
                check_global_heaps(searchable(stream), handle, h5py, source)
                texts = run_reader(_TEXT_READER, source, [], source, "text attributes")
                return _read(handle, h5py, texts, size, source)
        except FormatError:
            raise
        except Exception as error:  # h5py's and HDF5's own errors, whatever their class
            raise FormatError(f"{source}: cannot read the HDF5 file: {error}") from None


def _read(handle, h5py, texts: dict, size: int, source: str) -> LegacyFile:
    config = None
    text = texts.get("model_config")
    if text is not None:
        if not isinstance(text, str):
            raise FormatError(f"{source}: model_config is not text")
        if len(text) > _MAX_JSON:
            raise FormatError(f"{source}: model_config is {len(text)} bytes, more than {_MAX_JSON}")
        try:
            config = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise FormatError(f"{source}: model_config is not JSON: {error}") from None
        if not isinstance(config, dict):
            raise FormatError(f"{source}: model_config is not a JSON object")
    if texts.get("where") == "model_weights":
        group = hard_child(handle, "model_weights", "model_weights", h5py, source)
    elif config is None and texts.get("layer_names") is not None:
        group = handle
    else:
        raise FormatError(f"{source}: no model_weights group or layer_names attribute: not a Keras "
                          "legacy HDF5 file (Keras 3 weights files end in .weights.h5)")
    if not isinstance(group, h5py.Group) or texts.get("layer_names") is None:
        raise FormatError(f"{source}: the weights group has no layer_names attribute")
    names = _names(texts["layer_names"], "layer_names", source, _MAX_LAYERS)
    if len(set(names)) != len(names):
        raise FormatError(f"{source}: layer_names lists a layer twice")
    weight_names = texts.get("weight_names") or {}
    if not isinstance(weight_names, dict):
        raise FormatError(f"{source}: the layers' weight_names are malformed")
    layers = []
    for name in names:
        layer = hard_child(group, name, f"layer group {name!r}", h5py, source)
        if not isinstance(layer, h5py.Group):
            raise FormatError(f"{source}: {name!r} is not a group")
        weights = []
        for weight_name in _names(weight_names.get(name), f"{name}'s weight_names", source, _MAX_WEIGHTS):
            node = layer
            for part in weight_name.split("/"):
                node = hard_child(node, part, f"{name}/{weight_name}", h5py, source)
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
    return LegacyFile(config, layers)
