"""Image layers in the neutral layer list, and the data layout they imply.

The layer list describes a model as PyTorch computes it: images channels-first,
(C, H, W) per sample. Its image kinds:

- ``conv2d``: weight (out, in/groups, kh, kw), bias; extra stride, padding4
  (top, bottom, left, right), dilation, groups;
- ``maxpool2d`` / ``avgpool2d``: extra kernel, stride, padding4, and for averages
  count_include_pad and edge ("zeros", or "replicate" where Keras's torch backend
  repeats the edge into uneven "same" padding);
- ``batchnorm``: weight (gamma) and bias (beta), each possibly None; extra
  running_mean, running_var, momentum in PyTorch's sense (Keras's 0.99 is 0.01),
  rank (2 for features, 4 for images); eps;
- ``globalavgpool``: extra keepdims ((C, 1, 1) or (C,));
- ``flatten`` of images records extra image_shape (C, H, W).

**The Flatten-order trap.** A Keras model is channels-last, so its Flatten emits an
image's features in (H, W, C) order where PyTorch's emits (C, H, W) order. Every
per-feature weight after such a Flatten — up to and including the first linear
layer (a BatchNorm or LayerNorm on the flat features, then the Dense) — is
permuted between the two orders when a model crosses flavours. Copying the kernel
transposed but unpermuted gives wrong numbers and no error; linea never does.
"""
from __future__ import annotations

import numpy as np

from linea.io.kinds import KINDS, LayerSpec
from linea.keras import activations
from linea.keras import layers as keras_layers
from linea.keras.layers._conv import same_padding
from linea.nn.functional._pooling import pooled_size

__all__ = ["IMAGE_KINDS", "image_spec_from_keras", "keras_image_layer", "shape_after",
           "feature_permutation", "permute_features", "nn_shape_of_keras"]

IMAGE_KINDS = tuple(name for name, kind in KINDS.items() if kind.image)
#: Kinds whose weights are per feature: permuted with the features after a Flatten.
_PER_FEATURE = ("batchnorm", "layernorm")


def _copy(array):
    return None if array is None else np.array(array, copy=True)


# ---- shapes ---------------------------------------------------------------------------------

def shape_after(spec, shape):
    """The per-sample (channels-first) shape after ``spec``, or None where it is not known."""
    if shape is None:
        return None
    kind, extra = spec.kind, spec.extra
    if kind == "conv2d" or kind in ("maxpool2d", "avgpool2d"):
        if len(shape) != 3:
            return None
        window = spec.weight.shape[2:] if kind == "conv2d" else extra["kernel"]
        dilation = extra.get("dilation", (1, 1))
        top, bottom, left, right = extra["padding4"]
        out = [pooled_size(size, k, s, before, after, d)
               for size, k, s, before, after, d in zip(shape[1:], window, extra["stride"],
                                                       (top, left), (bottom, right), dilation)]
        channels = spec.weight.shape[0] if kind == "conv2d" else shape[0]
        return (channels, *out)
    if kind == "globalavgpool":
        return (shape[0], 1, 1) if extra.get("keepdims") else (shape[0],)
    if kind == "flatten":
        return (int(np.prod(shape)),)
    if kind in ("linear", "qlinear"):
        return tuple(shape[:-1]) + (spec.weight.shape[0],)
    return tuple(shape)


def nn_shape_of_keras(batch_shape, data_format: str = "channels_last"):
    """The per-sample channels-first shape of a Keras batch shape (None for unknown)."""
    if batch_shape is None:
        return None
    shape = tuple(batch_shape[1:])
    if len(shape) == 3 and data_format == "channels_last":
        return (shape[2], shape[0], shape[1])
    return shape


def feature_permutation(image_shape, to: str) -> np.ndarray:
    """Indices p with features_to = features_from[p] between (C, H, W) and (H, W, C) order."""
    channels, height, width = image_shape
    if to == "channels_first":  # Keras's (H, W, C) features → PyTorch's (C, H, W)
        return np.arange(height * width * channels).reshape(height, width, channels) \
            .transpose(2, 0, 1).reshape(-1)
    return np.arange(channels * height * width).reshape(channels, height, width) \
        .transpose(1, 2, 0).reshape(-1)


