"""Reading and writing weights and models: safetensors, PyTorch, Keras 3 and ONNX files.

The format comes from the file's extension or ``format=`` ("safetensors",
"torch", "keras", "onnx"). Every reader raises ``linea.FormatError`` on a bad
file and checks sizes before a parser allocates; nothing is unpickled except
through PyTorch's restricted ``torch.load(weights_only=True)``.

- ``load_state_dict(path)`` → {name: NumPy array}; ``save_state_dict(state, path)``.
- ``load_model(path, flavour="torch"|"keras", activation=..., layers=..., layout=...)``
  builds a model: ``.keras`` and ``.onnx`` files carry the architecture; a bare state
  dict is read as an MLP whose layout is detected (``layout=`` settles square layers)
  and whose architecture must be given: ``activation=`` for a plain chain of linear
  layers, ``layers=["linear", "layernorm", "relu", "linear"]`` for anything else. What
  the file cannot settle is refused with a ``FormatError`` saying what to pass.
- ``save_model(model, path, layout=...)`` writes either flavour to any format.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from linea.formats import check_savable
from linea._tensor import host_array
from linea.io import _keras_files, _onnx, _safetensors, _torch
from linea.io._formats import FORMATS, detect_format
from linea.io._layout import (LAYOUTS, StoredState, layers_of_specs, specs_from_state,
                              state_from_specs)
from linea.io._spec import (LayerSpec, keras_from_spec, nn_from_spec, spec_from_keras,
                            spec_from_nn)
from linea.keras._sequential import Sequential as KerasSequential
from linea.nn.modules._module import Module

__all__ = ["load_state_dict", "save_state_dict", "load_model", "save_model", "read_specs",
           "write_specs", "specs_of", "layers_of", "read_stored", "detect_format", "FORMATS", "LAYOUTS", "LayerSpec"]


def _host(value) -> np.ndarray:
    array = host_array(value)
    return np.asarray(value) if array is None else array


def load_state_dict(path, format: str | None = None) -> "OrderedDict[str, np.ndarray]":
    """{name: array} from any supported file; ONNX files give PyTorch-style keys.

    The dict comes in the file's own order where it records one (PyTorch, ONNX, legacy
    Keras ``.h5``, ``.keras``), else in natural name order (``dense_2`` before ``dense_10``;
    a safetensors or ``.weights.h5`` file stores names sorted as text). Natural order is a
    layer order only where the names settle it — layers of one class, numbered; where a
    file mixes classes (``dense``, ``layer_normalization``, ``dense_1``) it is not, and
    ``list(state.values())`` is not a list of layers: load through ``load_model(…,
    layers=…)`` or a model's own keys instead.
    """
    return read_stored(path, format).tensors


def read_stored(path, format: str | None = None, shapes_only: bool = False) -> StoredState:
    """A file's tensors with what the file says of their order (see ``_layout``).

    With ``shapes_only`` a reader may give zero-cost stand-ins of the right shape and
    dtype instead of the data (safetensors and Keras weights read their headers only;
    .pt files are mapped, not read).
    """
    file_format = detect_format(path, format)
    if file_format == "safetensors":
        return _safetensors.read_stored(path, shapes_only)
    if file_format == "torch":  # a pickled dict keeps the state dict's (module) order
        return StoredState(_torch.read(path, mapped=shapes_only), ordered=True)
    if file_format == "keras":
        return _keras_files.read_stored(path, shapes_only)
    return StoredState(state_from_specs(_onnx.read(path), "torch"), ordered=True)


def _state_layout(state) -> str:
    keys = list(state)
    if any(k.endswith((".kernel", "/kernel", "/gamma", "/beta")) for k in keys):
        return "keras"
    return "torch"


def save_state_dict(state, path, format: str | None = None, *, layout: str | None = None,
                    activation: str | None = None) -> None:
    """Write a state dict. Keras and ONNX files need a model structure, read from the keys."""
    file_format = detect_format(path, format)
    arrays = OrderedDict((str(k), _host(v)) for k, v in state.items())
    check_savable(arrays, "io.save_state_dict")  # before the destination is touched
    if file_format == "safetensors":
        return _safetensors.write(arrays, path)
    if file_format == "torch":
        return _torch.write(arrays, path)
    specs = specs_from_state(arrays, activation or "linear", layout, "state dict")
    write_specs(specs, path, file_format)


def _architecture_file(file_format: str, source: str) -> bool:
    return file_format == "onnx" or (file_format == "keras" and (source.endswith(".keras") or
                                                   _keras_files.is_legacy_model(source)))


def read_specs(path, format: str | None = None, *, activation: str | None = None,
               layout: str | None = None, layers=None, input_shape=None) -> list[LayerSpec]:
    """The neutral layer list of any file.

    ``.keras`` and ``.onnx`` files record their architecture, which wins: ``activation``
    and ``layers`` are read only for weights-only files.
    """
    file_format = detect_format(path, format)
    source = os.fspath(path)
    if _architecture_file(file_format, source):
        return _onnx.read(path) if file_format == "onnx" else _keras_files.specs_of_model_file(path)
    return specs_from_state(read_stored(path, file_format), activation, layout, source,
                            layers=layers, input_shape=input_shape)


def write_specs(specs, path, format: str | None = None, *, layout: str | None = None,
                input_rank: int = 2) -> None:
    file_format = detect_format(path, format)
    source = os.fspath(path)
    if file_format == "onnx":
        return _onnx.write(specs, path, input_rank)
    if file_format != "keras" and any(spec.kind == "qlinear" for spec in specs):
        raise ValueError(f"an int8-quantized model can be exported to ONNX or Keras files only, "
                         f"not to {file_format}; "
                         f"save it with linea.save(model.state_dict(), path) (int8 weights and "
                         f"scales in safetensors), or save the float model")
    if file_format == "keras":
        if source.endswith(".keras"):
            return _keras_files.write_model(specs, path)
        return _keras_files.write_weights(specs, path)
    state = state_from_specs(specs, layout or "torch")
    if file_format == "torch":
        if layout == "keras":
            raise ValueError("PyTorch .pt files hold PyTorch-layout state dicts; drop layout='keras'")
        return _torch.write(state, path)
    return _safetensors.write(state, path)


def load_model(path, format: str | None = None, *, flavour: str = "torch", model=None,
               activation: str | None = None, layout: str | None = None, layers=None,
               input_shape=None):
    """A model from a file: into ``model`` if given, else built as ``flavour`` ("torch"/"keras").

    ``layers`` (e.g. ``["linear", "layernorm", "relu", "linear"]``) or ``activation``
    give the architecture a weights-only file does not record; a model with image layers
    also needs ``input_shape=(C, H, W)`` (PyTorch's layout: the Keras flavour then takes
    (H, W, C)). Loading into an existing model checks everything first; a failure
    changes nothing.
    """
    if model is not None:
        file_format = detect_format(path, format)
        source = os.fspath(path)
        if not isinstance(model, (KerasSequential, Module)):
            raise TypeError(f"model must be a linea.nn.Module or linea.keras.Sequential, got "
                            f"{type(model).__name__}")
        stored = None if _architecture_file(file_format, source) else read_stored(path, file_format)
        if isinstance(model, Module) and stored is not None and _state_layout(stored.tensors) == "torch":
            model.load_state_dict(stored.tensors)  # PyTorch names: the model's own keys
            return model
        # The model itself gives the architecture the file may not record.
        specs = read_specs(path, file_format) if stored is None else specs_from_state(
            stored, None, layout, source, layers=layers or layers_of(model), input_shape=input_shape)
        if isinstance(model, KerasSequential):
            model.set_weights(list(state_from_specs(specs, "keras").values()))
        else:
            values = state_from_specs(specs, "torch").values()
            model.load_state_dict(OrderedDict(zip(model.state_dict().keys(), values)))
        return model
    specs = read_specs(path, format, activation=activation, layout=layout, layers=layers,
                       input_shape=input_shape)
    if flavour == "torch":
        return nn_from_spec(specs)
    if flavour == "keras":
        return keras_from_spec(specs)
    raise ValueError(f"flavour must be 'torch' or 'keras', got {flavour!r}")


def layers_of(model) -> list[str]:
    """A model's architecture as a ``layers=`` list (what a weights-only file leaves out)."""
    return layers_of_specs(specs_of(model))


