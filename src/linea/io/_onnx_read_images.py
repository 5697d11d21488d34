"""ONNX image ops read into the layer list: Conv, MaxPool, AveragePool, GlobalAveragePool and
BatchNormalization (inference form), each with its attributes read as the operator spec
defines them (defaults included: MaxPool's and AveragePool's strides are 1, AveragePool
leaves padding out of the count, BatchNormalization's epsilon is 1e-5). What the layer list
cannot express — a 1-D or 3-D op, ceil_mode, SAME_LOWER padding, a training-mode
BatchNormalization, a second output in use — is a ``FormatError`` naming the node.
"""
from __future__ import annotations

import numpy as np

from linea._errors import FormatError
from linea.io._onnx_read import _Match, _attribute, _float
from linea.io._spec import LayerSpec
from linea.nn.functional._pooling import pooled_size

__all__ = ["IMAGE_PATTERNS"]


def _ints(node, name: str, default, count: int, source: str) -> tuple:
    values = _attribute(node, name, None)
    values = list(default) if values is None else [int(v) for v in values]
    if len(values) != count:
        raise FormatError(f"{source}: {node.op_type} node {node.name!r} has {name}={values}; "
                          f"linea reads 2-D image ops ({count} values)")
    return tuple(values)


def _padding4(node, kernel, stride, dilation, shape, source: str) -> tuple:
    """(top, bottom, left, right) from pads [t, l, b, r] or auto_pad."""
    auto = _attribute(node, "auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("NOTSET", ""):
        top, left, bottom, right = _ints(node, "pads", (0, 0, 0, 0), 4, source)
        if min(top, left, bottom, right) < 0:
            raise FormatError(f"{source}: {node.op_type} node {node.name!r} has negative pads")
        return top, bottom, left, right
    if auto == "VALID":
        return 0, 0, 0, 0
    if auto == "SAME_UPPER":  # output ⌈size/stride⌉, the odd pixel at the end
        if shape is None or None in shape[2:]:
            raise FormatError(f"{source}: {node.op_type} node {node.name!r} pads SAME_UPPER on an "
                              "input whose size the graph does not declare")
        pads = []
        for size, k, s, d in zip(shape[2:], kernel, stride, dilation):
            total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    raise FormatError(f"{source}: {node.op_type} node {node.name!r} has auto_pad={auto}, which linea "
                      "does not read (SAME_LOWER puts the odd pixel first)")


def _images_in(node, shape, source: str) -> None:
    if shape is not None and len(shape) != 4:
        raise FormatError(f"{source}: {node.op_type} node {node.name!r} gets an input of rank "
                          f"{len(shape)}; linea reads 2-D image ops on (N, C, H, W)")


def _out_shape(shape, channels, kernel, stride, padding4, dilation):
    if shape is None:
        return None
    top, bottom, left, right = padding4
    sizes = [None if size is None else pooled_size(size, k, s, before, after, d)
             for size, k, s, before, after, d in zip(shape[2:], kernel, stride, (top, left),
                                                     (bottom, right), dilation)]
    return [shape[0], channels, *sizes]


def _record_input(spec, shape) -> None:
    if shape is not None and None not in shape[1:]:
        spec.extra["input_shape"] = tuple(int(size) for size in shape[1:])


def _single_output(graph, node, source: str) -> None:
    for extra in list(node.output)[1:]:
        if extra and graph.users(extra):
            raise FormatError(f"{source}: {node.op_type} node {node.name!r} has its output {extra!r} "
                              "in use; linea reads the first output only")


def _conv(graph, x: str, shape, node) -> _Match | None:
    source = graph.source
    if node.op_type != "Conv" or node.input[0] != x:
        return None
    _images_in(node, shape, source)
    weight = _float(graph.constant(node.input[1], "W", node), "W", node, source)
    if weight.ndim != 4:
        raise FormatError(f"{source}: Conv node {node.name!r} has a {weight.ndim}-D weight; linea "
                          "reads 2-D convolutions")
    kernel = _ints(node, "kernel_shape", weight.shape[2:], 2, source)
    if kernel != tuple(weight.shape[2:]):
        raise FormatError(f"{source}: Conv node {node.name!r} declares kernel_shape {kernel} for a "
                          f"weight of shape {weight.shape}")
    stride = _ints(node, "strides", (1, 1), 2, source)
    dilation = _ints(node, "dilations", (1, 1), 2, source)
    groups = int(_attribute(node, "group", 1))
    if groups < 1 or (shape is not None and shape[1] is not None and shape[1] != weight.shape[1] * groups):
        raise FormatError(f"{source}: Conv node {node.name!r} takes {weight.shape[1]}×{groups} "
                          f"channels, its input has {None if shape is None else shape[1]}")
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = _float(graph.constant(node.input[2], "B", node), "B", node, source)
        if bias.shape != (weight.shape[0],):
            raise FormatError(f"{source}: Conv node {node.name!r} has a bias of shape {bias.shape}")
    padding4 = _padding4(node, kernel, stride, dilation, shape, source)
    spec = LayerSpec("conv2d", np.asarray(weight), None if bias is None else np.asarray(bias),
                     extra={"stride": stride, "padding4": padding4, "dilation": dilation,
                            "groups": groups})
    _record_input(spec, shape)
    return _Match([spec], node.output[0], [node],
                  _out_shape(shape, weight.shape[0], kernel, stride, padding4, dilation))


def _pool(graph, x: str, shape, node) -> _Match | None:
    source = graph.source
    if node.op_type not in ("MaxPool", "AveragePool", "GlobalAveragePool") or list(node.input) != [x]:
        return None
    _images_in(node, shape, source)
    _single_output(graph, node, source)
    channels = None if shape is None else shape[1]
    if node.op_type == "GlobalAveragePool":
        spec = LayerSpec("globalavgpool", extra={"keepdims": True})
        _record_input(spec, shape)
        return _Match([spec], node.output[0], [node], None if shape is None else [shape[0], channels, 1, 1])
    if int(_attribute(node, "ceil_mode", 0)):
        raise FormatError(f"{source}: {node.op_type} node {node.name!r} has ceil_mode=1, which linea "
                          "does not read")
    if node.op_type == "MaxPool" and int(_attribute(node, "storage_order", 0)):
        raise FormatError(f"{source}: MaxPool node {node.name!r} has storage_order=1")
    kernel = _ints(node, "kernel_shape", (), 2, source)
    stride = _ints(node, "strides", (1, 1), 2, source)
    dilation = _ints(node, "dilations", (1, 1), 2, source)
    if node.op_type == "AveragePool" and dilation != (1, 1):
        raise FormatError(f"{source}: AveragePool node {node.name!r} is dilated, which linea does not read")
    padding4 = _padding4(node, kernel, stride, dilation, shape, source)
    extra = {"kernel": kernel, "stride": stride, "padding4": padding4}
    if node.op_type == "MaxPool":
        extra["dilation"] = dilation
        spec = LayerSpec("maxpool2d", extra=extra)
    else:
        extra.update(count_include_pad=bool(int(_attribute(node, "count_include_pad", 0))) and any(padding4),
                     edge="zeros")
        spec = LayerSpec("avgpool2d", extra=extra)
    _record_input(spec, shape)
    return _Match([spec], node.output[0], [node],
                  _out_shape(shape, channels, kernel, stride, padding4, dilation))


def _batchnorm(graph, x: str, shape, node) -> _Match | None:
    source = graph.source
    if node.op_type != "BatchNormalization" or node.input[0] != x:
        return None
    if int(_attribute(node, "training_mode", 0)):
        raise FormatError(f"{source}: BatchNormalization node {node.name!r} runs in training mode")
    _single_output(graph, node, source)
    if len(node.input) != 5:
        raise FormatError(f"{source}: BatchNormalization node {node.name!r} has {len(node.input)} inputs")
    scale, shift, mean, var = (_float(graph.constant(name, what, node), what, node, source)
                               for name, what in zip(node.input[1:], ("scale", "B", "mean", "var")))
    channels = mean.shape[0] if mean.ndim == 1 else None
    if channels is None or any(a.shape != (channels,) for a in (scale, shift, var)):
        raise FormatError(f"{source}: BatchNormalization node {node.name!r} has parameters of shapes "
                          f"{[list(a.shape) for a in (scale, shift, mean, var)]}, not one value per channel")
    if shape is None or len(shape) not in (2, 4) or (shape[1] is not None and shape[1] != channels):
        raise FormatError(f"{source}: BatchNormalization node {node.name!r} normalizes an input of "
                          f"shape {shape}; linea reads it over the channels of (N, C) or (N, C, H, W) "
                          "inputs of declared rank")
    momentum = float(_attribute(node, "momentum", 0.9))  # ONNX's: the share the running value keeps
    spec = LayerSpec("batchnorm", np.array(scale), np.array(shift),
                     eps=float(_attribute(node, "epsilon", 1e-5)),
                     extra={"running_mean": np.array(mean), "running_var": np.array(var),
                            "momentum": float(f"{1.0 - momentum:.15g}"), "rank": len(shape)})
    if len(shape) == 4:
        _record_input(spec, shape)
    return _Match([spec], node.output[0], [node], shape)


IMAGE_PATTERNS = (_conv, _pool, _batchnorm)
