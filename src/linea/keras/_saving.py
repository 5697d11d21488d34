"""Keras 3 files for the Keras flavour: ``.weights.h5`` and ``.keras`` (a zip of config,
metadata, weights), their bytes read and written by ``linea.formats``.

What is Keras's here: which layer's weights live at which ``layers/<path>/vars/<index>``
(paths from the layers' classes), the order of each layer's variables, the config of a
Sequential, and how many bytes a config can justify (``config_weights_budget``). Layouts
follow what Keras 3 writes, so real Keras reads linea's files and linea reads Keras's.
Loading checks every layer's weights before assigning any, so a failed load changes
nothing; a file that cannot be read raises ``linea.FormatError``.
"""
from __future__ import annotations

import datetime
import math
import os

from linea.backend import xp
from linea._errors import FormatError
from linea._files import atomic_write
from linea._versions import mark_written
from linea.formats import (keras_archive_bytes, read_keras_archive, read_weights_file,
                           read_weights_h5, weights_h5_bytes as _weights_h5_bytes)
from linea.keras._model_config import (READABLE_LAYERS, check_against_weights, expected_shapes,
                                       mapping as _mapping, sequential_config)

__all__ = ["save_weights", "load_weights", "save_model", "load_model", "deserialize_layer",
           "weights_h5_bytes", "weight_paths", "saved_weights", "config_weights_budget",
           "weights_budget_of", "KERAS_VERSION"]

KERAS_VERSION = "3.15.1"


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
    layers = [(path, layer.name, [variable._data for variable in saved_weights(layer)])
              for layer, path in zip(model.layers, weight_paths(model))]
    return _weights_h5_bytes(layers, model.name)


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
    atomic_write(filepath, keras_archive_bytes(metadata, config, weights_h5_bytes(model)))


# ---- reading ---------------------------------------------------------------------------

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
        from linea.formats import is_legacy_h5
        from linea.keras._legacy_h5 import load_legacy_weights

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
    file_config, weights = read_keras_archive(
        source, lambda config: config_weights_budget(config, source))
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
