"""Keras 3 files: ``.weights.h5`` (h5py) and ``.keras`` (a zip of config, metadata, weights).

Layouts follow what Keras 3 writes, so real Keras reads linea's files and
linea reads Keras's: weights live at ``layers/<layer name>/vars/<index>``. Loading
checks every layer's weights before assigning any, so a failed load changes
nothing; a file that cannot be read raises ``linea.FormatError``.
"""
from __future__ import annotations

import datetime
import io
import json
import math
import os
import struct
import zipfile
import zlib

from linea.backend import xp
from linea._errors import FormatError, require
from linea._files import atomic_write, open_regular, read_regular
from linea._versions import mark_written
from linea.keras._hdf5_heaps import check_global_heaps, hard_child, read_dtype_marks, searchable
from linea.keras._model_config import (READABLE_LAYERS, check_against_weights, expected_shapes,
                                       mapping as _mapping, sequential_config)

__all__ = ["save_weights", "load_weights", "save_model", "load_model", "deserialize_layer",
           "read_weights_h5", "KERAS_VERSION"]

KERAS_VERSION = "3.15.1"
_MAX_ZIP_MEMBER = 2 * 1024 ** 3
_MAX_JSON = 64 * 1024 ** 2
_MAX_RATIO = 20


def _h5py():
    return require("h5py", "formats", "Reading or writing Keras .weights.h5 and .keras files")


def weight_paths(model) -> list[str]:
    """Where Keras 3 stores each layer's weights: its class in snake_case, made unique in order.

    (Keras keys the file by class-derived names, not by layer names, so a model
    rebuilt in another session, with other layer names, still finds its weights.)
    """
    from linea.keras._naming import snake_case, unique_in_order

    return unique_in_order(snake_case(type(layer).__name__) for layer in model.layers)


# ---- writing ---------------------------------------------------------------------------

def saved_weights(layer) -> list:
    """A layer's variables in the order Keras files hold them: an int8 Dense stores
    kernel, bias, kernel_scale (Keras's variable_serialization_spec), not its weights order."""
    if getattr(layer, "quantization_mode", None) == "int8":
        return [v for v in (layer.kernel, layer.bias, layer.kernel_scale) if v is not None]
    return list(layer.weights)


def _check_int8(layer, arrays, source: str) -> None:
    """An int8 Dense's stored kernel and scales must be what Keras's quantizer writes."""
    kernel, scale = arrays[0], arrays[-1]
    if kernel.size and (xp.min(kernel) < -127 or xp.max(kernel) > 127):
        raise FormatError(f"{source}: layer '{layer.name}' holds int8 kernel values outside "
                          f"[-127, 127] (Keras's int8 range); the file is not a Keras int8 model")
    if not (xp.all(xp.isfinite(scale)) and xp.all(scale > 0)):
        raise FormatError(f"{source}: layer '{layer.name}' has kernel_scale values that are not "
                          f"finite and positive; nothing was loaded")


def weights_h5_bytes(model) -> bytes:
    """The bytes of a Keras 3 ``.weights.h5`` file holding ``model``'s weights."""
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as handle:
        layers = handle.create_group("layers", track_order=True)
        for layer, path in zip(model.layers, weight_paths(model)):
            group = layers.create_group(path).create_group("vars")
            group.attrs["name"] = layer.name
            for index, variable in enumerate(saved_weights(layer)):
                dataset = group.create_dataset(str(index), data=variable._data)
                if variable._data.dtype.name == "bfloat16":  # HDF5 has no bfloat16: Keras's mark
                    dataset.attrs["dtype"] = "bfloat16"
        handle.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


def save_weights(model, filepath) -> None:
    filepath = os.fspath(filepath)
    if not filepath.endswith(".weights.h5"):
        raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={filepath}")
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: call it or fit it before saving weights")
    atomic_write(filepath, weights_h5_bytes(model))


def _keras_object(obj, module: str) -> dict:
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": None}