def permute_features(specs, start: int, permutation: np.ndarray) -> list:
    """Copies of specs[start:] with the flat features reordered by ``permutation``: per-feature
    layers until the first linear one, which takes its input columns in the new order."""
    out = list(specs)
    for index in range(start, len(out)):
        spec = out[index]
        if spec.kind in ("linear", "qlinear"):
            # (an int8 layer's scales are per output channel: they do not move)
            out[index] = _replace(spec, weight=np.ascontiguousarray(spec.weight[:, permutation]))
            return out
        if spec.kind in _PER_FEATURE:
            extra = dict(spec.extra)
            for key in ("running_mean", "running_var"):
                if extra.get(key) is not None:
                    extra[key] = np.ascontiguousarray(extra[key][permutation])
            out[index] = _replace(spec, weight=None if spec.weight is None else
                                  np.ascontiguousarray(spec.weight[permutation]),
                                  bias=None if spec.bias is None else
                                  np.ascontiguousarray(spec.bias[permutation]), extra=extra)
        elif spec.kind not in ("activation", "dropout"):
            raise TypeError(f"a {spec.kind} layer between a Flatten of images and the next linear "
                            "layer: linea cannot carry the Flatten's feature order through it")
    return out


def _replace(spec, **changes):
    from dataclasses import replace

    return replace(spec, **changes)


# ---- from nn --------------------------------------------------------------------------------

# ---- from Keras -----------------------------------------------------------------------------

def _keras_padding4(layer, window, stride, dilation, batch_shape):
    if layer.padding == "valid":
        return (0, 0, 0, 0)
    channels_last = layer.data_format == "channels_last"
    size = (batch_shape[1:3] if channels_last else batch_shape[2:4]) if batch_shape else (None, None)
    pads = []
    for length, k, s, d in zip(size, window, stride, dilation):
        if length is None:
            if s != 1:
                raise TypeError(f"layer '{layer.name}': padding='same' with strides needs the "
                                "image size, which the model does not record; build it with its input shape")
            length = 1  # stride 1: the padding does not depend on the size
        pads += list(same_padding(length, k, s, d))
    return tuple(pads)


def image_spec_from_keras(layer, batch_shape):
    """The specs of one Keras image layer (its Keras input batch shape), or None if it is not one."""
    if isinstance(layer, keras_layers.Conv2D):
        specs = [LayerSpec("conv2d", np.ascontiguousarray(_copy(layer.kernel._data).transpose(3, 2, 0, 1)),
                       None if layer.bias is None else _copy(layer.bias._data), name=layer.name,
                       extra={"stride": layer.strides, "dilation": layer.dilation_rate,
                              "groups": layer.groups,
                              "padding4": _keras_padding4(layer, layer.kernel_size, layer.strides,
                                                          layer.dilation_rate, batch_shape)})]
        name = activations.serialize(layer.activation)
        if name != "linear":
            specs.append(LayerSpec("activation", activation=name))
        return specs
    if isinstance(layer, (keras_layers.MaxPooling2D, keras_layers.AveragePooling2D)):
        padding4 = _keras_padding4(layer, layer.pool_size, layer.strides, (1, 1), batch_shape)
        extra = {"kernel": layer.pool_size, "stride": layer.strides, "padding4": padding4}
        if isinstance(layer, keras_layers.MaxPooling2D):
            extra["dilation"] = (1, 1)
            return [LayerSpec("maxpool2d", name=layer.name, extra=extra)]
        top, bottom, left, right = padding4
        extra.update(count_include_pad=False,
                     edge="replicate" if (top != bottom or left != right) else "zeros")
        return [LayerSpec("avgpool2d", name=layer.name, extra=extra)]
    if isinstance(layer, keras_layers.GlobalAveragePooling2D):
        return [LayerSpec("globalavgpool", name=layer.name, extra={"keepdims": layer.keepdims})]
    if isinstance(layer, keras_layers.BatchNormalization):
        rank = len(batch_shape) if batch_shape is not None else None
        channel_axes = {2: (-1, 1), 4: (-1, 3)}.get(rank, ())
        images_first = rank == 4 and layer.axis == 1
        if layer.axis not in channel_axes and not images_first:
            raise TypeError(f"BatchNormalization '{layer.name}' normalizes axis {layer.axis} of "
                            f"rank-{rank} inputs; linea converts it over the features of (N, F) "
                            "inputs or the channels of images")
        return [LayerSpec("batchnorm", None if layer.gamma is None else _copy(layer.gamma._data),
                      None if layer.beta is None else _copy(layer.beta._data), eps=layer.epsilon,
                      name=layer.name,
                      extra={"running_mean": _copy(layer.moving_mean._data),
                             "running_var": _copy(layer.moving_variance._data),
                             "momentum": _complement(layer.momentum), "rank": rank,
                             "keras_channels_first": images_first})]
    return None


