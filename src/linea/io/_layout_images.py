"""Bare state dicts of image models: what ``layers=`` and ``input_shape=`` must settle.

A state dict of a CNN records its kernels and norms, but neither where its
poolings and activations sit, nor its strides and paddings, nor the size of the
images it takes — and after a ``Flatten`` the order of the features depends on
that size. So reading one takes the whole architecture, e.g.::

    layers=["conv2d(padding=1)", "relu", "maxpool2d(kernel=2)", "flatten", "linear"]
    input_shape=(C, H, W)

and without either a ``FormatError`` says what to pass. Layer entries (settings in
brackets where the default is not meant): ``conv2d(stride, padding, dilation, groups)``
(padding a number or "same"/"valid"), ``maxpool2d(kernel, stride, padding)``,
``avgpool2d(kernel, stride, padding, count_include_pad)``, ``batchnorm(eps, momentum)``
(momentum in PyTorch's sense), ``adaptiveavgpool`` (PyTorch's AdaptiveAvgPool2d(1)),
``globalavgpool`` (Keras's GlobalAveragePooling2D: (N, C)), plus the MLP entries.

PyTorch-layout files (``0.weight``, ``3.running_mean``) place each weighted layer by
its nn.Sequential number; Keras-layout files (``conv2d/kernel``, ``dense_1/kernel``)
by its class path, numbered per class in model order. A Keras file's Dense after a
Flatten of images takes (H, W, C)-ordered features: they are permuted to the layer
list's (C, H, W) order.
"""
from __future__ import annotations

import re

import numpy as np

from linea._errors import FormatError
from linea.io._spec import LayerSpec
from linea.io.kinds import keras_groups
from linea.io._spec_images import feature_permutation, permute_features, shape_after
from linea.keras.layers._conv import same_padding
from linea.nn.functional import conv2d_padding

__all__ = ["IMAGE_ENTRIES", "image_entry", "image_specs_from_state"]

#: layers= entries of image layers and the settings each takes.
IMAGE_ENTRIES = {"conv2d": {"stride", "padding", "dilation", "groups"},
                 "maxpool2d": {"kernel", "stride", "padding"},
                 "avgpool2d": {"kernel", "stride", "padding", "count_include_pad"},
                 "batchnorm": {"eps", "momentum"}, "adaptiveavgpool": set(), "globalavgpool": set()}
#: {kind: the class part of its Keras weights-file group}, for the kinds with weights.
_KERAS_CLASS = keras_groups()
_WEIGHTED = tuple(_KERAS_CLASS)
_NUMBERED = re.compile(r"^(.*?)(?:_(\d+))?$")


def image_entry(name: str, settings: dict, entry: str) -> LayerSpec:
    """A placeholder spec for one ``layers=`` image entry (weights come from the file)."""
    allowed = IMAGE_ENTRIES[name]
    if set(settings) - allowed:
        raise ValueError(f"layers entry {entry!r}: {name} takes {sorted(allowed) or 'no settings'}")
    if name in ("maxpool2d", "avgpool2d") and "kernel" not in settings:
        raise ValueError(f"layers entry {entry!r}: say the window, e.g. '{name}(kernel=2)'")
    kind = {"adaptiveavgpool": "globalavgpool"}.get(name, name)
    extra = dict(settings, entry=name)
    return LayerSpec(kind, extra=extra)


def _integer(value, what: str, entry: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"layers entry {entry}: {what} must be a whole number, got {value!r}")
    return value


def _keras_index(path: str) -> tuple[str, int]:
    match = _NUMBERED.match(path)
    return match.group(1), int(match.group(2) or 0)


