"""ONNX (opset 17) export and import of MLP-like models, through the ``onnx`` package.

Export: a 2-D input gives ``Gemm(x, W, b, transB=1)`` — the weight kept in
PyTorch's (out, in) layout; an N-D input gives ``MatMul(x, Wᵀ)`` + ``Add(b)``.
Activations map to ONNX ops (GELU, absent before opset 20, is written as
0.5·x·(1 + Erf(x/√2))), LayerNorm to ``LayerNormalization``. Import reads such
graphs back into the layer list, checking every initializer's declared size
against its data first and refusing external data.
"""
from __future__ import annotations

import math
import os

import numpy as np

from linea._errors import FormatError
from linea._serialization import atomic_write
from linea.io._formats import read_bounded
from linea.io._spec import LayerSpec

OPSET = 17
_MAX_NODES = 100_000


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX files need the onnx package: pip install onnx "
                          "(or pip install 'linea[formats]')") from None
    return onnx


# ---- export ---------------------------------------------------------------------------

class _Graph:
    def __init__(self, onnx, dtype) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers, self.count = [], [], 0
        self.dtype = np.dtype(dtype)

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def constant(self, stem: str, array) -> str:
        name = self.name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(
            np.asarray(array, dtype=self.dtype), name))
        return name

    def node(self, op: str, inputs, **attributes) -> str:
        output = self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output


def _activation(graph: _Graph, name: str, x: str) -> str:
    simple = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softplus": "Softplus"}
    if name in simple:
        return graph.node(simple[name], [x])
    if name == "softmax":
        return graph.node("Softmax", [x], axis=-1)
    if name == "log_softmax":
        return graph.node("LogSoftmax", [x], axis=-1)
    if name == "leaky_relu":
        return graph.node("LeakyRelu", [x], alpha=0.2)
    if name == "silu":
        return graph.node("Mul", [x, graph.node("Sigmoid", [x])])
    if name == "gelu":
        scaled = graph.node("Div", [x, graph.constant("sqrt2", math.sqrt(2.0))])
        shifted = graph.node("Add", [graph.node("Erf", [scaled]), graph.constant("one", 1.0)])
        return graph.node("Mul", [graph.node("Mul", [x, shifted]), graph.constant("half", 0.5)])
    if name == "linear":
        return x
    raise ValueError(f"the activation {name!r} cannot be exported to ONNX")


