"""Independent runners: the source file's own framework computing its outputs.

``linea convert`` compares the file it wrote with what the *source file* means,
not with linea's own reading of it. Each runner here executes a file with the
tool that defines its format — onnxruntime for ``.onnx``, real Keras for
``.keras``/``.weights.h5``, real PyTorch (with the ``safetensors`` package) for
PyTorch-layout state dicts — and returns ``(outputs, description)``, or None
where no such runner is installed or applicable (the caller then says so).
Weights-only files need the architecture; the runner builds it in the real
framework from the layer list, and loads the weights with that framework's
own loader.
"""
from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np

__all__ = ["run_independently"]


def _available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _onnxruntime(path, x):
    if not _available("onnxruntime"):
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x})[0], "onnxruntime"


def _keras():
    if "keras" not in __import__("sys").modules and "KERAS_BACKEND" not in os.environ:
        if not _available("tensorflow") and not _available("jax") and _available("torch"):
            os.environ["KERAS_BACKEND"] = "torch"
    import keras

    return keras


def _keras_model_file(path, x):
    if not (_available("keras") and _available("h5py")):
        return None
    keras = _keras()
    model = keras.saving.load_model(os.fspath(path), compile=False)
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False))), "Keras"


def _keras_weights_file(path, x, specs, weightless):
    if not (_available("keras") and _available("h5py")):
        return None
    from linea.io._spec import _needs_leaky_layer, keras_activation

    keras = _keras()
    activation_layers = any(name.split("_")[0] == "activation" for name in weightless)
    layers, index = [keras.Input(shape=x.shape[1:], dtype=str(x.dtype))], 0
    try:
        while index < len(specs):
            spec = specs[index]
            following = specs[index + 1] if index + 1 < len(specs) else None
            if spec.kind == "linear":
                fold = following is not None and following.kind == "activation" and \
                    not activation_layers and not _needs_leaky_layer(following)
                layers.append(keras.layers.Dense(
                    spec.weight.shape[0], use_bias=spec.bias is not None, dtype=str(x.dtype),
                    activation=keras_activation(following) if fold else None))
                index += 2 if fold else 1
                continue
            if spec.kind == "activation" and _needs_leaky_layer(spec):
                layers.append(keras.layers.LeakyReLU(negative_slope=spec.extra["negative_slope"]))
            elif spec.kind == "activation":
                layers.append(keras.layers.Activation(keras_activation(spec)))
            elif spec.kind == "layernorm":
                layers.append(keras.layers.LayerNormalization(
                    epsilon=spec.eps, center=spec.bias is not None, dtype=str(x.dtype)))
            elif spec.kind == "dropout":
                layers.append(keras.layers.Dropout(spec.rate))
            elif spec.kind == "flatten":
                layers.append(keras.layers.Flatten())
            index += 1
    except TypeError:  # an activation Keras cannot name: no Keras twin
        return None
    model = keras.Sequential(layers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns, not fails, on weights it skips
        model.load_weights(os.fspath(path))
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False))), "Keras"


def torch_twin(module):
    """The ``torch.nn`` module equal to a linea ``nn`` module of the kinds the layer list holds."""
    import torch

    from linea import nn
    from linea.io._spec import OnnxFlatten

    kind = type(module).__name__
    if isinstance(module, nn.Sequential):
        return torch.nn.Sequential(*[torch_twin(child) for child in module])
    if isinstance(module, OnnxFlatten):
        return None
    settings = {
        "Linear": lambda m: dict(in_features=m.in_features, out_features=m.out_features,
                                 bias=m.bias is not None),
        "LayerNorm": lambda m: dict(normalized_shape=m.normalized_shape, eps=m.eps,
                                    elementwise_affine=m.elementwise_affine, bias=m.bias is not None),
        "GELU": lambda m: dict(approximate=m.approximate),
        "Softmax": lambda m: dict(dim=m.dim), "LogSoftmax": lambda m: dict(dim=m.dim),
        "LeakyReLU": lambda m: dict(negative_slope=m.negative_slope),
        "Softplus": lambda m: dict(beta=m.beta, threshold=m.threshold),
        "Dropout": lambda m: dict(p=m.p), "Flatten": lambda m: dict(start_dim=m.start_dim,
                                                                    end_dim=m.end_dim),
    }
    plain = ("ReLU", "Tanh", "Sigmoid", "SiLU", "Identity")
    if kind not in settings and kind not in plain:
        return None
    return getattr(torch.nn, kind)(**settings.get(kind, lambda m: {})(module))


def _torch_state_file(path, kind, x, specs):
    """PyTorch-layout .pt/.safetensors: torch (and safetensors) read the bytes, torch computes."""
    if not _available("torch"):
        return None
    import torch

    from linea.io._spec import nn_from_spec

    twin = torch_twin(nn_from_spec(specs))
    if twin is None or any(child is None for child in twin):
        return None
    source = os.fspath(path)
    if kind == "torch":
        loaded = torch.load(source, map_location="cpu", weights_only=True)
        for wrapper in ("state_dict", "model_state_dict", "model"):
            if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
                loaded = loaded[wrapper]
                break
    else:
        from safetensors import safe_open

        if source.endswith(".index.json"):
            return None
        with safe_open(source, framework="pt") as handle:
            loaded = {name: handle.get_tensor(name) for name in handle.keys()}
            for dropped, kept in (handle.metadata() or {}).items():  # save_model's tied names
                if dropped not in loaded and kept in loaded:
                    loaded[dropped] = loaded[kept]
    state = {}
    for index, spec in enumerate(specs):
        if spec.kind not in ("linear", "layernorm"):
            continue
        if spec.name is None:
            return None
        separator = "." if spec.name else ""
        for leaf in ("weight", "bias"):
            key = f"{spec.name}{separator}{leaf}"
            if key in loaded:
                state[f"{index}.{leaf}"] = loaded[key]
            elif leaf == "weight" or getattr(spec, leaf) is not None:
                return None  # not PyTorch names: no independent reading
    twin.load_state_dict(state, strict=True)
    twin.eval()
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    with torch.no_grad():
        return twin.to(dtype)(torch.from_numpy(x)).numpy(), "PyTorch"


def run_independently(path, kind: str, x: np.ndarray, specs, weightless=()):
    """(outputs, runner name) of ``path`` run by its own framework, or None where none applies.

    A runner that is installed but fails to run the file raises; the caller reports it.
    """
    source = os.fspath(path)
    if kind == "onnx":
        return _onnxruntime(source, x)
    if kind == "keras":
        if source.endswith(".keras"):
            return _keras_model_file(source, x)
        if source.endswith(".weights.h5"):
            return _keras_weights_file(source, x, specs, weightless)
        return None
    return _torch_state_file(source, kind, x, specs)
