"""Reading ONNX graphs into the layer list, op by op as the ONNX operator spec defines them.

The graph is walked from its data input to its output. At each value, one
pattern must account for every node that reads it: a single op (Gemm, MatMul
[+ Add], Relu, LayerNormalization, …) or a known decomposition (GELU's erf and
tanh forms, SiLU, the dynamo exporter's thresholded Softplus), each matched by
its exact constants and wiring. Anything else — weights fed as graph inputs, an
op outside the standard domain, other constants, a value used elsewhere — is a
``FormatError`` naming the node. Shapes are followed where the graph declares
them, so axis attributes (Softmax before opset 13, Flatten, LayerNormalization)
are read for what they mean, not assumed.

Initializers may live in external data files (torch's dynamo exporter writes
``model.onnx.data``); those must be regular files inside the model's folder, and
every offset and length is checked against the file before it is read.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from linea._errors import FormatError
from linea._files import open_regular, read_at
from linea.io._onnx_scan import strip_initializer_data
from linea.io._spec import LayerSpec
from linea.nn.registry import ACTIVATIONS

__all__ = ["read", "specs_from_proto"]

_MAX_NODES = 100_000
_STANDARD_DOMAINS = ("", "ai.onnx")
#: ONNX element types linea reads: floats for weights, integers for shapes.
_ELEMENTS = {1: np.dtype("<f4"), 11: np.dtype("<f8"), 10: np.dtype("<f2"), 7: np.dtype("<i8"),
             6: np.dtype("<i4")}
_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _onnx():
    from linea.io._onnx import _onnx as load

    return load()


# ---- constants ------------------------------------------------------------------------

def _external_bytes(tensor, folder: str, source: str) -> bytes:
    entries = {entry.key: entry.value for entry in tensor.external_data}
    location = entries.get("location", "")
    target = os.path.realpath(os.path.join(folder, location))
    if not location or os.path.isabs(location) or \
            os.path.commonpath([target, os.path.realpath(folder)]) != os.path.realpath(folder):
        raise FormatError(f"{source}: initializer {tensor.name!r} keeps its data at {location!r}, "
                          "outside the model's folder; linea reads external data only beside the model")
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError:
        raise FormatError(f"{source}: initializer {tensor.name!r} has a bad external-data offset "
                          f"or length {entries}") from None
    descriptor = open_regular(target)  # a device or FIFO is refused before it is opened
    try:
        return _read_external(descriptor, tensor, location, offset, length, source)
    finally:
        os.close(descriptor)


def _read_external(descriptor, tensor, location, offset, length, source) -> bytes:
    status = os.fstat(descriptor)
    count = math.prod(tensor.dims) * _ELEMENTS[tensor.data_type].itemsize
    if length is None:
        length = count
    if offset < 0 or length != count or offset + length > status.st_size:
        raise FormatError(f"{source}: initializer {tensor.name!r} of dims {list(tensor.dims)} needs "
                          f"{count} bytes; its external data claims {length} at offset {offset} of "
                          f"{location!r} ({status.st_size} bytes)")
    return bytes(read_at(descriptor, offset, length, source=f"{source}: {location!r}"))


def _tensor_array(tensor, folder: str, source: str, what: str) -> np.ndarray:
    """The array of a TensorProto, every declared size checked against the bytes it holds."""
    onnx = _onnx()
    dtype = _ELEMENTS.get(tensor.data_type)
    if dtype is None:
        name = onnx.TensorProto.DataType.Name(tensor.data_type) \
            if tensor.data_type in onnx.TensorProto.DataType.values() else tensor.data_type
        raise FormatError(f"{source}: {what} {tensor.name!r} has element type {name}; linea reads "
                          "float32/float64/float16 weights (and int32/int64 shapes)")
    if len(tensor.dims) > 8 or any(d < 0 for d in tensor.dims):
        raise FormatError(f"{source}: {what} {tensor.name!r} has dims {list(tensor.dims)}")
    count = math.prod(tensor.dims)
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        data = _external_bytes(tensor, folder, source)
        return np.frombuffer(data, dtype).reshape(tuple(tensor.dims)).astype(dtype.newbyteorder("="))
    fields = {1: tensor.float_data, 11: tensor.double_data, 7: tensor.int64_data,
              6: tensor.int32_data, 10: tensor.int32_data}  # float16: one value per int32
    held = len(tensor.raw_data) if tensor.raw_data else len(fields[tensor.data_type]) * dtype.itemsize
    if held != count * dtype.itemsize:
        raise FormatError(f"{source}: {what} {tensor.name!r} declares {list(tensor.dims)} "
                          f"({count * dtype.itemsize} bytes) but holds {held}")
    try:
        if tensor.raw_data:  # the one copy out of the proto (read-only; layers copy it in)
            return np.frombuffer(tensor.raw_data, dtype.newbyteorder("<")).astype(
                dtype.newbyteorder("="), copy=False).reshape(tuple(tensor.dims))
        return np.array(onnx.numpy_helper.to_array(tensor))
    except Exception as error:
        raise FormatError(f"{source}: {what} {tensor.name!r} cannot be read: {error}") from None


def _raw_array(tensor, descriptor: int, span: tuple, source: str) -> np.ndarray:
    """An initializer whose raw bytes were left in the file: read from there into its array."""
    dtype = _ELEMENTS.get(tensor.data_type)
    if dtype is None or tensor.data_location != 0:
        return _tensor_array(tensor, ".", source, "initializer")  # its own error
    if len(tensor.dims) > 8 or any(d < 0 for d in tensor.dims):
        raise FormatError(f"{source}: initializer {tensor.name!r} has dims {list(tensor.dims)}")
    offset, length = span
    count = math.prod(tensor.dims)
    if length != count * dtype.itemsize:
        raise FormatError(f"{source}: initializer {tensor.name!r} declares {list(tensor.dims)} "
                          f"({count * dtype.itemsize} bytes) but holds {length}")
    array = np.empty(tuple(tensor.dims), dtype.newbyteorder("<"))
    if length:
        read_at(descriptor, offset, length, into=array.reshape(-1).view(np.uint8), source=source)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _attribute(node, name, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            from onnx import helper

            return helper.get_attribute_value(attribute)
    return default


def _constant_node(node, folder: str, source: str) -> np.ndarray:
    for attribute in node.attribute:
        if attribute.name == "value":
            return _tensor_array(attribute.t, folder, source, "Constant")
        if attribute.name == "value_float":
            return np.array(attribute.f, np.float32)
        if attribute.name == "value_floats":
            return np.array(list(attribute.floats), np.float32)
        if attribute.name == "value_int":
            return np.array(attribute.i, np.int64)
        if attribute.name == "value_ints":
            return np.array(list(attribute.ints), np.int64)
    raise FormatError(f"{source}: Constant node {node.name!r} holds no value linea reads")


# ---- the graph ------------------------------------------------------------------------

@dataclass
class _Match:
    specs: list
    output: str
    nodes: list
    shape: list | None


class _Graph:
    """Constants, consumers and declared shapes of an ONNX graph."""

    def __init__(self, model, source: str, folder: str, raw=None) -> None:
        graph = model.graph
        self.source = source
        versions = [o.version for o in model.opset_import if o.domain in _STANDARD_DOMAINS]
        if not versions:
            raise FormatError(f"{source}: the model imports no standard ONNX opset")
        self.opset = versions[0]
        self.constants = {}
        descriptor, spans = raw if raw is not None else (None, [None] * len(graph.initializer))
        if len(spans) != len(graph.initializer):
            raise FormatError(f"{source}: the file's initializers could not be located")
        for tensor, span in zip(graph.initializer, spans):
            self.constants[tensor.name] = _tensor_array(tensor, folder, source, "initializer") \
                if span is None else _raw_array(tensor, descriptor, span, source)
        self.nodes = list(graph.node)
        self.consumers = defaultdict(list)
        for node in self.nodes:
            if node.domain not in _STANDARD_DOMAINS:
                raise FormatError(f"{source}: node {node.name or node.op_type!r} is op "
                                  f"{node.op_type!r} of domain {node.domain!r}; linea reads the "
                                  "standard ONNX domain only")
            if node.op_type == "Constant":
                self.constants[node.output[0]] = _constant_node(node, folder, source)
            elif node.op_type == "Identity" and node.input[0] in self.constants:
                self.constants[node.output[0]] = self.constants[node.input[0]]
            elif node.op_type == "Transpose" and node.input[0] in self.constants:
                self.constants[node.output[0]] = np.transpose(
                    self.constants[node.input[0]], _attribute(node, "perm", None))
            else:
                for name in node.input:
                    if name:
                        self.consumers[name].append(node)

    def users(self, value: str) -> list:
        return self.consumers.get(value, [])

    def only_user(self, value: str, op: str):
        users = self.users(value)
        if len(users) == 1 and users[0].op_type == op:
            return users[0]
        return None

    def constant(self, name: str, what: str, node) -> np.ndarray:
        if name not in self.constants:
            raise FormatError(f"{self.source}: {what} of {node.op_type} node {node.name!r} is "
                              f"{name!r}, which is not a constant stored in the file (a graph "
                              "input or a computed value); linea reads models whose weights are "
                              "in the file")
        return self.constants[name]

    def scalar(self, name: str):
        """The value of a size-1 constant of rank ≤ 1, else None."""
        value = self.constants.get(name)
        if value is None or value.size != 1 or value.ndim > 1:
            return None
        return float(value.reshape(()))

    def other(self, node, value: str):
        """The other input of a binary node that reads ``value`` once, else None."""
        inputs = list(node.input)
        if len(inputs) != 2 or inputs.count(value) != 1:
            return None
        return inputs[1 - inputs.index(value)]


def _equals(value, expected: float) -> bool:
    """Equal up to the rounding of a float32 constant, or exactly a float16 constant's rounding."""
    return value is not None and (math.isclose(value, expected, rel_tol=1e-7, abs_tol=0.0)
                                  or value == float(np.float16(expected)))