def model_proto(specs, input_rank: int = 2):
    """An ONNX ModelProto computing the layer list on inputs of rank ``input_rank``."""
    onnx = _onnx()
    linears = [s for s in specs if s.kind in ("linear", "layernorm")]
    if not linears:
        raise ValueError("an ONNX export needs at least one Linear/Dense layer")
    dtype = linears[0].weight.dtype
    element = {np.dtype(np.float32): onnx.TensorProto.FLOAT,
               np.dtype(np.float64): onnx.TensorProto.DOUBLE}.get(np.dtype(dtype))
    if element is None:
        raise ValueError(f"ONNX export supports float32 and float64 weights, not {dtype}")
    graph = _Graph(onnx, dtype)
    first = next(s for s in specs if s.kind == "linear") if any(s.kind == "linear" for s in specs) else linears[0]
    in_features = first.weight.shape[1] if first.kind == "linear" else first.weight.shape[0]
    x = "input"
    rank = input_rank
    width = in_features
    for spec in specs:
        if spec.kind == "linear":
            out_features = spec.weight.shape[0]
            if rank == 2:
                inputs = [x, graph.constant("weight", spec.weight)]
                bias = spec.bias if spec.bias is not None else np.zeros(out_features, dtype)
                inputs.append(graph.constant("bias", bias))
                x = graph.node("Gemm", inputs, transB=1)
            else:
                x = graph.node("MatMul", [x, graph.constant("weight_t", spec.weight.T)])
                if spec.bias is not None:
                    x = graph.node("Add", [x, graph.constant("bias", spec.bias)])
            width = out_features
        elif spec.kind == "activation":
            x = _activation(graph, spec.activation, x)
        elif spec.kind == "layernorm":
            bias = spec.bias if spec.bias is not None else np.zeros_like(spec.weight)
            stash = onnx.TensorProto.DOUBLE if graph.dtype == np.float64 else onnx.TensorProto.FLOAT
            x = graph.node("LayerNormalization", [x, graph.constant("scale", spec.weight),
                                                  graph.constant("bias", bias)],
                           axis=-1, epsilon=float(spec.eps), stash_type=stash)
        elif spec.kind == "flatten":
            x = graph.node("Flatten", [x], axis=1)
            rank = 2
        elif spec.kind == "dropout":
            continue  # inference graph: dropout is the identity
    leading = ["batch"] + [f"dim{i}" for i in range(1, input_rank - 1)]
    input_shape = leading + [in_features]
    output_shape = (["batch"] if rank != input_rank else leading) + [width]
    graph.nodes.append(onnx.helper.make_node("Identity", [x], ["output"], name="output"))
    proto_graph = onnx.helper.make_graph(
        graph.nodes, "linea", [onnx.helper.make_tensor_value_info("input", element, input_shape)],
        [onnx.helper.make_tensor_value_info("output", element, output_shape)], graph.initializers)
    model = onnx.helper.make_model(proto_graph, producer_name="linea",
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write(specs, path, input_rank: int = 2) -> None:
    atomic_write(os.fspath(path), model_proto(specs, input_rank).SerializeToString())


# ---- import ---------------------------------------------------------------------------

def _initializers(graph, source: str) -> dict:
    onnx = _onnx()
    arrays = {}
    for tensor in graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise FormatError(f"{source}: initializer {tensor.name!r} refers to external data; "
                              "linea reads self-contained ONNX files only")
        if any(d < 0 for d in tensor.dims) or len(tensor.dims) > 8:
            raise FormatError(f"{source}: initializer {tensor.name!r} has dims {list(tensor.dims)}")
        count = math.prod(tensor.dims)
        itemsize = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.DOUBLE: 8}.get(tensor.data_type)
        if itemsize is None:
            raise FormatError(f"{source}: initializer {tensor.name!r} is not float32 or float64")
        held = len(tensor.raw_data) if tensor.raw_data else \
            (len(tensor.float_data) * 4 if tensor.data_type == onnx.TensorProto.FLOAT else len(tensor.double_data) * 8)
        if held != count * itemsize:
            raise FormatError(f"{source}: initializer {tensor.name!r} declares {list(tensor.dims)} "
                              f"({count * itemsize} bytes) but holds {held}")
        try:
            arrays[tensor.name] = np.array(onnx.numpy_helper.to_array(tensor))
        except Exception as error:
            raise FormatError(f"{source}: initializer {tensor.name!r} cannot be read: {error}") from None
    return arrays


