"""A framework-neutral description of an MLP-like model, the hub of every conversion.

A model is a list of ``LayerSpec``: linear (weight in PyTorch's (out, in)
layout, bias or None), activation (a Keras name), dropout (rate), layernorm
(weight, bias, eps), flatten. Each flavour and each file format converts to and
from this list, so every path between them goes through one place.
"""
from __future__ import annotations

import numpy as np

from linea import nn
from linea.nn.registry import ACTIVATIONS
from linea.keras import activations
from linea.keras import layers as keras_layers
from linea.keras._sequential import Sequential as KerasSequential
from linea.io._spec_images import IMAGE_KINDS
from linea.io.kinds import KINDS, LayerSpec, activation_settings

__all__ = ["LayerSpec", "spec_from_nn", "spec_from_keras", "nn_from_spec", "keras_from_spec",
           "ACTIVATION_NAMES"]


#: The attribute under which a model built from a file keeps the per-sample input shape
#: the file recorded or the user gave (``load_model(…, input_shape=…)``), so writing it
#: to another format later needs no second ``input_shape=``.
INPUT_SHAPE = "_linea_input_shape"

#: Activation names of the layer list, from the one registry (``linea.nn.registry``).
#: Parameters other than Keras's defaults live in ``extra``: ``negative_slope`` for
#: leaky_relu (Keras 0.2), ``threshold`` for softplus (Keras ∞).
ACTIVATION_NAMES = tuple(ACTIVATIONS)


def keras_activation(spec) -> str:
    """The Keras name of an activation spec; TypeError where Keras has no such activation."""
    settings = activation_settings(spec.activation, spec.extra)
    entry = ACTIVATIONS[spec.activation]
    if spec.activation == "softplus" and settings["threshold"] >= 20:
        # torch's linear branch above the threshold differs from Keras's softplus by
        # log1p(e^-t) ≤ 2.1e-9 for t ≥ 20: below float32's resolution there.
        return "softplus"
    if entry.keras is None or settings != entry.defaults:
        raise TypeError(f"the activation {spec.activation} {settings or ''} has no Keras "
                        "name (Keras's leaky_relu has slope 0.2, its softplus no threshold, its "
                        "gelu string is the exact form); it cannot be converted to Keras")
    return entry.keras


def _copy(array):
    return None if array is None else np.array(array, copy=True)


# ---- from the two flavours ------------------------------------------------------------

def spec_from_nn(model, input_shape=None) -> list[LayerSpec]:
    """The layer list of an ``nn`` model; ``input_shape`` (per sample, e.g. (C, H, W)) lets a
    Flatten of images record what it flattens, which conversion to Keras needs."""
    modules = list(model) if isinstance(model, nn.Sequential) else [model]
    specs = []
    from linea.io._spec_images import shape_after

    if input_shape is None:
        input_shape = model.__dict__.get(INPUT_SHAPE)
    shape = None if input_shape is None else tuple(int(size) for size in input_shape)
    for module in modules:
        if isinstance(module, nn.Identity):
            continue
        kind = next((kind for kind in KINDS.values() if kind.accepts(module)), None)
        if kind is None:
            raise TypeError(
                f"{type(module).__name__} cannot be converted; convertible modules are Linear, "
                "Conv2d, BatchNorm1d/2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), the "
                f"activations of linea.nn.registry ({', '.join(sorted(ACTIVATIONS))}), Dropout, "
                "Flatten, LayerNorm and Identity")
        before = len(specs)
        specs.extend(kind.from_nn(module, shape, specs))
        for spec in specs[before:]:
            if spec.kind in IMAGE_KINDS and shape is not None:
                spec.extra["input_shape"] = shape
            shape = shape_after(spec, shape)
    return specs


