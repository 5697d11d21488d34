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

from linea._errors import require
from linea._files import atomic_write
from linea.io._spec_images import IMAGE_KINDS
from linea.io._spec import LayerSpec
from linea.io.kinds import activation_settings
from linea.nn.registry import ACTIVATIONS

OPSET = 17
_MAX_NODES = 100_000


def _onnx():
    return require("onnx", "formats", "Reading or writing ONNX files")


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


def _activation(graph: _Graph, spec, x: str) -> str:
    name = spec.activation
    settings = activation_settings(name, spec.extra)
    entry = ACTIVATIONS.get(name)
    if entry is not None and entry.onnx_op is not None and name != "linear":
        attributes = {key: float(value) for key, value in entry.onnx_fixed.items()}
        attributes.update({key: float(settings[setting])
                           for key, setting in entry.onnx_settings.items()})
        return graph.node(entry.onnx_op, [x], **attributes)
    if name == "softplus":
        softplus = graph.node("Softplus", [x])
        if settings["threshold"] == float("inf"):
            return softplus
        above = graph.node("Greater", [x, graph.constant("threshold", settings["threshold"])])
        return graph.node("Where", [above, x, softplus])
    if name == "softmax":
        return graph.node("Softmax", [x], axis=-1)
    if name == "log_softmax":
        return graph.node("LogSoftmax", [x], axis=-1)
    if name == "leaky_relu":
        return graph.node("LeakyRelu", [x], alpha=float(settings["negative_slope"]))
    if name == "silu":
        return graph.node("Mul", [x, graph.node("Sigmoid", [x])])
    if name == "gelu":
        scaled = graph.node("Div", [x, graph.constant("sqrt2", math.sqrt(2.0))])
        shifted = graph.node("Add", [graph.node("Erf", [scaled]), graph.constant("one", 1.0)])
        return graph.node("Mul", [graph.node("Mul", [x, shifted]), graph.constant("half", 0.5)])
    if name == "gelu_tanh":  # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        cube = graph.node("Mul", [x, graph.node("Mul", [x, x])])
        inner = graph.node("Add", [x, graph.node("Mul", [cube, graph.constant("c", 0.044715)])])
        scaled = graph.node("Mul", [inner, graph.constant("sqrt_2_over_pi", math.sqrt(2.0 / math.pi))])
        shifted = graph.node("Add", [graph.node("Tanh", [scaled]), graph.constant("one", 1.0)])
        return graph.node("Mul", [graph.node("Mul", [x, shifted]), graph.constant("half", 0.5)])
    if name in ("relu6", "hard_tanh"):  # Clip with its bounds as inputs (opset ≥ 11)
        low, high = (0.0, 6.0) if name == "relu6" else (settings["min_val"], settings["max_val"])
        return graph.node("Clip", [x, graph.constant("min", low), graph.constant("max", high)])
    if name == "tanh_shrink":
        return graph.node("Sub", [x, graph.node("Tanh", [x])])
    if name == "mish":
        return graph.node("Mul", [x, graph.node("Tanh", [graph.node("Softplus", [x])])])
    if name == "log_sigmoid":  # −softplus(−x): no overflow, as linea computes it
        return graph.node("Neg", [graph.node("Softplus", [graph.node("Neg", [x])])])
    if name == "linear":
        return x
    raise ValueError(f"the activation {name!r} cannot be exported to ONNX")


