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


def _keras_run(keras, model, x):
    """Keras's outputs for inputs in the layer list's layout: images go in as (N, H, W, C)."""
    images = x.ndim == 4
    out = np.asarray(keras.ops.convert_to_numpy(
        model(np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if images else x, training=False)))
    return out.transpose(0, 3, 1, 2) if images and out.ndim == 4 else out


def _keras_model_file(path, x):
    if not (_available("keras") and _available("h5py")):
        return None
    keras = _keras()
    model = keras.saving.load_model(os.fspath(path), compile=False)
    return _keras_run(keras, model, x), "Keras"


def _keras_weights_file(path, x, specs, weightless):
    if not (_available("keras") and _available("h5py")):
        return None
    from linea.io._spec import _needs_leaky_layer, keras_activation, keras_from_spec
    from linea.io._spec_images import IMAGE_KINDS

    keras = _keras()
    if any(spec.kind in IMAGE_KINDS for spec in specs):
        # Keras builds the architecture linea read (from its Keras config), then reads the
        # file with its own loader and computes with its own ops.
        config = keras_from_spec(specs, specs[0].extra.get("input_shape")).get_config()
        model = keras.Sequential.from_config(config)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.load_weights(os.fspath(path))
        return _keras_run(keras, model, x), "Keras"
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
    return _keras_run(keras, model, x), "Keras"


def torch_twin(module):
    """The ``torch.nn`` module equal to a linea ``nn`` module of the kinds the layer list holds."""
    import torch

    from linea import nn
    from linea.io.kinds import OnnxFlatten

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
        "Conv2d": lambda m: dict(in_channels=m.in_channels, out_channels=m.out_channels,
                                 kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                                 dilation=m.dilation, groups=m.groups, bias=m.bias is not None),
        "BatchNorm1d": _batch_norm_settings, "BatchNorm2d": _batch_norm_settings,
        "MaxPool2d": lambda m: dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                                    dilation=m.dilation, ceil_mode=m.ceil_mode),
        "AvgPool2d": lambda m: dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                                    ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad,
                                    divisor_override=m.divisor_override),
        "AdaptiveAvgPool2d": lambda m: dict(output_size=m.output_size),
    }
    plain = ("ReLU", "Tanh", "Sigmoid", "SiLU", "Identity")
    if kind not in settings and kind not in plain:
        return None
    return getattr(torch.nn, kind)(**settings.get(kind, lambda m: {})(module))


def _batch_norm_settings(module) -> dict:
    return dict(num_features=module.num_features, eps=module.eps, momentum=module.momentum,
                affine=module.affine, track_running_stats=module.track_running_stats,
                bias=module.bias is not None)


_LEAVES = {"linear": ("weight", "bias"), "layernorm": ("weight", "bias"), "conv2d": ("weight", "bias"),
           "batchnorm": ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}


def _torch_state_file(path, file_format, x, specs):
    """PyTorch-layout .pt/.safetensors: torch (and safetensors) read the bytes, torch computes."""
    if not _available("torch"):
        return None
    import torch

    from linea.io._spec import nn_from_spec

    twin = torch_twin(nn_from_spec(specs))
    if twin is None or any(child is None for child in twin):
        return None
    source = os.fspath(path)
    if file_format == "torch":
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
    state, index = {}, 0
    for spec in specs:
        position = index  # the spec's module in the twin (a Keras global pool is two)
        index += 2 if spec.kind == "globalavgpool" and not spec.extra.get("keepdims") else 1
        if spec.kind not in _LEAVES:
            continue
        if spec.name is None:
            return None
        separator = "." if spec.name else ""
        for leaf in _LEAVES[spec.kind]:
            key = f"{spec.name}{separator}{leaf}"
            present = getattr(spec, leaf, None) is not None or leaf not in ("weight", "bias")
            if key in loaded:
                state[f"{position}.{leaf}"] = loaded[key]
            elif present and leaf != "num_batches_tracked":
                return None  # not PyTorch names: no independent reading
    for name, buffer in twin.state_dict().items():  # a file may leave the counter out
        if name.endswith("num_batches_tracked") and name not in state:
            state[name] = buffer
    twin.load_state_dict(state, strict=True)
    twin.eval()
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    with torch.no_grad():
        return twin.to(dtype)(torch.from_numpy(x)).numpy(), "PyTorch"


def run_independently(path, file_format: str, x: np.ndarray, specs, weightless=()):
    """(outputs, runner name) of ``path`` run by its own framework, or None where none applies.

    A runner that is installed but fails to run the file raises; the caller reports it.
    """
    source = os.fspath(path)
    if file_format == "onnx":
        return _onnxruntime(source, x)
    if file_format == "keras":
        from linea.io._keras_files import is_legacy_model

        if source.endswith(".keras") or is_legacy_model(source):  # Keras reads legacy .h5 too
            return _keras_model_file(source, x)
        if source.endswith(".weights.h5"):
            return _keras_weights_file(source, x, specs, weightless)
        return None
    return _torch_state_file(source, file_format, x, specs)
