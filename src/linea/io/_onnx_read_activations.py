"""ONNX patterns of the activations no single ONNX op (at opset 17) computes, read exactly:

- ``Clip(x, min, max)`` → ``relu6`` (0, 6) or ``hard_tanh(min_val, max_val)``; bounds as
  constant inputs (opset ≥ 11) or attributes (before), both required;
- ``Sub(x, Tanh(x))`` → ``tanh_shrink``;
- ``Mul(x, Tanh(Softplus(x)))`` or one ``Mish`` node (opset 18) → ``mish``;
- ``Log(Sigmoid(x))`` or ``Neg(Softplus(Neg(x)))`` → ``log_sigmoid``;
- ``Div(x, Add(Abs(x), 1))`` → ``softsign``;
- ``Mul(x, HardSigmoid(x))`` of slope 1/6, offset 1/2 (before ``HardSwish``, opset 14) →
  ``hard_silu``.

A pattern that starts like one of these but does not finish is left to the other patterns,
and so, if none fits, to the reader's error naming the node.
"""
from __future__ import annotations

import numpy as np

from linea.io._onnx_read import _equals, _Match, _attribute
from linea.io._spec import LayerSpec

__all__ = ["ACTIVATION_PATTERNS"]


def _activation(name: str, output: str, nodes: list, shape, **settings) -> _Match:
    return _Match([LayerSpec("activation", activation=name, extra=settings)], output, nodes, shape)


def _bound(graph, node, index: int, attribute: str):
    """A Clip bound: its constant input (opset ≥ 11) or attribute (before), as a float32 value."""
    if graph.opset >= 11:
        name = node.input[index] if len(node.input) > index else ""
        value = graph.scalar(name) if name else None
    else:
        value = _attribute(node, attribute, None)
    return None if value is None else float(np.float32(value))


def _clip(graph, x: str, shape, node) -> _Match | None:
    if node.op_type != "Clip" or node.input[0] != x:
        return None
    low, high = _bound(graph, node, 1, "min"), _bound(graph, node, 2, "max")
    if low is None or high is None or low > high:
        return None
    if (low, high) == (0.0, 6.0):
        return _activation("relu6", node.output[0], [node], shape)
    return _activation("hard_tanh", node.output[0], [node], shape,
                       min_val=float(f"{low:.7g}"), max_val=float(f"{high:.7g}"))


def _tanh_shrink(graph, x: str, shape, node) -> _Match | None:
    if node.op_type != "Tanh":
        return None
    sub = graph.only_user(node.output[0], "Sub")
    if sub is None or list(sub.input) != [x, node.output[0]]:
        return None
    return _activation("tanh_shrink", sub.output[0], [node, sub], shape)


def _mish(graph, x: str, shape, node) -> _Match | None:
    if node.op_type == "Mish" and list(node.input) == [x]:
        return _activation("mish", node.output[0], [node], shape)
    if node.op_type != "Softplus":
        return None
    tanh = graph.only_user(node.output[0], "Tanh")
    mul = graph.only_user(tanh.output[0], "Mul") if tanh is not None else None
    if mul is None or sorted(mul.input) != sorted([x, tanh.output[0]]):
        return None
    return _activation("mish", mul.output[0], [node, tanh, mul], shape)


def _log_sigmoid(graph, x: str, shape, node) -> _Match | None:
    if node.op_type == "Sigmoid":
        log = graph.only_user(node.output[0], "Log")
        if log is None:
            return None
        return _activation("log_sigmoid", log.output[0], [node, log], shape)
    if node.op_type != "Neg":
        return None
    softplus = graph.only_user(node.output[0], "Softplus")
    negated = graph.only_user(softplus.output[0], "Neg") if softplus is not None else None
    if negated is None:
        return None
    return _activation("log_sigmoid", negated.output[0], [node, softplus, negated], shape)


def _softsign(graph, x: str, shape, node) -> _Match | None:
    if node.op_type != "Abs":
        return None
    add = graph.only_user(node.output[0], "Add")
    if add is None or not _equals(graph.scalar(graph.other(add, node.output[0]) or ""), 1.0):
        return None
    div = graph.only_user(add.output[0], "Div")
    if div is None or list(div.input) != [x, add.output[0]]:
        return None
    return _activation("softsign", div.output[0], [node, add, div], shape)


def _hard_swish(graph, x: str, shape, node) -> _Match | None:
    if node.op_type != "HardSigmoid" or list(node.input) != [x]:
        return None
    slope, offset = (float(np.float32(_attribute(node, key, default)))
                     for key, default in (("alpha", 0.2), ("beta", 0.5)))
    mul = graph.only_user(node.output[0], "Mul")
    if (slope, offset) != (float(np.float32(1 / 6)), 0.5) or mul is None or \
            sorted(mul.input) != sorted([x, node.output[0]]):
        return None
    return _activation("hard_silu", mul.output[0], [node, mul], shape)


ACTIVATION_PATTERNS = (_clip, _tanh_shrink, _mish, _log_sigmoid, _softsign, _hard_swish)