def _attribute(node, name, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            from onnx import helper

            return helper.get_attribute_value(attribute)
    return default


def _scalar(arrays, name, source):
    value = arrays.get(name)
    if value is None or value.size != 1:
        raise FormatError(f"{source}: expected a scalar constant {name!r}")
    return float(value.reshape(()))


def specs_from_proto(model, source: str) -> list[LayerSpec]:
    graph = model.graph
    if len(graph.node) > _MAX_NODES:
        raise FormatError(f"{source}: {len(graph.node)} nodes is more than an MLP has")
    if len(graph.input) < 1 or len(graph.output) != 1:
        raise FormatError(f"{source}: expected one input and one output, found {len(graph.input)} "
                          f"and {len(graph.output)}")
    arrays = _initializers(graph, source)
    nodes = list(graph.node)
    current = next((i.name for i in graph.input if i.name not in arrays), None)
    if current is None:
        raise FormatError(f"{source}: the graph has no data input")
    specs, index = [], 0

    def take(op: str, position: int):
        if position >= len(nodes) or nodes[position].op_type != op:
            return None
        return nodes[position]

    while index < len(nodes):
        node = nodes[index]
        if current not in node.input:
            raise FormatError(f"{source}: node {node.name or node.op_type!r} does not follow the "
                              "chain: linea reads sequential (MLP) graphs only")
        op = node.op_type
        consumed = 1
        if op == "Gemm":
            if _attribute(node, "transA", 0) or _attribute(node, "alpha", 1.0) != 1.0 or \
                    _attribute(node, "beta", 1.0) != 1.0 or node.input[0] != current:
                raise FormatError(f"{source}: Gemm {node.name!r} must be x·Bᵀ + C with alpha = beta = 1")
            weight = arrays.get(node.input[1])
            if weight is None or weight.ndim != 2:
                raise FormatError(f"{source}: Gemm {node.name!r} needs a 2-D weight initializer")
            if not _attribute(node, "transB", 0):
                weight = weight.T
            bias = arrays.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            specs.append(LayerSpec("linear", np.array(weight), None if bias is None else np.array(bias).reshape(-1)))
        elif op == "MatMul":
            kernel = arrays.get(node.input[1])
            if kernel is None or kernel.ndim != 2 or node.input[0] != current:
                raise FormatError(f"{source}: MatMul {node.name!r} needs x · (2-D weight initializer)")
            bias = None
            follow = take("Add", index + 1)
            if follow is not None and node.output[0] in follow.input:
                other = [name for name in follow.input if name != node.output[0]]
                bias = arrays.get(other[0]) if other else None
                if bias is not None:
                    node, consumed = follow, 2
            specs.append(LayerSpec("linear", np.array(kernel.T), None if bias is None else np.array(bias).reshape(-1)))
        elif op in ("Relu", "Tanh", "Sigmoid", "Softplus"):
            sigmoid_then_mul = take("Mul", index + 1)
            if op == "Sigmoid" and sigmoid_then_mul is not None and current in sigmoid_then_mul.input \
                    and node.output[0] in sigmoid_then_mul.input:
                node, consumed = sigmoid_then_mul, 2
                specs.append(LayerSpec("activation", activation="silu"))
            else:
                specs.append(LayerSpec("activation", activation=op.lower()))
        elif op in ("Softmax", "LogSoftmax"):
            if _attribute(node, "axis", -1) != -1:
                raise FormatError(f"{source}: {op} over axis {_attribute(node, 'axis')} is not supported")
            specs.append(LayerSpec("activation", activation="softmax" if op == "Softmax" else "log_softmax"))
        elif op == "LeakyRelu":
            if not math.isclose(_attribute(node, "alpha", 0.01), 0.2, rel_tol=1e-6):
                raise FormatError(f"{source}: LeakyRelu with alpha {_attribute(node, 'alpha', 0.01)} "
                                  "is not supported (linea's leaky_relu uses 0.2)")
            specs.append(LayerSpec("activation", activation="leaky_relu"))
        elif op == "Div":  # our GELU: Div, Erf, Add, Mul, Mul
            pattern = [take(name, index + i) for i, name in enumerate(("Div", "Erf", "Add", "Mul", "Mul"))]
            if None in pattern or not math.isclose(_scalar(arrays, node.input[1], source), math.sqrt(2.0),
                                                        rel_tol=1e-6):
                raise FormatError(f"{source}: unsupported Div node {node.name!r}")
            node, consumed = pattern[-1], 5
            specs.append(LayerSpec("activation", activation="gelu"))
        elif op == "LayerNormalization":
            if _attribute(node, "axis", -1) != -1:
                raise FormatError(f"{source}: LayerNormalization must normalise the last axis")
            scale = arrays.get(node.input[1]) if len(node.input) > 1 else None
            bias = arrays.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if scale is None or scale.ndim != 1:
                raise FormatError(f"{source}: LayerNormalization needs a 1-D scale initializer")
            # ONNX float attributes are float32: 1e-5 arrives as 9.99999974e-06. Its 7
            # significant digits give back the value that was written.
            eps = float(f"{_attribute(node, 'epsilon', 1e-5):.7g}")
            specs.append(LayerSpec("layernorm", np.array(scale), None if bias is None else np.array(bias),
                                   eps=eps))
        elif op == "Flatten":
            specs.append(LayerSpec("flatten"))
        elif op in ("Identity", "Dropout"):
            pass
        else:
            raise FormatError(f"{source}: ONNX op {op!r} is not supported (linea reads MLPs: Gemm, "
                              "MatMul+Add, activations, LayerNormalization, Flatten)")
        current = node.output[0]
        index += consumed
    if current != graph.output[0].name:
        raise FormatError(f"{source}: the chain of nodes does not end at the graph output")
    if not any(s.kind == "linear" for s in specs):
        raise FormatError(f"{source}: the graph holds no linear layer")
    previous = None
    for spec in specs:
        if spec.kind == "linear":
            out_features, in_features = spec.weight.shape
            if previous is not None and in_features != previous:
                raise FormatError(f"{source}: a layer takes {in_features} inputs after one giving {previous}")
            if spec.bias is not None and spec.bias.shape != (out_features,):
                raise FormatError(f"{source}: a bias of shape {spec.bias.shape} for {out_features} outputs")
            previous = out_features
    return specs


def read(path) -> list[LayerSpec]:
    source = os.fspath(path)
    onnx = _onnx()
    data = read_bounded(source)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf's DecodeError and friends
        raise FormatError(f"{source}: not a readable ONNX file: {str(error)[:200]}") from None
    if not model.HasField("graph"):
        raise FormatError(f"{source}: the ONNX file holds no graph")
    try:
        return specs_from_proto(model, source)
    except FormatError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, RecursionError) as error:
        raise FormatError(f"{source}: malformed ONNX graph: {error}") from None