def _place(groups: dict, given: list, layout: str, ordered: bool, source: str) -> list:
    """The file's groups in the order of the weighted entries of ``layers=``."""
    weighted = [(index, spec) for index, spec in enumerate(given) if spec.kind in _WEIGHTED]
    if len(weighted) != len(groups):
        raise FormatError(f"{source}: layers= lists {len(weighted)} layers with weights "
                          f"({', '.join(s.kind for _, s in weighted)}), the file holds "
                          f"{len(groups)} ({', '.join(groups) or 'none'})")
    if layout == "keras":
        by_class: dict = {}
        for prefix in groups:
            stem, number = _keras_index(prefix)
            by_class.setdefault(stem, []).append((number, prefix))
        placed = []
        for _, spec in weighted:
            stem = _KERAS_CLASS[spec.kind]
            members = sorted(by_class.get(stem, []))
            if not members:
                raise FormatError(f"{source}: layers= has a {spec.kind} layer the file holds no "
                                  f"'{stem}' group for; its groups are {sorted(groups)}")
            placed.append(members.pop(0)[1])
            by_class[stem] = members
        return placed
    prefixes = list(groups)
    positions = []
    for prefix in prefixes:
        stem, _, last = prefix.rpartition(".")
        positions.append((stem, int(last)) if last.isdigit() else None)
    if None not in positions and len({stem for stem, _ in positions}) == 1:
        index, at = 0, []  # the nn.Sequential index of each entry (globalavgpool: pool + flatten)
        for spec in given:
            at.append(index)
            index += 2 if (spec.kind == "globalavgpool" and spec.extra.get("entry") == "globalavgpool") else 1
        wanted = [at[i] for i, _ in weighted]
        found = sorted(number for _, number in positions)
        if found != wanted:
            raise FormatError(f"{source}: in nn.Sequential numbering the file's layers sit at "
                              f"{found}, but layers= puts them at {wanted}; list every module, "
                              "activations and poolings included, in order")
        by_number = {number: prefix for prefix, (_, number) in zip(prefixes, positions)}
        return [by_number[number] for number in wanted]
    if ordered:
        return prefixes
    raise FormatError(f"{source}: the layer names {prefixes} are not nn.Sequential numbers and the "
                      "file does not record their order; load it into your own model "
                      "(load_model(path, model=...))")


def image_specs_from_state(groups: dict, given: list, layout: str, input_shape, ordered: bool,
                           source: str) -> list:
    """The layer list of a state dict of an image model (see the module docstring)."""
    if input_shape is None:
        input_shape = _features_in(groups, given, layout, ordered, source)
    if input_shape is None:
        raise FormatError(f"{source}: a state dict of a model with image layers does not record the "
                          "size of its images, which the Flatten order and the paddings depend on; "
                          "pass input_shape=(C, H, W) (--input-shape C,H,W in the CLI)")
    shape = tuple(int(size) for size in input_shape)
    if any(size <= 0 for size in shape):
        raise ValueError(f"input_shape must be positive sizes, got {input_shape!r}")
    placed = iter(_place(groups, given, layout, ordered, source))
    specs, used, permutations = [], set(), []
    for spec in given:
        entry = f"{spec.extra.get('entry', spec.kind)}"
        if spec.kind in _WEIGHTED:
            prefix = next(placed)
            used.add(prefix)
            leaves = dict(groups[prefix])
            spec = _filled(spec, prefix, leaves, layout, shape, source)
        elif spec.kind in ("maxpool2d", "avgpool2d"):
            spec = _pooling(spec, layout, shape, entry, source)
        elif spec.kind == "globalavgpool":
            keep = spec.extra.get("entry") == "adaptiveavgpool"
            spec = LayerSpec("globalavgpool", extra={"keepdims": keep})
        elif spec.kind == "flatten" and len(shape) == 3:
            spec = LayerSpec("flatten", extra={"image_shape": shape})
            if layout == "keras":  # the next Dense takes Keras's (H, W, C) order
                permutations.append((len(specs) + 1, feature_permutation(shape, "channels_first")))
        if spec.kind in ("conv2d", "maxpool2d", "avgpool2d", "batchnorm", "globalavgpool"):
            if spec.kind != "batchnorm" and len(shape) != 3:
                raise FormatError(f"{source}: a {spec.kind} layer needs images, but its input is "
                                  f"{shape} per sample")
            spec.extra["input_shape"] = shape
        specs.append(spec)
        shape = shape_after(spec, shape)
        if shape is not None and any(size <= 0 for size in shape):
            raise FormatError(f"{source}: layer {len(specs) - 1} ({spec.kind}) leaves nothing of an "
                              f"input of shape {tuple(input_shape)}")
    for start, permutation in permutations:
        specs = permute_features(specs, start, permutation)
    return specs


