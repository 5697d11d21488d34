"""Reading and writing weights and models: safetensors, PyTorch, Keras 3 and ONNX files.

The format comes from the file's extension or ``format=`` ("safetensors",
"torch", "keras", "onnx"). Every reader raises ``linea.FormatError`` on a bad
file and checks sizes before a parser allocates; nothing is unpickled except
through PyTorch's restricted ``torch.load(weights_only=True)``.

- ``load_state_dict(path)`` → {name: NumPy array}; ``save_state_dict(state, path)``.
- ``load_model(path, flavour="torch"|"keras", activation=..., layout=...)`` builds a model:
  ``.keras`` and ``.onnx`` files carry the architecture; a bare state dict is read as an
  MLP whose layout is detected (``layout=`` settles square layers) and whose activations
  must be given.
- ``save_model(model, path, layout=...)`` writes either flavour to any format.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from linea._tensor import host_array
from linea.io import _keras_files, _onnx, _safetensors, _torch
from linea.io._formats import FORMATS, detect_format
from linea.io._layout import LAYOUTS, specs_from_state, state_from_specs
from linea.io._spec import (LayerSpec, keras_from_spec, nn_from_spec, spec_from_keras,
                            spec_from_nn)
from linea.keras._sequential import Sequential as KerasSequential
from linea.nn.modules._module import Module

__all__ = ["load_state_dict", "save_state_dict", "load_model", "save_model", "read_specs",
           "write_specs", "specs_of", "detect_format", "FORMATS", "LAYOUTS", "LayerSpec"]


def _host(value) -> np.ndarray:
    array = host_array(value)
    return np.asarray(value) if array is None else array


def load_state_dict(path, format: str | None = None) -> "OrderedDict[str, np.ndarray]":
    """{name: array} from any supported file; ONNX files give PyTorch-style keys."""
    kind = detect_format(path, format)
    if kind == "safetensors":
        return _safetensors.read(path)
    if kind == "torch":
        return _torch.read(path)
    if kind == "keras":
        return _keras_files.read_state(path)
    return state_from_specs(_onnx.read(path), "torch")


def _state_layout(state) -> str:
    keys = list(state)
    if any(k.endswith((".kernel", "/kernel", "/gamma", "/beta")) for k in keys):
        return "keras"
    return "torch"


def save_state_dict(state, path, format: str | None = None, *, layout: str | None = None,
                    activation: str | None = None) -> None:
    """Write a state dict. Keras and ONNX files need a model structure, read from the keys."""
    kind = detect_format(path, format)
    arrays = OrderedDict((str(k), _host(v)) for k, v in state.items())
    if kind == "safetensors":
        return _safetensors.write(arrays, path)
    if kind == "torch":
        return _torch.write(arrays, path)
    specs = specs_from_state(arrays, activation or "linear", layout, "state dict")
    write_specs(specs, path, kind)


def read_specs(path, format: str | None = None, *, activation: str | None = None,
               layout: str | None = None) -> list[LayerSpec]:
    """The neutral layer list of any file (architecture files need no ``activation``)."""
    kind = detect_format(path, format)
    source = os.fspath(path)
    if kind == "onnx":
        return _onnx.read(path)
    if kind == "keras" and source.endswith(".keras"):
        return _keras_files.specs_of_model_file(path)
    state = load_state_dict(path, kind)
    return specs_from_state(state, activation, layout, source)


def write_specs(specs, path, format: str | None = None, *, layout: str | None = None,
                input_rank: int = 2) -> None:
    kind = detect_format(path, format)
    source = os.fspath(path)
    if kind == "onnx":
        return _onnx.write(specs, path, input_rank)
    if kind == "keras":
        if source.endswith(".keras"):
            return _keras_files.write_model(specs, path)
        return _keras_files.write_weights(specs, path)
    state = state_from_specs(specs, layout or "torch")
    if kind == "torch":
        if layout == "keras":
            raise ValueError("PyTorch .pt files hold PyTorch-layout state dicts; drop layout='keras'")
        return _torch.write(state, path)
    return _safetensors.write(state, path)


def load_model(path, format: str | None = None, *, flavour: str = "torch", model=None,
               activation: str | None = None, layout: str | None = None):
    """A model from a file: into ``model`` if given, else built as ``flavour`` ("torch"/"keras").

    Loading into an existing model checks everything first; a failure changes nothing.
    """
    if model is not None:
        if isinstance(model, KerasSequential):
            specs = read_specs(path, format, activation=activation or "linear", layout=layout)
            model.set_weights(list(state_from_specs(specs, "keras").values()))
            return model
        if isinstance(model, Module):
            kind = detect_format(path, format)
            state = load_state_dict(path, kind)
            if _state_layout(state) == "keras" or kind == "onnx":
                specs = specs_from_state(state, activation or "linear", layout, os.fspath(path))
                state = state_from_specs(specs, "torch")
            model.load_state_dict(state)
            return model
        raise TypeError(f"model must be a linea.nn.Module or linea.keras.Sequential, got "
                        f"{type(model).__name__}")
    specs = read_specs(path, format, activation=activation, layout=layout)
    if flavour == "torch":
        return nn_from_spec(specs)
    if flavour == "keras":
        return keras_from_spec(specs)
    raise ValueError(f"flavour must be 'torch' or 'keras', got {flavour!r}")


def specs_of(model) -> list[LayerSpec]:
    if isinstance(model, KerasSequential):
        return spec_from_keras(model)
    if isinstance(model, Module):
        return spec_from_nn(model)
    raise TypeError(f"expected a linea.nn model or a linea.keras.Sequential, got {type(model).__name__}")


def save_model(model, path, format: str | None = None, *, layout: str | None = None,
               input_rank: int = 2) -> None:
    """Write a model of either flavour to any format (state-dict formats in ``layout``).

    The default layout is the model's own: PyTorch keys for ``nn`` models, Keras
    paths for Keras models.
    """
    if layout is None:
        layout = "keras" if isinstance(model, KerasSequential) else "torch"
    kind = detect_format(path, format)
    if kind == "keras" and os.fspath(path).endswith(".keras") and isinstance(model, KerasSequential):
        return model.save(path)
    write_specs(specs_of(model), path, kind, layout=layout, input_rank=input_rank)