def _float(array, what, node, source):
    if array.dtype.kind != "f":
        raise FormatError(f"{source}: {what} of {node.op_type} node {node.name!r} is {array.dtype}, "
                          "not floating point")
    return array


def _axis(node, attribute: str, default: int, rank: int | None, source: str) -> int | None:
    """The attribute normalised to 0 … rank-1 (or rank), None where the rank is unknown."""
    axis = _attribute(node, attribute, default)
    if rank is None:
        return None if axis < 0 else axis
    if not -rank <= axis <= rank:
        raise FormatError(f"{source}: {node.op_type} node {node.name!r} has {attribute}={axis} for "
                          f"an input of rank {rank}")
    return axis + rank if axis < 0 else axis


def _row_bias(bias, out_features: int, rank: int, what: str, node, source) -> np.ndarray:
    """A bias broadcast over the output's rows: every dim but the last 1, the last 1 or N."""
    if bias.ndim > rank or any(d != 1 for d in bias.shape[:-1]) or \
            (bias.ndim and bias.shape[-1] not in (1, out_features)):
        raise FormatError(
            f"{source}: {what} of {node.op_type} node {node.name!r} has shape {list(bias.shape)}; "
            f"against an output of rank {rank} with {out_features} features it adds a value per "
            "row (or changes the shape), which a Linear layer's bias cannot express")
    return np.broadcast_to(bias.reshape(-1), (out_features,)).copy()


