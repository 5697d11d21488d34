"""``linea.compile`` for training: one graph node per compiled call, and a planned backward.

When grad mode is on and the model has parameters that require grad, a compiled call
runs the chain of layers (Linear, with a following ReLU/Tanh/Sigmoid fused into its
step; flattening) on arrays, and records **one** node whose backward walks the chain
in reverse: the activation's rule on its saved result, then the Linear's gradients
(input, weight, bias) — no Python node per op. Every rule is the eager op's own
(``affine_gradients``, ``RESULT_GRADIENTS``), applied to the same arrays in the same
order, so outputs and gradients are bitwise equal to eager. Arrays are allocated
fresh at each call (a graph may be kept while the next forward runs), as eager does.
"""
from __future__ import annotations

import math

from linea._autograd import record
from linea._ops_math import RESULT_GRADIENTS, stable_sigmoid
from linea._tensor import Tensor
from linea.backend import xp
from linea.nn import modules as nn
from linea.nn.registry import ACTIVATIONS, activation_of_module
from linea.nn.functional._linear import affine_gradients, affine_rows

__all__ = ["TrainingPlan", "CannotTrain"]


def _activate(name: str, out):
    """The eager activation on the array ``out`` (in place where the registry has that form)."""
    inplace = ACTIVATIONS[name].inplace
    return inplace(out) if inplace is not None else stable_sigmoid(out)  # sigmoid: eager's op


class CannotTrain(Exception):
    """The chain holds something the training plan does not compute."""


class TrainingPlan:
    """The training steps of a flat list of layers; ``run(input)`` is one compiled call."""

    def __init__(self, layers, dtype) -> None:
        if xp.dtype(dtype) not in (xp.float32, xp.float64):
            raise CannotTrain(f"{dtype} training (linea plans float32 and float64)")
        self.steps = []
        for layer in layers:
            if isinstance(layer, nn.Linear) and type(layer) is nn.Linear:
                if layer.weight._data.dtype != dtype:
                    raise CannotTrain(f"a Linear of {layer.weight.dtype} on {dtype} inputs")
                self.steps.append(["linear", layer, None])
            elif isinstance(layer, nn.Flatten):
                if (layer.start_dim, layer.end_dim) != (1, -1):
                    raise CannotTrain("a Flatten other than Flatten(1, -1)")
                self.steps.append(["flatten"])
            elif isinstance(layer, nn.Identity) or (isinstance(layer, nn.Dropout) and
                                                    (not layer.training or layer.p == 0)):
                continue
            else:
                found = activation_of_module(layer)
                if found is None or found[1] or found[0] not in RESULT_GRADIENTS:
                    raise CannotTrain(f"training through {type(layer).__name__}")
                name = found[0]
                previous = self.steps[-1] if self.steps else None
                if previous is not None and previous[0] == "linear" and previous[2] is None:
                    previous[2] = name
                else:
                    self.steps.append(["activation", name])
        if not any(step[0] == "linear" for step in self.steps):
            raise CannotTrain("a chain without a Linear layer")

    def run(self, input: Tensor) -> Tensor:
        x = input._data
        saved, keep, parameters = [], [], []
        for step in self.steps:
            kind = step[0]
            if kind == "linear":
                layer, activation = step[1], step[2]
                weight, bias = layer.weight, layer.bias
                w = weight._data
                out_features, in_features = w.shape
                if x.ndim == 0 or x.shape[-1] != in_features:
                    raise CannotTrain(f"an input of shape {x.shape} for Linear({in_features}, "
                                      f"{out_features})")
                lead = x.shape[:-1]
                x2 = x if x.ndim == 2 else x.reshape((math.prod(lead), in_features))
                w_in_out = w.T
                out = affine_rows(x2, w_in_out, None if bias is None else bias._data)
                if activation is not None:
                    out = _activate(activation, out)
                if x.ndim != 2:
                    out = out.reshape(lead + (out_features,))
                saved.append(("linear", x, x2, w_in_out, out_features, weight, bias, activation, out))
                keep += [w, x, out]
                parameters += [weight] + ([bias] if bias is not None else [])
                x = out
            elif kind == "flatten":
                saved.append(("flatten", x.shape))
                x = x.reshape((x.shape[0], -1)) if x.ndim > 1 else x
            else:
                out = _activate(step[1], x.copy())
                saved.append(("activation", step[1], out))
                keep.append(out)
                x = out
        result = Tensor._make(x)
        inputs = (input,) + tuple(parameters)
        if not any(t._requires_grad for t in inputs):
            return result
        input_needs = input._requires_grad
        first_linear = next(i for i, entry in enumerate(saved) if entry[0] == "linear")

        def backward(grad):
            grads = []
            for position in range(len(saved) - 1, -1, -1):
                entry = saved[position]
                if grad is None:  # before the first Linear, for an input without grad
                    break
                if entry[0] == "flatten":
                    grad = grad.reshape(entry[1])
                    continue
                if entry[0] == "activation":
                    grad = RESULT_GRADIENTS[entry[1]](grad, entry[2])
                    continue
                _, x_in, x2, w_in_out, out_features, weight, bias, activation, out = entry
                if activation is not None:
                    grad = RESULT_GRADIENTS[activation](grad, out)
                needs_x = input_needs or position > first_linear  # a Linear before it needs it
                grad_x, grad_w, grad_b = affine_gradients(
                    grad, x_in, x2, w_in_out, out_features, needs_x, weight._requires_grad,
                    bias is not None and bias._requires_grad, False)
                grads.append((weight, bias, grad_w, grad_b))
                grad = grad_x
            by_parameter = []
            for weight, bias, grad_w, grad_b in reversed(grads):
                by_parameter.append(grad_w)
                if bias is not None:
                    by_parameter.append(grad_b)
            return (grad if input_needs else None,) + tuple(by_parameter)

        return record(result, "CompiledChain", inputs, backward, tuple(keep))