def save_model(model, filepath) -> None:
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(f"The filename must end in `.keras`. Received: filepath={filepath}")
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: call it or fit it before saving")
    config = {"module": "keras", "class_name": "Sequential", "config": model.get_config(),
              "registered_name": None, "build_config": {"input_shape": list(model._input_shape)}}
    if model.optimizer is not None:
        compile_config = dict(getattr(model, "_compile_config", {}))
        compile_config.update({
            "optimizer": _keras_object(model.optimizer, "keras.optimizers"),
            "loss_weights": None, "weighted_metrics": None, "run_eagerly": False,
            "steps_per_execution": 1, "jit_compile": False})
        config["compile_config"] = compile_config
    metadata = {"keras_version": KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights_h5_bytes(model))
    atomic_write(filepath, buffer.getvalue())


# ---- reading ---------------------------------------------------------------------------

def _bfloat16():
    from linea import bfloat16

    return bfloat16.numpy


def _opaque_marks(layers, h5py, stream, source: str) -> dict:
    """The "dtype" marks of every 2-byte opaque dataset under layers/ (Keras writes bfloat16 as
    such values with dtype="bfloat16"), read in one child process (see _hdf5_heaps)."""
    paths = []
    for name in layers:
        group = layers.get(name, getlink=True)
        if not isinstance(group, h5py.HardLink) or "vars" not in layers[name]:
            continue
        variables = layers[name]["vars"]
        if not isinstance(variables, h5py.Group):
            continue
        for key in variables:
            if isinstance(variables.get(key, getlink=True), h5py.HardLink):
                dataset = variables[key]
                if isinstance(dataset, h5py.Dataset) and dataset.dtype.kind == "V" and dataset.dtype.itemsize == 2:
                    paths.append(f"layers/{name}/vars/{key}")
    return read_dtype_marks(stream, source, paths[:100_000])


def read_weights_file(filepath, report_order: bool = False, shapes_only: bool = False):
    """``read_weights_h5`` of a ``.weights.h5`` file, read from the file as needed (not all at once)."""
    source = os.fspath(filepath)
    with os.fdopen(open_regular(source), "rb") as stream:
        return read_weights_h5(stream, source, report_order, shapes_only)


def read_weights_h5(data, source: str, report_order: bool = False, shapes_only: bool = False):
    """{layer path: [arrays in order]} from a Keras 3 weights file; FormatError if it is bad.

    With ``report_order``, also whether the file records its layers' creation order
    (linea writes it; Keras's own files list layers alphabetically).

    Every dataset's declared size is checked against the file's own size before
    it is read, so a hostile file cannot make linea allocate without bound.
    """
    h5py = _h5py()
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if stream.read(8) != b"\x89HDF\r\n\x1a\n":
        raise FormatError(f"{source}: not an HDF5 file (Keras .weights.h5 files are HDF5)")
    stream.seek(0)
    try:
        with h5py.File(stream, "r") as handle:
            heaps_checked = []

            def child(group, name, where):
                return hard_child(group, name, where, h5py, source)

            if "layers" not in handle:
                raise FormatError(f"{source}: no 'layers' group: not a Keras 3 weights file")
            layers = child(handle, "layers", "layers")
            if not isinstance(layers, h5py.Group):
                raise FormatError(f"{source}: no 'layers' group: not a Keras 3 weights file")
            result = {}
            ordered = bool(layers.id.get_create_plist().get_link_creation_order())
            for name in layers:
                group = child(layers, name, f"layers/{name}")
                if not isinstance(group, h5py.Group) or "vars" not in group:
                    result[name] = []
                    continue
                variables = child(group, "vars", f"layers/{name}/vars")
                if not isinstance(variables, h5py.Group):
                    raise FormatError(f"{source}: layers/{name}/vars is not a group")
                keys = sorted(variables, key=lambda k: int(k) if k.isdigit() else -1)
                if any(not key.isdigit() for key in keys):
                    raise FormatError(f"{source}: layer {name!r} has a weight named {keys[0]!r}, "
                                      "expected 0, 1, …")
                arrays = []
                for key in keys:
                    dataset = child(variables, key, f"{name}/vars/{key}")
                    bfloat16 = False
                    if isinstance(dataset, h5py.Dataset) and dataset.dtype.kind == "V" and \
                            dataset.dtype.itemsize == 2:
                        if not heaps_checked:  # its dtype mark is text: heaps, then a child reads it
                            check_global_heaps(searchable(stream), handle, h5py, source)
                            heaps_checked.append(_opaque_marks(layers, h5py, stream, source))
                        bfloat16 = heaps_checked[0].get(f"layers/{name}/vars/{key}") == "bfloat16"
                    if not isinstance(dataset, h5py.Dataset) or \
                            (dataset.dtype.kind not in "fiub" and not bfloat16):
                        raise FormatError(f"{source}: {name}/vars/{key} is not a numeric array")
                    if dataset.is_virtual or dataset.external:
                        raise FormatError(f"{source}: {name}/vars/{key} keeps its data in other "
                                          "files, which linea does not read")
                    if dataset.size * dataset.dtype.itemsize > size:
                        raise FormatError(
                            f"{source}: {name}/vars/{key} declares {dataset.shape} of "
                            f"{dataset.dtype}, more than the file's {size} bytes hold")
                    dtype = _bfloat16() if bfloat16 else dataset.dtype
                    if shapes_only:
                        arrays.append(xp.broadcast_to(xp.zeros((), dtype), dataset.shape))
                    else:  # read once; bfloat16 arrives as 2-byte opaque values
                        data = xp.asarray(dataset[()])
                        arrays.append(data.view(dtype) if bfloat16 else data)
                result[name] = arrays
            return (result, ordered) if report_order else result
    except FormatError:
        raise
    except Exception as error:  # h5py's and HDF5's own errors, whatever their class
        raise FormatError(f"{source}: cannot read the HDF5 file: {error}") from None