def specs_of(model, input_shape=None) -> list[LayerSpec]:
    """The layer list of a model; ``input_shape`` (per sample, (C, H, W) for images) is the
    size of an ``nn`` model's input, which a Flatten of images and ONNX files need."""
    if isinstance(model, KerasSequential):
        return spec_from_keras(model)
    if isinstance(model, Module):
        return spec_from_nn(model, input_shape)
    raise TypeError(f"expected a linea.nn model or a linea.keras.Sequential, got {type(model).__name__}")


def save_model(model, path, format: str | None = None, *, layout: str | None = None,
               input_rank: int = 2, input_shape=None) -> None:
    """Write a model of either flavour to any format (state-dict formats in ``layout``).

    The default layout is the model's own: PyTorch keys for ``nn`` models, Keras
    paths for Keras models. An ``nn`` model with image layers written to ONNX or to a
    Keras file needs ``input_shape=(C, H, W)``.
    """
    if layout is None:
        layout = "keras" if isinstance(model, KerasSequential) else "torch"
    file_format = detect_format(path, format)
    if file_format == "keras" and os.fspath(path).endswith(".keras") and \
            isinstance(model, KerasSequential):
        return model.save(path)
    write_specs(specs_of(model, input_shape), path, file_format, layout=layout,
                input_rank=input_rank)