def _quantized_linear(graph: _Graph, spec, x: str) -> str:
    """linea's int8 Linear, op for op, so onnxruntime computes the very same numbers:

        x_scale = 127 / (ReduceMax(|x|, last axis) + 1e-7)
        xq = Cast<int8>(Clip(Round(x · x_scale), -127, 127))         (Round: half to even)
        y = Cast<float>(MatMulInteger(xq, Wqᵀ)) / (w_scale · x_scale) + b
        rows holding inf or NaN → NaN
    """
    onnx = graph.onnx
    f32 = lambda stem, value: graph.constant(stem, np.asarray(value, np.float32))  # noqa: E731
    amax = graph.node("ReduceMax", [graph.node("Abs", [x])], axes=[-1], keepdims=1)
    x_scale = graph.node("Div", [f32("q_max", 127.0), graph.node("Add", [amax, f32("epsilon", 1e-7)])])
    bad = graph.node("Or", [graph.node("IsNaN", [x]), graph.node("IsInf", [x])])
    bad_row = graph.node("Greater", [graph.node("ReduceMax", [graph.node("Cast", [bad], to=onnx.TensorProto.FLOAT)],
                                                axes=[-1], keepdims=1), f32("zero", 0.0)])
    clean = graph.node("Where", [bad, f32("zero", 0.0), x])
    rounded = graph.node("Round", [graph.node("Mul", [clean, x_scale])])
    clipped = graph.node("Clip", [rounded, f32("q_low", -127.0), f32("q_high", 127.0)])
    xq = graph.node("Cast", [clipped], to=onnx.TensorProto.INT8)
    name = graph.name("weight_int8_t")
    graph.initializers.append(onnx.numpy_helper.from_array(np.ascontiguousarray(spec.weight.T, np.int8), name))
    acc = graph.node("Cast", [graph.node("MatMulInteger", [xq, name])], to=onnx.TensorProto.FLOAT)
    y = graph.node("Div", [acc, graph.node("Mul", [f32("weight_scale", spec.extra["scale"]), x_scale])])
    if spec.bias is not None:
        y = graph.node("Add", [y, f32("bias", spec.bias)])
    return graph.node("Where", [bad_row, f32("nan", np.nan), y])