def spec_from_keras(model) -> list[LayerSpec]:
    if not isinstance(model, KerasSequential):
        raise TypeError(f"expected a linea.keras.Sequential, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: call or build it first, so its "
                         "weights exist")
    from linea.io._spec_images import (feature_permutation, image_spec_from_keras,
                                       nn_shape_of_keras, permute_features)

    specs, permutations = [], []
    shape = tuple(model._input_shape)  # Keras's batch shape flowing through the layers
    for layer in model.layers:
        if getattr(layer, "data_format", None) not in (None, "channels_last"):
            raise TypeError(f"layer '{layer.name}' has data_format={layer.data_format!r}; linea "
                            "converts channels-last Keras models (Keras's default)")
        images = image_spec_from_keras(layer, shape)
        if images is not None:
            neutral = nn_shape_of_keras(shape)
            if neutral is not None and None not in neutral:
                images[0].extra["input_shape"] = tuple(int(size) for size in neutral)
            specs.extend(images)
        elif isinstance(layer, keras_layers.Dense):
            bias = None if layer.bias is None else _copy(layer.bias._data)
            if layer.quantization_mode is not None:  # int8 kernel (in, units) with its scales
                specs.append(LayerSpec("qlinear", _copy(layer.kernel._data.T), bias, name=layer.name,
                                       extra={"scale": _copy(layer.kernel_scale._data)}))
            else:
                specs.append(LayerSpec("linear", _copy(layer.kernel._data.T), bias, name=layer.name))
            name = activations.serialize(layer.activation)
            if name != "linear":
                specs.append(LayerSpec("activation", activation=name))
        elif isinstance(layer, keras_layers.LeakyReLU):
            specs.append(LayerSpec("activation", activation="leaky_relu", name=layer.name,
                                   extra={"negative_slope": layer.negative_slope}))
        elif isinstance(layer, keras_layers.Activation):
            specs.append(LayerSpec("activation", activation=activations.serialize(layer.activation),
                                   name=layer.name))
        elif isinstance(layer, keras_layers.Dropout):
            specs.append(LayerSpec("dropout", rate=float(layer.rate), name=layer.name))
        elif isinstance(layer, keras_layers.Flatten):
            if len(shape) == 4:  # images (H, W, C): Keras emits their features in that order
                height, width, channels = shape[1:]
                if None in (height, width, channels):
                    raise TypeError(f"Flatten '{layer.name}' flattens images of unknown size "
                                    f"{shape[1:]}; build the model with its input shape")
                specs.append(LayerSpec("flatten", name=layer.name,
                                       extra={"image_shape": (channels, height, width)}))
                permutations.append((len(specs), feature_permutation((channels, height, width),
                                                                     "channels_first")))
            else:
                specs.append(LayerSpec("flatten", name=layer.name))
        elif isinstance(layer, keras_layers.LayerNormalization):
            reference = layer.gamma if layer.gamma is not None else layer.beta
            if reference is None or reference.ndim != 1:
                raise TypeError("only LayerNormalization over the last axis can be converted")
            weight = _copy(layer.gamma._data) if layer.gamma is not None else \
                np.ones(reference.shape, reference._data.dtype)
            bias = _copy(layer.beta._data) if layer.beta is not None else None
            specs.append(LayerSpec("layernorm", weight, bias, eps=float(layer.epsilon), name=layer.name))
        else:
            raise TypeError(f"{type(layer).__name__} layer '{layer.name}' cannot be converted; "
                            "convertible layers are Dense, Conv2D, BatchNormalization, "
                            "MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Activation, "
                            "Dropout, Flatten and LayerNormalization")
        shape = tuple(layer.compute_output_shape(shape))
    for start, permutation in permutations:  # Keras's (H, W, C) feature order → (C, H, W)
        specs = permute_features(specs, start, permutation)
    return specs


# ---- to the two flavours ------------------------------------------------------------

def _dtype_name(array) -> str:
    return np.dtype(array.dtype).name


def nn_from_spec(specs) -> nn.Sequential:
    """A ``linea.nn.Sequential`` (eval mode): activations as modules of their own."""
    modules = [module for spec in specs for module in KINDS[spec.kind].to_nn(spec)]
    model = nn.Sequential(*modules).eval()
    recorded = specs[0].extra.get("input_shape") if specs else None
    if recorded is not None:  # what the file or the user said; saving it elsewhere needs it again
        model.__dict__[INPUT_SHAPE] = tuple(int(size) for size in recorded)
    return model



def _needs_leaky_layer(spec) -> bool:
    """A leaky_relu whose slope is not the "leaky_relu" string's 0.2 is a LeakyReLU layer."""
    return spec.activation == "leaky_relu" and \
        activation_settings("leaky_relu", spec.extra)["negative_slope"] != 0.2