# ---- patterns -------------------------------------------------------------------------

def _gemm(graph: _Graph, x: str, shape, node) -> _Match | None:
    source = graph.source
    if node.op_type != "Gemm":
        return None
    if node.input[0] != x or x in node.input[1:]:
        raise FormatError(f"{source}: Gemm node {node.name!r} takes the data as B or C; linea "
                          "reads Gemm(x, W, b), the data as A")
    if _attribute(node, "transA", 0):
        raise FormatError(f"{source}: Gemm node {node.name!r} has transA=1, which transposes the "
                          "data (batch and features swap): not a Linear layer")
    if shape is not None and len(shape) != 2:
        raise FormatError(f"{source}: Gemm node {node.name!r} gets an input of rank {len(shape)}")
    matrix = _float(graph.constant(node.input[1], "B", node), "B", node, source)
    if matrix.ndim != 2:
        raise FormatError(f"{source}: Gemm node {node.name!r} has a {matrix.ndim}-D B")
    weight = matrix if _attribute(node, "transB", 0) else matrix.T
    alpha, beta = float(_attribute(node, "alpha", 1.0)), float(_attribute(node, "beta", 1.0))
    if alpha != 1.0:
        weight = weight * np.asarray(alpha, weight.dtype)
    out_features = weight.shape[0]
    if shape is not None and shape[1] is not None and shape[1] != weight.shape[1]:
        raise FormatError(f"{source}: Gemm node {node.name!r} multiplies {shape[1]} features by a "
                          f"weight taking {weight.shape[1]}")
    bias = None
    if len(node.input) > 2 and node.input[2] and beta != 0.0:
        stored = _float(graph.constant(node.input[2], "C", node), "C", node, source)
        bias = _row_bias(stored, out_features, 2, "C", node, source)
        if beta != 1.0:
            bias = bias * np.asarray(beta, bias.dtype)
    rows = shape[0] if shape is not None else None
    return _Match([LayerSpec("linear", np.asarray(weight), bias)], node.output[0], [node],
                  [rows, out_features])