def _features_in(groups: dict, given: list, layout: str, ordered: bool, source: str):
    """(features,) when the model takes feature vectors — BatchNorm over features between
    Dense layers, no image layer — read off its first weighted layer; else None."""
    if any(spec.kind in ("conv2d", "maxpool2d", "avgpool2d", "globalavgpool", "flatten")
           for spec in given):
        return None
    first = next((spec for spec in given if spec.kind in _WEIGHTED), None)
    if first is None:
        return None
    leaves = groups[_place(groups, given, layout, ordered, source)[0]]
    if first.kind == "linear":
        matrix = next((array for array in leaves.values() if np.ndim(array) == 2), None)
        if matrix is None:
            return None
        return (int(matrix.shape[0] if layout == "keras" else matrix.shape[1]),)
    vector = next((array for array in leaves.values() if np.ndim(array) == 1), None)
    return None if vector is None else (int(vector.shape[0]),)


def _leaf(leaves: dict, names, prefix: str, source: str, needed: bool = True):
    for name in names:
        if name in leaves:
            return np.array(leaves.pop(name))
    if needed:
        raise FormatError(f"{source}: layer {prefix!r} has no {'/'.join(names)}; it holds "
                          f"{sorted(leaves)}")
    return None


def _filled(spec, prefix: str, leaves: dict, layout: str, shape, source: str) -> LayerSpec:
    keras = layout == "keras"
    extra = spec.extra
    entry = extra.get("entry", spec.kind)
    if spec.kind == "conv2d":
        weight = _leaf(leaves, ("kernel",) if keras else ("weight",), prefix, source)
        bias = _leaf(leaves, ("bias",), prefix, source, needed=False)
        if weight.ndim != 4:
            raise FormatError(f"{source}: {prefix!r} is a conv2d in layers= but holds a weight of "
                              f"shape {weight.shape}")
        weight = np.ascontiguousarray(weight.transpose(3, 2, 0, 1)) if keras else weight
        groups = _integer(extra.get("groups", 1), "groups", entry)
        stride = (_integer(extra.get("stride", 1), "stride", entry),) * 2
        dilation = (_integer(extra.get("dilation", 1), "dilation", entry),) * 2
        if len(shape) != 3 or weight.shape[1] * groups != shape[0]:
            raise FormatError(f"{source}: conv2d {prefix!r} takes {weight.shape[1] * groups} channels "
                              f"(weight {weight.shape}, groups={groups}), its input is {shape}")
        padding = extra.get("padding", 0)
        if padding == "same" and keras:
            padding4 = same_padding(shape[1], weight.shape[2], stride[0], dilation[0]) + \
                same_padding(shape[2], weight.shape[3], stride[1], dilation[1])
        else:
            if padding not in ("same", "valid"):
                padding = _integer(padding, "padding", entry)
            try:
                padding4 = conv2d_padding(padding, weight.shape[2:], dilation, stride)
            except ValueError as error:
                raise ValueError(f"layers entry {entry}: {error}") from None
        result = LayerSpec("conv2d", weight, bias, name=prefix,
                           extra={"stride": stride, "padding4": padding4, "dilation": dilation,
                                  "groups": groups})
    elif spec.kind == "batchnorm":
        weight = _leaf(leaves, ("gamma",) if keras else ("weight",), prefix, source, needed=False)
        bias = _leaf(leaves, ("beta",) if keras else ("bias",), prefix, source, needed=False)
        mean = _leaf(leaves, ("moving_mean",) if keras else ("running_mean",), prefix, source)
        var = _leaf(leaves, ("moving_variance",) if keras else ("running_var",), prefix, source)
        tracked = _leaf(leaves, ("num_batches_tracked",), prefix, source, needed=False)
        channels = shape[0] if len(shape) == 3 else shape[-1]
        for name, array in (("scale", weight), ("shift", bias), ("mean", mean), ("variance", var)):
            if array is not None and array.shape != (channels,):
                raise FormatError(f"{source}: batchnorm {prefix!r} has a {name} of shape {array.shape} "
                                  f"for an input of {shape} ({channels} channels)")
        assumed = "eps" not in extra
        eps = float(extra.get("eps", 1e-3 if keras else 1e-5))
        momentum = float(extra.get("momentum", 0.01 if keras else 0.1))
        result = LayerSpec("batchnorm", weight, bias, eps=eps, name=prefix,
                           extra={"running_mean": mean, "running_var": var, "momentum": momentum,
                                  "num_batches_tracked": 0 if tracked is None else int(tracked),
                                  "rank": 4 if len(shape) == 3 else 2, "eps_assumed": assumed})
    elif spec.kind == "linear":
        weight = _leaf(leaves, ("kernel",) if keras else ("weight",), prefix, source)
        bias = _leaf(leaves, ("bias",), prefix, source, needed=False)
        weight = weight.T if keras else weight
        width = int(np.prod(shape)) if len(shape) == 1 else shape[-1]
        if weight.ndim != 2 or weight.shape[1] != width:
            raise FormatError(f"{source}: linear {prefix!r} takes {weight.shape[-1]} inputs "
                              f"(weight {weight.shape}), its input is {shape}")
        result = LayerSpec("linear", np.ascontiguousarray(weight), bias, name=prefix)
    else:  # layernorm
        weight = _leaf(leaves, ("gamma",) if keras else ("weight",), prefix, source)
        bias = _leaf(leaves, ("beta",) if keras else ("bias",), prefix, source, needed=False)
        result = LayerSpec("layernorm", weight, bias, eps=spec.eps if spec.extra.get("eps_given")
                           else (1e-3 if keras else 1e-5), name=prefix,
                           extra={} if spec.extra.get("eps_given") else {"eps_assumed": True})
    if leaves:
        raise FormatError(f"{source}: layer {prefix!r} ({spec.kind}) also holds {sorted(leaves)}, "
                          "which that layer does not have")
    return result


def _pooling(spec, layout: str, shape, entry: str, source: str) -> LayerSpec:
    extra = spec.extra
    kernel = (_integer(extra["kernel"], "kernel", entry),) * 2
    stride = (_integer(extra.get("stride", kernel[0]), "stride", entry),) * 2
    padding = extra.get("padding", 0)
    if len(shape) != 3:
        raise FormatError(f"{source}: a {spec.kind} needs images, but its input is {shape} per sample")
    if padding == "same":
        padding4 = same_padding(shape[1], kernel[0], stride[0]) + same_padding(shape[2], kernel[1], stride[1])
    elif padding == "valid":
        padding4 = (0, 0, 0, 0)
    else:
        pad = _integer(padding, "padding", entry)
        padding4 = (pad, pad, pad, pad)
    out = {"kernel": kernel, "stride": stride, "padding4": padding4}
    if spec.kind == "maxpool2d":
        out["dilation"] = (1, 1)
    else:
        top, bottom, left, right = padding4
        include = bool(extra.get("count_include_pad", layout != "keras"))
        out.update(count_include_pad=include and any(padding4),
                   edge="replicate" if (layout == "keras" and (top != bottom or left != right)) else "zeros")
    return LayerSpec(spec.kind, extra=out)