def keras_from_spec(specs, input_shape=None) -> KerasSequential:
    """A built ``linea.keras.Sequential``; an activation right after a linear folds into its Dense.

    ``input_shape`` is the per-sample input shape of the model the list describes, e.g.
    (C, H, W) for images: the Keras model takes (H, W, C). Each Flatten of images
    reorders the features after it from (C, H, W) to Keras's (H, W, C) order.
    """
    from linea.io._spec_images import (feature_permutation, keras_image_layer, permute_features,
                                       shape_after)

    specs = list(specs)
    if input_shape is None and specs and specs[0].extra.get("input_shape") is not None:
        input_shape = specs[0].extra["input_shape"]  # recorded when the list was made
    shape = None if input_shape is None else tuple(input_shape)
    for position, spec in enumerate(list(specs)):
        after_images = "image_shape" in spec.extra or any(s.kind in IMAGE_KINDS for s in specs[:position])
        if spec.kind == "flatten" and (after_images or (shape is not None and len(shape) == 3)):
            image = spec.extra.get("image_shape") or (shape if shape is not None and len(shape) == 3 else None)
            if image is None:
                raise ValueError("the model flattens images whose size it does not record, and "
                                "Keras's Flatten orders their features (H, W, C), not PyTorch's "
                                "(C, H, W): pass input_shape=(C, H, W) so linea can reorder them")
            specs = permute_features(specs, position + 1, feature_permutation(image, "channels_last"))
        shape = shape_after(spec, shape)
    layers, index = [], 0
    first_in = None
    while index < len(specs):
        spec = specs[index]
        following = specs[index + 1] if index + 1 < len(specs) else None
        if spec.kind in IMAGE_KINDS:
            layer, folded = keras_image_layer(spec, following)
            if first_in is None and spec.kind == "conv2d":
                first_in = ("images", spec.weight.shape[1] * spec.extra["groups"])
            layers.append(layer)
            index += 2 if folded else 1
            continue
        if spec.kind in ("linear", "qlinear"):
            fold = following is not None and following.kind == "activation" and \
                not _needs_leaky_layer(following)
            out_features, in_features = spec.weight.shape
            first_in = first_in if first_in is not None else ("features", in_features)
            dtype = "float32" if spec.kind == "qlinear" else _dtype_name(spec.weight)
            dense = keras_layers.Dense(out_features, activation=keras_activation(following) if fold else None,
                                       use_bias=spec.bias is not None, dtype=dtype)
            dense._ensure_built((None, in_features))
            if spec.kind == "qlinear":  # Keras's int8 Dense: kernel int8 (in, units), kernel_scale
                dense.quantize("int8")
                dense.kernel_scale._data[...] = spec.extra["scale"]
            dense.kernel._data[...] = spec.weight.T
            if spec.bias is not None:
                dense.bias._data[...] = spec.bias
            layers.append(dense)
            index += 2 if fold else 1
            continue
        if spec.kind == "activation" and _needs_leaky_layer(spec):
            layers.append(keras_layers.LeakyReLU(negative_slope=spec.extra["negative_slope"]))
        elif spec.kind == "activation":
            layers.append(keras_layers.Activation(keras_activation(spec)))
        elif spec.kind == "dropout":
            layers.append(keras_layers.Dropout(spec.rate))
        elif spec.kind == "flatten":
            if spec.extra.get("onnx_axis") is not None:
                raise TypeError(f"an ONNX Flatten(axis={spec.extra['onnx_axis']}) has no Keras "
                                "layer (Keras's Flatten keeps the batch axis and flattens the rest)")
            layers.append(keras_layers.Flatten())
        elif spec.kind == "layernorm":
            if spec.weight.ndim != 1:
                raise TypeError(f"a LayerNorm over the last {spec.weight.ndim} axes cannot be "
                                "converted to Keras's LayerNormalization(axis=-1)")
            norm = keras_layers.LayerNormalization(epsilon=spec.eps, center=spec.bias is not None,
                                                   dtype=_dtype_name(spec.weight))
            norm._ensure_built((None, spec.weight.shape[0]))
            norm.gamma._data[...] = spec.weight
            if spec.bias is not None:
                norm.beta._data[...] = spec.bias
            layers.append(norm)
        else:
            raise ValueError(f"unknown layer kind {spec.kind!r}")
        index += 1
    model = KerasSequential(layers)
    if input_shape is not None:
        shape = tuple(input_shape)
        batch_shape = (None, shape[1], shape[2], shape[0]) if len(shape) == 3 else (None,) + shape
    elif first_in is not None and first_in[0] == "images":
        batch_shape = (None, None, None, first_in[1])
    elif first_in is not None:
        batch_shape = (None, first_in[1])
    else:
        batch_shape = None
    if batch_shape is not None:
        model._ensure_built(batch_shape)
    return model