def _matmul(graph: _Graph, x: str, shape, node) -> _Match | None:
    source = graph.source
    if node.op_type != "MatMul":
        return None
    if node.input[0] != x or node.input[1] == x:
        raise FormatError(f"{source}: MatMul node {node.name!r} multiplies a weight by the data "
                          "(W·x) or the data by itself; linea reads x·W")
    kernel = _float(graph.constant(node.input[1], "the weight", node), "the weight", node, source)
    if kernel.ndim != 2:
        raise FormatError(f"{source}: MatMul node {node.name!r} has a {kernel.ndim}-D weight; a "
                          "Linear layer's is 2-D")
    if shape is not None and shape[-1] is not None and shape[-1] != kernel.shape[0]:
        raise FormatError(f"{source}: MatMul node {node.name!r} multiplies {shape[-1]} features by "
                          f"a weight taking {kernel.shape[0]}")
    out_features = kernel.shape[1]
    rank = len(shape) if shape is not None else None
    out_shape = None if shape is None else shape[:-1] + [out_features]
    nodes, output, bias = [node], node.output[0], None
    add = graph.only_user(output, "Add")
    if add is not None:
        other = graph.other(add, output)
        if other is not None and other in graph.constants:
            stored = _float(graph.constants[other], "the bias", add, source)
            if rank is None and stored.ndim > 1:
                raise FormatError(f"{source}: Add node {add.name!r} adds a {stored.ndim}-D bias to "
                                  "an output of unknown rank")
            bias = _row_bias(stored, out_features, rank or 1, "the bias", add, source)
            nodes.append(add)
            output = add.output[0]
    return _Match([LayerSpec("linear", np.array(kernel.T), bias)], output, nodes, out_shape)