def read_keras_archive(filepath, weights_budget=None) -> tuple[dict, bytes]:
    """(config dict, weights.h5 bytes) of a ``.keras`` zip, each member bounded before inflating.

    ``config.json`` is read first. ``model.weights.h5`` may then hold no more than
    ``weights_budget(config)`` bytes (default: what the config's layers can need,
    ``config_weights_budget``), nor more than ``_MAX_RATIO`` times the compressed bytes
    the archive really holds for it; a member claiming more is refused before a byte is
    inflated, and inflation streams with that cap, so a zip bomb costs neither time nor memory.
    """
    source = os.fspath(filepath)
    data = read_regular(source)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as error:
        raise FormatError(f"{source}: not a .keras zip archive: {error}") from None
    for needed in ("config.json", "model.weights.h5"):
        if needed not in members:
            raise FormatError(f"{source}: the archive has no {needed}: not a Keras 3 model file")
    try:
        config = json.loads(_member(archive, members["config.json"], _MAX_JSON, data, source)
                            .decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        raise FormatError(f"{source}: config.json is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise FormatError(f"{source}: config.json is not a JSON object")
    budget = weights_budget(config) if weights_budget is not None else \
        config_weights_budget(config, source)
    weights = _member(archive, members["model.weights.h5"], min(budget, _MAX_ZIP_MEMBER), data,
                      source)
    return config, weights


#: A Keras weights file's own bytes beyond the numbers: the file's header and root groups,
#: and each variable's group and dataset headers (~0.7 KiB each in Keras's files).
_HDF5_FIXED = 1024 ** 2
_HDF5_PER_VARIABLE = 4096
#: Optimizer slots saved beside each variable (Adam with amsgrad keeps three).
_OPTIMIZER_SLOTS = 3


def config_weights_budget(config: dict, source: str) -> int:
    """The most bytes a ``model.weights.h5`` can need for the model ``config`` describes:
    its variables at 8 bytes a number, the optimizer's slots beside them, HDF5's headers."""
    shapes = [shape for layer in expected_shapes(sequential_config(config, source), source)
              for shape in layer]
    return weights_budget_of(shapes)


def weights_budget_of(shapes) -> int:
    """``config_weights_budget`` for variables of the given shapes."""
    values = sum(math.prod(shape) for shape in shapes)
    copies = 1 + _OPTIMIZER_SLOTS
    return _HDF5_FIXED + copies * (len(shapes) * _HDF5_PER_VARIABLE + 8 * values)


def _stored_span(archive, info, data: bytes, source: str) -> int:
    """The compressed bytes the archive really holds for member ``info``: from its data's
    start to the next member's header (or the central directory), whatever it declares."""
    header = data[info.header_offset:info.header_offset + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise FormatError(f"{source}: member {info.filename}'s local header is missing or damaged")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    following = [other.header_offset for other in archive.infolist()
                 if other.header_offset > info.header_offset]
    end = min(following + [getattr(archive, "start_dir", len(data)), len(data)])
    return max(0, end - start)


def _member(archive, info, limit: int, data: bytes, source: str) -> bytes:
    """One member's bytes, refused before inflating if it claims more than ``limit`` or than
    ``_MAX_RATIO`` × the compressed bytes really there, then inflated in pieces with that cap."""
    held = _stored_span(archive, info, data, source)
    if info.compress_size > held:
        raise FormatError(f"{source}: member {info.filename} declares {info.compress_size} "
                          f"compressed bytes, but the archive holds at most {held} for it: "
                          "a damaged or forged archive")
    # Keras stores members uncompressed; float weights deflate by ~1.1×. A member
    # claiming more than _MAX_RATIO× what it really holds is a possible zip bomb.
    if info.file_size > 1024 ** 2 and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
        raise FormatError(f"{source}: member {info.filename} claims {info.file_size} bytes from "
                          f"{info.compress_size} compressed: refusing a possible zip bomb")
    if info.file_size > limit:
        raise FormatError(f"{source}: member {info.filename} claims {info.file_size} bytes, more "
                          f"than the {limit} the model's config can need: refusing a possible "
                          "zip bomb")
    pieces, total = [], 0
    try:
        with archive.open(info) as stream:
            while True:
                piece = stream.read(1024 ** 2)
                if not piece:
                    break
                total += len(piece)
                if total > min(limit, max(info.file_size, 0)):
                    raise FormatError(f"{source}: member {info.filename} inflates past the "
                                      f"{info.file_size} bytes it declares: a damaged archive")
                pieces.append(piece)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, RuntimeError, NotImplementedError,
            zlib.error) as error:  # RuntimeError: an encrypted member
        raise FormatError(f"{source}: corrupt .keras archive: {error}") from None
    return b"".join(pieces)


def _assign(model, stored: dict, source: str) -> None:
    """Match stored arrays to the model's layers by Keras's paths; assign only if all fit."""
    pairs = []
    for layer, path in zip(model.layers, weight_paths(model)):
        arrays = stored.get(path, [])
        expected = [tuple(v.shape) for v in saved_weights(layer)]
        found = [tuple(a.shape) for a in arrays]
        if expected != found:
            where = f"layers/{path}" if path in stored else f"layers/{path} (absent)"
            raise FormatError(
                f"{source}: layer '{layer.name}' expects weights of shapes {expected}, the file "
                f"holds {found} at {where}; the file's layers are {sorted(stored)}"
            )
        if getattr(layer, "quantization_mode", None) == "int8":
            _check_int8(layer, arrays, source)
        pairs.append((layer, arrays))
    for layer, arrays in pairs:
        for variable, array in zip(saved_weights(layer), arrays):
            xp.copyto(variable._data, array, casting="unsafe")
            mark_written(variable._data)


def load_weights(model, filepath) -> None:
    source = os.fspath(filepath)
    if source.endswith(".keras"):
        if not model.built:
            raise ValueError(f"model '{model.name}' is not built: build or call it before "
                             "load_weights")
        shapes = [tuple(v.shape) for layer in model.layers for v in saved_weights(layer)]
        _, data = read_keras_archive(source, lambda config: weights_budget_of(shapes))
        stored = read_weights_h5(data, source)
    else:
        if not source.endswith((".h5", ".hdf5")):
            raise ValueError(f"load_weights reads .weights.h5, legacy .h5 or .keras files, got {source}")
        from linea.keras._legacy_h5 import is_legacy_h5, load_legacy_weights

        if not source.endswith(".weights.h5") and is_legacy_h5(source):
            return load_legacy_weights(model, source)
        stored = read_weights_file(source)
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: build or call it before load_weights")
    _assign(model, stored, source)


def deserialize_layer(entry: dict):
    from linea.keras import layers as layers_module

    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise FormatError(f"a layer entry of the model config is malformed: {str(entry)[:200]}")
    name = entry.get("class_name")
    cls = getattr(layers_module, name) if name in READABLE_LAYERS else None
    if cls is None:
        raise FormatError(f"layer type {name!r} is not supported by linea (it reads "
                          f"{', '.join(READABLE_LAYERS)})")
    config = dict(entry.get("config", {}))
    if name == "InputLayer":
        return cls(batch_shape=config.get("batch_shape") or config.get("batch_input_shape"),
                   dtype=config.get("dtype"), name=config.get("name"))
    layer = cls.from_config(config)
    build = entry.get("build_config", {}).get("input_shape")
    if build and not layer.built:
        layer._ensure_built(tuple(build))
    return layer


def _optimizer_from_config(entry: dict, source: str):
    """A Keras-flavour optimizer from its serialized form; a schedule as learning_rate included."""
    import inspect

    from linea.keras import optimizers, schedules

    cls = optimizers._BY_NAME.get(str(entry.get("class_name", "")).lower(), optimizers.RMSprop)
    options = dict(_mapping(entry.get("config", {}), "the optimizer's config", source))
    rate = options.get("learning_rate")
    if isinstance(rate, dict):
        try:
            options["learning_rate"] = schedules.deserialize(rate)
        except ValueError as error:
            raise FormatError(f"{source}: the optimizer's learning_rate: {error}; load with "
                              "compile=False to read the model without its training setup") from None
    accepted = inspect.signature(cls.__init__).parameters
    try:
        return cls(**{k: v for k, v in options.items() if k in accepted and k != "name"})
    except (TypeError, ValueError) as error:
        raise FormatError(f"{source}: the optimizer config {str(options)[:200]} cannot be "
                          f"rebuilt: {error}") from None


def load_model(filepath, compile: bool = True):
    """A ``linea.keras.Sequential`` from a Keras 3 ``.keras`` file or a legacy ``.h5`` model file.

    Functional models are read when their layers form one chain (see ``_model_config``).
    """
    from linea.keras._sequential import Sequential

    source = os.fspath(filepath)
    if source.endswith((".h5", ".hdf5")):  # Keras 2's legacy format (model.save("m.h5"))
        from linea.keras._legacy_h5 import load_legacy_model

        return load_legacy_model(source)
    file_config, weights = read_keras_archive(source)
    _mapping(file_config.get("build_config") or {}, "the model's build_config", source)
    config = sequential_config(file_config, source)
    stored = read_weights_h5(weights, source)
    check_against_weights(expected_shapes(config, source), stored, source)
    try:
        model = Sequential.from_config(config.get("config", {}))
        if not model.built and (config.get("build_config") or {}).get("input_shape"):
            model._ensure_built(tuple(config["build_config"]["input_shape"]))
    except FormatError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise FormatError(f"{source}: the model config cannot be rebuilt: {error}") from None
    _assign(model, stored, source)
    compile_config = file_config.get("compile_config")
    if compile and compile_config is not None:
        _mapping(compile_config, "compile_config", source)
    if compile and isinstance(compile_config, dict) and compile_config.get("loss"):
        optimizer = compile_config.get("optimizer") or "rmsprop"
        if isinstance(optimizer, dict):
            optimizer = _optimizer_from_config(optimizer, source)
        try:
            model.compile(optimizer=optimizer, loss=compile_config["loss"],
                          metrics=compile_config.get("metrics") or None)
        except (TypeError, ValueError):
            pass  # a loss or metric linea does not know: the model still predicts
    return model