def model_proto(specs, input_rank: int = 2):
    """An ONNX ModelProto computing the layer list on inputs of rank ``input_rank``."""
    onnx = _onnx()
    linears = [s for s in specs if s.kind in ("linear", "layernorm", "conv2d")]
    if not linears and any(s.kind == "qlinear" for s in specs):
        linears = [LayerSpec("linear", np.zeros((1, 1), np.float32))]  # the graph's float dtype
    if not linears:
        raise ValueError("an ONNX export needs at least one Linear/Dense or Conv2d layer")
    dtype = linears[0].weight.dtype
    element = {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.float64): onnx.TensorProto.DOUBLE,
               np.dtype(np.float16): onnx.TensorProto.FLOAT16}.get(np.dtype(dtype))
    if element is None:
        hint = (" (onnxruntime has no bfloat16 Gemm or MatMul on the CPU, so such a file could not "
                "be run or checked; export model.float() or model.half())") if dtype.name == "bfloat16" else ""
        raise ValueError(f"ONNX export supports float32, float64 and float16 weights, not {dtype}{hint}")
    graph = _Graph(onnx, dtype)
    first = next((s for s in specs if s.kind in ("linear", "qlinear", "layernorm")), linears[0])
    in_features = first.weight.shape[1] if first.kind in ("linear", "qlinear") else first.weight.shape[0]
    image_shape = _image_input(specs)
    if image_shape is not None:
        input_rank = 4
    x = "input"
    rank = input_rank
    width = in_features
    for spec in specs:
        if spec.kind in IMAGE_KINDS:
            x = _image_node(graph, spec, x)
            if spec.kind == "globalavgpool" and not spec.extra.get("keepdims"):
                x = graph.node("Flatten", [x], axis=1)
                rank = 2
        elif spec.kind == "linear":
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
        elif spec.kind == "qlinear":
            if graph.dtype != np.float32:
                raise ValueError("an int8-quantized layer exports in a float32 graph only")
            x = _quantized_linear(graph, spec, x)
            width = spec.weight.shape[0]
        elif spec.kind == "activation":
            x = _activation(graph, spec, x)
        elif spec.kind == "layernorm":
            bias = spec.bias if spec.bias is not None else np.zeros_like(spec.weight)
            stash = onnx.TensorProto.DOUBLE if graph.dtype == np.float64 else onnx.TensorProto.FLOAT
            x = graph.node("LayerNormalization", [x, graph.constant("scale", spec.weight),
                                                  graph.constant("bias", bias)],
                           axis=-spec.weight.ndim, epsilon=float(spec.eps), stash_type=stash)
        elif spec.kind == "flatten":
            x = graph.node("Flatten", [x], axis=spec.extra.get("onnx_axis", 1))
            rank = 2
        elif spec.kind == "dropout":
            continue  # inference graph: dropout is the identity
    leading = ["batch"] + [f"dim{i}" for i in range(1, input_rank - 1)]
    input_shape = leading + [in_features] if image_shape is None else ["batch", *image_shape]
    output_shape = (["batch"] if rank != input_rank else leading) + [width]
    if image_shape is not None and rank == 4:  # images out: their sizes follow the layers
        output_shape = ["batch"] + [f"out{i}" for i in range(1, 4)]
    graph.nodes.append(onnx.helper.make_node("Identity", [x], ["output"], name="output"))
    proto_graph = onnx.helper.make_graph(
        graph.nodes, "linea", [onnx.helper.make_tensor_value_info("input", element, input_shape)],
        [onnx.helper.make_tensor_value_info("output", element, output_shape)], graph.initializers)
    model = onnx.helper.make_model(proto_graph, producer_name="linea",
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _image_input(specs):
    """(C, H, W) of a model with image layers (recorded in its first spec), else None."""
    if not any(spec.kind in IMAGE_KINDS and spec.extra.get("rank", 4) == 4 for spec in specs):
        return None  # no image layer (a BatchNorm over features is refused by its own node)
    shape = specs[0].extra.get("input_shape") if specs else None
    if shape is None or len(shape) != 3:
        raise ValueError("an ONNX export of a model with image layers needs its input size: "
                         "build the layer list with input_shape=(C, H, W)")
    return tuple(int(size) for size in shape)


def _pads(padding4) -> list:
    top, bottom, left, right = padding4
    return [int(top), int(left), int(bottom), int(right)]  # ONNX: begins, then ends


def _image_node(graph: _Graph, spec, x: str) -> str:
    """Conv, MaxPool, AveragePool, GlobalAveragePool or BatchNormalization for an image spec."""
    extra = spec.extra
    if spec.kind == "conv2d":
        inputs = [x, graph.constant("conv_weight", spec.weight)]
        if spec.bias is not None:
            inputs.append(graph.constant("conv_bias", spec.bias))
        return graph.node("Conv", inputs, kernel_shape=list(spec.weight.shape[2:]),
                          strides=list(extra["stride"]), pads=_pads(extra["padding4"]),
                          dilations=list(extra["dilation"]), group=int(extra["groups"]))
    if spec.kind == "maxpool2d":
        return graph.node("MaxPool", [x], kernel_shape=list(extra["kernel"]),
                          strides=list(extra["stride"]), pads=_pads(extra["padding4"]),
                          dilations=list(extra.get("dilation", (1, 1))))
    if spec.kind == "avgpool2d":
        if extra.get("edge") == "replicate":
            raise ValueError("an average pooling with Keras's uneven 'same' padding (edges repeated, "
                             "as Keras's torch backend computes it) has no ONNX AveragePool twin")
        return graph.node("AveragePool", [x], kernel_shape=list(extra["kernel"]),
                          strides=list(extra["stride"]), pads=_pads(extra["padding4"]),
                          count_include_pad=int(bool(extra["count_include_pad"])))
    if spec.kind == "globalavgpool":
        return graph.node("GlobalAveragePool", [x])
    if spec.kind == "batchnorm":  # over the channels of (N, C, H, W) or the features of (N, C)
        mean = extra["running_mean"]
        scale = spec.weight if spec.weight is not None else np.ones_like(mean)
        shift = spec.bias if spec.bias is not None else np.zeros_like(mean)
        return graph.node("BatchNormalization", [x, graph.constant("bn_scale", scale),
                                                 graph.constant("bn_bias", shift),
                                                 graph.constant("bn_mean", mean),
                                                 graph.constant("bn_var", extra["running_var"])],
                          epsilon=float(spec.eps),
                          momentum=float(f"{1.0 - extra['momentum']:.15g}"))  # ONNX: the share kept
    raise ValueError(f"unknown image layer kind {spec.kind!r}")


def write(specs, path, input_rank: int = 2) -> None:
    atomic_write(os.fspath(path), model_proto(specs, input_rank).SerializeToString())


# ---- import: see _onnx_read ------------------------------------------------------------

def read(path) -> list:
    from linea.io._onnx_read import read as read_onnx

    return read_onnx(path)