#: The defaults of the ONNX operator spec for the attributes of the registry's one-node ops.
_ONNX_DEFAULTS = {"Elu": {"alpha": 1.0}, "Celu": {"alpha": 1.0},
                  "Selu": {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
                  "HardSigmoid": {"alpha": 0.2, "beta": 0.5}, "Shrink": {"bias": 0.0, "lambd": 0.5}}
_ONE_NODE_OPS = {entry.onnx_op for name, entry in ACTIVATIONS.items()
                 if entry.onnx_op is not None and name != "linear"} | {"Softplus"}


def _registered_activation(node, source: str) -> LayerSpec:
    """The registry's activation a one-node op is, its attributes read exactly as float32.

    An op whose attributes fit no entry (a HardSigmoid of slope 0.2, a Shrink whose bias is
    neither 0 nor lambd) is a FormatError naming the node: no entry computes it.
    """
    op = node.op_type
    if op == "Softplus":  # ONNX's softplus has no threshold: Keras's
        return LayerSpec("activation", activation="softplus")
    found = {key: float(np.float32(_attribute(node, key, default)))
             for key, default in _ONNX_DEFAULTS.get(op, {}).items()}
    for name, entry in ACTIVATIONS.items():
        if entry.onnx_op != op or name == "linear":
            continue
        fixed = entry.onnx_fixed.items()
        if any(found.get(key) != float(np.float32(value)) for key, value in fixed):
            continue
        settings = {}
        for key, setting in entry.onnx_settings.items():
            value = float(f"{found[key]:.7g}")  # a float32 attribute: 0.3 arrives as 0.30000001
            if settings.setdefault(setting, value) != value:
                break
        else:
            return LayerSpec("activation", activation=name, extra=settings)
    raise FormatError(f"{source}: {op} node {node.name!r} has attributes {found}, which no "
                      "activation linea has computes (PyTorch's and Keras 3's: HardSigmoid "
                      "alpha=1/6 beta=0.5; Shrink with bias 0 or bias = lambd)")


def _single(graph: _Graph, x: str, shape, node) -> _Match | None:
    """One-node activations, Identity and inference Dropout."""
    source, op = graph.source, node.op_type
    if op in _ONE_NODE_OPS and list(node.input) == [x]:
        return _Match([_registered_activation(node, source)], node.output[0], [node], shape)
    if op == "LeakyRelu" and list(node.input) == [x]:
        slope = float(np.float32(_attribute(node, "alpha", 0.01)))
        slope = float(f"{slope:.7g}")  # float32 attribute: 0.01 arrives as 0.009999999776
        return _Match([LayerSpec("activation", activation="leaky_relu",
                                 extra={"negative_slope": slope})], node.output[0], [node], shape)
    if op == "Gelu" and list(node.input) == [x]:
        approximate = _attribute(node, "approximate", "none")
        approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
        if approximate not in ("none", "tanh"):
            raise FormatError(f"{source}: Gelu node {node.name!r} has approximate={approximate!r}")
        name = "gelu" if approximate == "none" else "gelu_tanh"
        return _Match([LayerSpec("activation", activation=name)], node.output[0], [node], shape)
    if op in ("Softmax", "LogSoftmax") and list(node.input) == [x]:
        rank = len(shape) if shape is not None else None
        # Before opset 13 the default axis is 1 and the input is coerced to 2-D at the axis,
        # so the op equals a last-axis softmax only where axis is the last dimension.
        axis = _axis(node, "axis", 1 if graph.opset < 13 else -1, rank, source)
        if rank is None and not (graph.opset >= 13 and _attribute(node, "axis", -1) == -1):
            raise FormatError(f"{source}: {op} node {node.name!r} acts on axis "
                              f"{_attribute(node, 'axis', 1 if graph.opset < 13 else -1)} of an "
                              "input whose rank the graph does not declare")
        if rank is not None and axis != rank - 1:
            coerced = " (coerced to 2-D from that axis, as before opset 13)" if graph.opset < 13 else ""
            raise FormatError(f"{source}: {op} node {node.name!r} normalises over axis {axis} of a "
                              f"rank-{rank} input{coerced}; linea's is over the last axis")
        name = "softmax" if op == "Softmax" else "log_softmax"
        return _Match([LayerSpec("activation", activation=name)], node.output[0], [node], shape)
    if op == "Identity" and list(node.input) == [x]:
        return _Match([], node.output[0], [node], shape)
    if op == "Dropout" and node.input[0] == x and x not in node.input[1:]:
        if len(node.input) > 2 and node.input[2]:
            mode = graph.constants.get(node.input[2])
            if mode is None or bool(np.asarray(mode).reshape(-1)[0]):
                raise FormatError(f"{source}: Dropout node {node.name!r} may run in training mode")
        return _Match([], node.output[0], [node], shape)
    return None


def _flatten(graph: _Graph, x: str, shape, node) -> _Match | None:
    source = graph.source
    if node.op_type == "Flatten" and list(node.input) == [x]:
        rank = len(shape) if shape is not None else None
        axis = _axis(node, "axis", 1, rank, source)
        if axis is None:
            raise FormatError(f"{source}: Flatten node {node.name!r} has a negative axis on an "
                              "input whose rank the graph does not declare")
        out = None if shape is None else [_product(shape[:axis]), _product(shape[axis:])]
        standard = rank is not None and rank >= 2 and axis == 1
        spec = LayerSpec("flatten") if standard else LayerSpec("flatten", extra={"onnx_axis": axis})
        if standard and rank == 4 and None not in shape[1:]:  # images: (C, H, W) order
            spec.extra["image_shape"] = tuple(int(size) for size in shape[1:])
        return _Match([spec], node.output[0], [node], out)
    if node.op_type == "Reshape" and node.input[0] == x and len(node.input) > 1:
        target = graph.constants.get(node.input[1])
        if target is None or target.dtype.kind != "i" or target.ndim != 1:
            raise FormatError(f"{source}: Reshape node {node.name!r} takes its shape from a "
                              "computed value; linea reads a Reshape with a constant shape that "
                              "flattens")
        if shape is None or len(shape) < 2 or not _flattens(list(target), shape,
                                                            _attribute(node, "allowzero", 0)):
            raise FormatError(f"{source}: Reshape node {node.name!r} to {list(target)} from shape "
                              f"{shape} is not a flatten of everything after the batch axis; "
                              "linea reads that Reshape only")
        spec = LayerSpec("flatten")
        if len(shape) == 4 and None not in shape[1:]:  # images: (C, H, W) order
            spec.extra["image_shape"] = tuple(int(size) for size in shape[1:])
        return _Match([spec], node.output[0], [node], [shape[0], _product(shape[1:])])
    return None


def _product(dims):
    return None if any(d is None for d in dims) else int(math.prod(dims))


def _flattens(target, shape, allowzero) -> bool:
    if len(target) != 2:
        return False
    first, second = int(target[0]), int(target[1])
    features = _product(shape[1:])
    if first == 0:
        first_ok = not allowzero
    elif first == -1:
        first_ok = second != -1 and features is not None and second == features and features > 0
    else:
        first_ok = shape[0] is not None and first == shape[0]
    second_ok = second == -1 and first != -1 or (features is not None and second == features)
    return first_ok and second_ok


def _layernorm(graph: _Graph, x: str, shape, node) -> _Match | None:
    source = graph.source
    if node.op_type != "LayerNormalization" or node.input[0] != x:
        return None
    rank = len(shape) if shape is not None else None
    axis = _axis(node, "axis", -1, rank, source)
    count = (rank - axis) if rank is not None else (1 if _attribute(node, "axis", -1) == -1 else None)
    if count is None:
        raise FormatError(f"{source}: LayerNormalization node {node.name!r} normalises from axis "
                          f"{_attribute(node, 'axis', -1)} of an input of undeclared rank")
    if len(node.input) < 2 or not node.input[1]:
        raise FormatError(f"{source}: LayerNormalization node {node.name!r} has no Scale input")
    scale = _float(graph.constant(node.input[1], "Scale", node), "Scale", node, source)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = _float(graph.constant(node.input[2], "B", node), "B", node, source)
    normalized = None if shape is None else shape[len(shape) - count:]
    expected = tuple(normalized) if normalized is not None and None not in normalized else None
    for what, array in (("Scale", scale), ("B", bias)):
        if array is None:
            continue
        if array.ndim != count or (expected is not None and array.shape != expected):
            raise FormatError(f"{source}: LayerNormalization node {node.name!r} normalises the "
                              f"last {count} axes {normalized}, but its {what} has shape "
                              f"{list(array.shape)}")
    if bias is not None and bias.shape != scale.shape:
        raise FormatError(f"{source}: LayerNormalization node {node.name!r} has Scale "
                          f"{list(scale.shape)} and B {list(bias.shape)}")
    # ONNX float attributes are float32: 1e-5 arrives as 9.99999974e-06. Its 7
    # significant digits give back the value that was written.
    eps = float(f"{_attribute(node, 'epsilon', 1e-5):.7g}")
    return _Match([LayerSpec("layernorm", np.array(scale), None if bias is None else np.array(bias),
                             eps=eps)], node.output[0], [node], shape)


def _last_axis_mean(graph: _Graph, node, value: str, rank) -> bool:
    """ReduceMean of ``value`` over the last axis, keeping it (the axes an attribute or input)."""
    if node.op_type != "ReduceMean" or node.input[0] != value or not _attribute(node, "keepdims", 1):
        return False
    axes = _attribute(node, "axes", None)
    if axes is None and len(node.input) > 1 and node.input[1] in graph.constants:
        axes = [int(a) for a in graph.constants[node.input[1]].reshape(-1)]
    if axes is None or len(axes) != 1:
        return False
    return axes[0] == -1 or (rank is not None and axes[0] == rank - 1)


def _layernorm_decomposed(graph: _Graph, x: str, shape, node) -> _Match | None:
    """(x - E[x]) / √(E[(x - E[x])²] + eps) [· w] [+ b]: LayerNorm as TorchScript writes it before
    opset 17."""
    rank = len(shape) if shape is not None else None
    if not _last_axis_mean(graph, node, x, rank):
        return None
    centred = graph.only_user(node.output[0], "Sub")
    if centred is None or list(centred.input) != [x, node.output[0]]:
        return None
    users = {u.op_type: u for u in graph.users(centred.output[0])}
    square, divide = users.get("Pow"), users.get("Div")
    if square is None or divide is None or len(graph.users(centred.output[0])) != 2 or \
            not _equals(graph.scalar(square.input[1]), 2.0) or list(divide.input)[0] != centred.output[0]:
        return None
    variance = graph.users(square.output[0])
    if len(variance) != 1 or not _last_axis_mean(graph, variance[0], square.output[0], rank):
        return None
    shifted = graph.only_user(variance[0].output[0], "Add")
    eps = graph.scalar(graph.other(shifted, variance[0].output[0]) or "") if shifted else None
    root = graph.only_user(shifted.output[0], "Sqrt") if shifted is not None else None
    if eps is None or root is None or list(divide.input) != [centred.output[0], root.output[0]]:
        return None
    nodes, output = [node, centred, square, variance[0], shifted, root, divide], divide.output[0]
    width = shape[-1] if shape is not None else None
    scale = bias = None
    for op in ("Mul", "Add"):
        follow = graph.only_user(output, op)
        other = graph.other(follow, output) if follow is not None else None
        value = graph.constants.get(other) if other is not None else None
        if value is None or value.ndim != 1 or value.dtype.kind != "f" or \
                (value.shape != (width,) if width is not None else value.size < 2):
            continue
        if op == "Mul":
            scale = value
        else:
            bias = value
        nodes.append(follow)
        output = follow.output[0]
    if scale is None:
        if width is None and bias is None:
            raise FormatError(f"{graph.source}: a LayerNorm without weights on an input of "
                              "undeclared width cannot be rebuilt")
        reference = bias if bias is not None else np.zeros(width, np.float32)
        scale = np.ones_like(reference)
    eps = float(f"{np.float32(eps):.7g}")
    return _Match([LayerSpec("layernorm", np.array(scale), None if bias is None else np.array(bias),
                             eps=eps)], output, nodes, shape)


def _silu(graph: _Graph, x: str, shape, node) -> _Match | None:
    if node.op_type != "Sigmoid":
        return None
    users = [u for u in graph.users(x) if u is not node]
    if len(users) != 1 or users[0].op_type != "Mul" or \
            sorted(users[0].input) != sorted([x, node.output[0]]):
        return None
    return _Match([LayerSpec("activation", activation="silu")], users[0].output[0],
                  [node, users[0]], shape)


def _mul_by(graph: _Graph, node, value: str, factor: float) -> bool:
    return node.op_type == "Mul" and _equals(graph.scalar(graph.other(node, value) or ""), factor)


def _half_x_times(graph: _Graph, x: str, factor: str, used: list) -> tuple[str, list] | None:
    """The output of 0.5·x·factor in any of the three ways exporters multiply it, with its nodes."""
    first = graph.users(factor)
    if len(first) != 1 or first[0].op_type != "Mul":
        return None
    first = first[0]
    partner = graph.other(first, factor)
    if partner == x:  # (x·f)·0.5
        last = graph.only_user(first.output[0], "Mul")
        if last is not None and _mul_by(graph, last, first.output[0], 0.5):
            return last.output[0], [first, last]
        return None
    if _equals(graph.scalar(partner or ""), 0.5):  # x·(f·0.5)
        last = graph.only_user(first.output[0], "Mul")
        if last is not None and graph.other(last, first.output[0]) == x:
            return last.output[0], [first, last]
        return None
    half = [u for u in graph.users(x) if u not in used and u is not first and _mul_by(graph, u, x, 0.5)]
    if len(half) == 1 and partner == half[0].output[0]:  # (x·0.5)·f
        return first.output[0], [half[0], first]
    return None


def _add_one(graph: _Graph, value: str):
    node = graph.only_user(value, "Add")
    if node is not None and _equals(graph.scalar(graph.other(node, value) or ""), 1.0):
        return node
    return None


def _gelu_erf(graph: _Graph, x: str, shape, node) -> _Match | None:
    """0.5·x·(1 + erf(x/√2)), with x/√2 as Div(x, √2) or Mul(x, 1/√2)."""
    scaled_ok = (node.op_type == "Div" and list(node.input)[0] == x and
                 _equals(graph.scalar(node.input[1]), _SQRT2)) or _mul_by(graph, node, x, 1 / _SQRT2)
    if not scaled_ok:
        return None
    erf = graph.only_user(node.output[0], "Erf")
    shifted = _add_one(graph, erf.output[0]) if erf is not None else None
    if shifted is None:
        return None
    product = _half_x_times(graph, x, shifted.output[0], [node])
    if product is None:
        return None
    return _Match([LayerSpec("activation", activation="gelu")], product[0],
                  [node, erf, shifted] + product[1], shape)


def _cube(graph: _Graph, x: str, node):
    """(output, nodes) of x³ written as Pow(x, 3) or x·(x·x), else None."""
    if node.op_type == "Pow" and node.input[0] == x and _equals(graph.scalar(node.input[1]), 3.0):
        return node.output[0], [node]
    if node.op_type == "Mul" and list(node.input) == [x, x]:
        outer = graph.only_user(node.output[0], "Mul")
        if outer is not None and graph.other(outer, node.output[0]) == x:
            return outer.output[0], [node, outer]
    return None


def _gelu_tanh(graph: _Graph, x: str, shape, node) -> _Match | None:
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    cube = _cube(graph, x, node)
    if cube is None:
        return None
    cubed, nodes = cube
    scaled = graph.only_user(cubed, "Mul")
    if scaled is None or not _mul_by(graph, scaled, cubed, 0.044715):
        return None
    inner = graph.only_user(scaled.output[0], "Add")
    if inner is None or graph.other(inner, scaled.output[0]) != x:
        return None
    times = graph.only_user(inner.output[0], "Mul")
    if times is None or not _mul_by(graph, times, inner.output[0], _SQRT_2_OVER_PI):
        return None
    tanh = graph.only_user(times.output[0], "Tanh")
    shifted = _add_one(graph, tanh.output[0]) if tanh is not None else None
    if shifted is None:
        return None
    used = nodes + [scaled, inner, times, tanh, shifted]
    product = _half_x_times(graph, x, shifted.output[0], used)
    if product is None:
        return None
    return _Match([LayerSpec("activation", activation="gelu_tanh")], product[0], used + product[1],
                  shape)


def _softplus_threshold(graph: _Graph, x: str, shape, node) -> _Match | None:
    """Where(x > t, x, Softplus(x)): torch's Softplus(beta=1, threshold=t) from the dynamo exporter."""
    if node.op_type != "Softplus" or list(node.input) != [x]:
        return None
    greater = [u for u in graph.users(x) if u.op_type == "Greater"]
    if len(greater) != 1 or greater[0].input[0] != x:
        return None
    threshold = graph.scalar(greater[0].input[1])
    where = graph.only_user(greater[0].output[0], "Where")
    if threshold is None or where is None or \
            list(where.input) != [greater[0].output[0], x, node.output[0]]:
        return None
    return _Match([LayerSpec("activation", activation="softplus", extra={"threshold": threshold})],
                  where.output[0], [node, greater[0], where], shape)


_PATTERNS = (_gemm, _matmul, _gelu_erf, _gelu_tanh, _softplus_threshold, _silu, _single,
             _flatten, _layernorm, _layernorm_decomposed)


def _step(graph: _Graph, x: str, shape) -> _Match:
    from linea.io._onnx_read_activations import ACTIVATION_PATTERNS
    from linea.io._onnx_read_images import IMAGE_PATTERNS

    users = graph.users(x)
    for node in users:
        for pattern in ACTIVATION_PATTERNS + _PATTERNS + IMAGE_PATTERNS:
            match = pattern(graph, x, shape, node)
            if match is None:
                continue
            inside = {id(n) for n in match.nodes}
            leaks = [u for u in users if id(u) not in inside]
            for member in match.nodes:
                for output in member.output:
                    if output != match.output:
                        leaks += [u for u in graph.users(output) if id(u) not in inside]
            if not leaks:
                return match
    node = users[0]
    names = ", ".join(f"{u.op_type} {u.name!r}" for u in users)
    raise FormatError(f"{graph.source}: the value {x!r} is read by {names}; linea reads chains of "
                      "Gemm, MatMul+Add, Relu/Tanh/Sigmoid/Softplus/LeakyRelu, GELU, SiLU, Elu, "
                      "Selu, Celu, HardSigmoid, HardSwish, Softsign, Shrink, Exp, Clip, Mish, "
                      "log-sigmoid, tanh-shrink, "
                      "Softmax/LogSoftmax, LayerNormalization, Flatten, Reshape, Dropout, "
                      "Identity, Conv, MaxPool, AveragePool, GlobalAveragePool and "
                      f"BatchNormalization, each exactly as ONNX defines it; {node.op_type} node "
                      f"{node.name!r} does not fit")


def _declared_shape(value_info) -> list | None:
    kind = value_info.type.tensor_type
    if not kind.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in kind.shape.dim]