def keras_image_layer(spec, following=None):
    """The Keras layer of an image spec (channels-last); activation folded into a Conv2D."""
    extra = spec.extra
    if spec.kind == "conv2d":
        from linea.io._spec import keras_activation

        out_channels, group_in, kh, kw = spec.weight.shape
        padding = _keras_padding_name(spec, (kh, kw), extra["stride"], extra["dilation"])
        fold = following is not None and following.kind == "activation"
        layer = keras_layers.Conv2D(out_channels, (kh, kw), strides=extra["stride"], padding=padding,
                                    dilation_rate=extra["dilation"], groups=extra["groups"],
                                    activation=keras_activation(following) if fold else None,
                                    use_bias=spec.bias is not None, dtype=spec.weight.dtype.name)
        layer._ensure_built((None, None, None, group_in * extra["groups"]))
        layer.kernel._data[...] = spec.weight.transpose(2, 3, 1, 0)
        if spec.bias is not None:
            layer.bias._data[...] = spec.bias
        return layer, fold
    if spec.kind in ("maxpool2d", "avgpool2d"):
        if tuple(extra.get("dilation", (1, 1))) != (1, 1):
            raise TypeError("a dilated MaxPool2d has no Keras pooling twin")
        if spec.kind == "avgpool2d" and extra["count_include_pad"]:
            raise TypeError("an AvgPool2d padded with count_include_pad=True has no Keras twin "
                            "(Keras's averages leave the padding out); use count_include_pad=False")
        padding = _keras_padding_name(spec, extra["kernel"], extra["stride"], (1, 1))
        cls = keras_layers.MaxPooling2D if spec.kind == "maxpool2d" else keras_layers.AveragePooling2D
        return cls(extra["kernel"], strides=extra["stride"], padding=padding), False
    if spec.kind == "globalavgpool":
        return keras_layers.GlobalAveragePooling2D(keepdims=bool(extra.get("keepdims"))), False
    if spec.kind == "batchnorm":
        layer = keras_layers.BatchNormalization(momentum=_complement(extra["momentum"]), epsilon=spec.eps,
                                                scale=spec.weight is not None,
                                                center=spec.bias is not None,
                                                dtype=extra["running_mean"].dtype.name)
        layer._ensure_built((None, len(extra["running_mean"])))
        for variable, value in ((layer.gamma, spec.weight), (layer.beta, spec.bias),
                                (layer.moving_mean, extra["running_mean"]),
                                (layer.moving_variance, extra["running_var"])):
            if variable is not None:
                variable._data[...] = value
        return layer, False
    raise ValueError(f"unknown image layer kind {spec.kind!r}")


def _complement(momentum: float) -> float:
    """1 − momentum between the two conventions, without the binary noise (0.99 → 0.01)."""
    return float(f"{1.0 - momentum:.15g}")


def _keras_padding_name(spec, window, stride, dilation) -> str:
    """"valid" or "same" for a spec's padding; TypeError where Keras has neither."""
    padding4 = tuple(spec.extra["padding4"])
    if padding4 == (0, 0, 0, 0):
        return "valid"
    if tuple(stride) == (1, 1):
        same = same_padding(1, window[0], 1, dilation[0]) + same_padding(1, window[1], 1, dilation[1])
        if padding4 == same:
            return "same"
    shape = spec.extra.get("input_shape")
    if shape is not None:
        same = same_padding(shape[1], window[0], stride[0], dilation[0]) + \
            same_padding(shape[2], window[1], stride[1], dilation[1])
        if padding4 == same:
            return "same"
    raise TypeError(f"a {spec.kind} padded by {padding4} (top, bottom, left, right) has no Keras "
                    "twin: Keras pads 'valid' (none) or 'same' (output ⌈size/stride⌉)")