def specs_from_proto(model, source: str, folder: str = ".", raw=None) -> list[LayerSpec]:
    graph_proto = model.graph
    if len(graph_proto.node) > _MAX_NODES:
        raise FormatError(f"{source}: {len(graph_proto.node)} nodes is more than an MLP has")
    if len(graph_proto.output) != 1:
        raise FormatError(f"{source}: expected one graph output, found {len(graph_proto.output)}")
    graph = _Graph(model, source, folder, raw)
    data = [i for i in graph_proto.input if i.name not in graph.constants]
    if not data:
        raise FormatError(f"{source}: the graph has no data input")
    for extra in data[1:]:
        if graph.users(extra.name):
            raise FormatError(f"{source}: graph input {extra.name!r} is read by the graph but is "
                              "neither the data nor stored in the file (weights given as graph "
                              "inputs); export the model with its parameters")
    x, shape = data[0].name, _declared_shape(data[0])
    output = graph_proto.output[0].name
    specs, steps = [], 0
    while x != output:
        if not graph.users(x):
            raise FormatError(f"{source}: the chain of nodes stops at {x!r} before the graph output")
        match = _step(graph, x, shape)
        specs += match.specs
        x, shape = match.output, match.shape
        steps += 1
        if steps > _MAX_NODES:
            raise FormatError(f"{source}: the graph does not lead to its output")
    if not any(s.kind in ("linear", "conv2d") for s in specs):
        raise FormatError(f"{source}: the graph holds no linear or convolution layer")
    previous = None
    for spec in specs:
        if spec.kind == "flatten":
            previous = None
        elif spec.kind == "linear":
            out_features, in_features = spec.weight.shape
            if previous is not None and in_features != previous:
                raise FormatError(f"{source}: a layer takes {in_features} inputs after one giving "
                                  f"{previous}")
            previous = out_features
    return specs


def read(path) -> list[LayerSpec]:
    source = os.fspath(path)
    onnx = _onnx()
    with os.fdopen(open_regular(source), "rb", buffering=0) as stream:
        # The weights' bytes are located, left out of what protobuf parses, and read into
        # their arrays: one copy of the weights in memory, not three.
        located = strip_initializer_data(stream.fileno())
        try:
            if located is None:
                stream.seek(0)
                size = os.fstat(stream.fileno()).st_size
                model, raw = onnx.load_model_from_string(stream.read(size)), None
            else:
                model, raw = onnx.load_model_from_string(located[0]), (stream.fileno(), located[1])
        except Exception as error:  # protobuf's DecodeError and friends
            raise FormatError(f"{source}: not a readable ONNX file: {str(error)[:200]}") from None
        if not model.HasField("graph"):
            raise FormatError(f"{source}: the ONNX file holds no graph")
        return _specs(model, source, raw)


def _specs(model, source: str, raw) -> list[LayerSpec]:
    try:
        return specs_from_proto(model, source, os.path.dirname(os.path.abspath(source)), raw)
    except FormatError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, RecursionError) as error:
        raise FormatError(f"{source}: malformed ONNX graph: {error}") from None
