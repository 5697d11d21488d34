"""``linea.compile(model)``: replay a model's forward as a flat plan (training: _compile_training).

At the first call for each input shape and dtype, the model is planned: each
Linear (or Dense) becomes one matmul into a preallocated buffer, with the bias
and a following activation applied in place on that buffer — no temporaries —
and the buffers are reused from call to call. Weights are read live at every
call, so training the model after compiling it is seen. Each call returns a
fresh array. Steps compute exactly what the eager ops compute, in the same
order, so outputs are identical to the eager model's. Anything the planner
does not know runs eagerly, after a one-line warning.
"""
from __future__ import annotations

import math
import sys
import threading
import warnings

from linea._autograd import (LINEAR_NODE, RELU_NODE, RESHAPE_NODE, SIGMOID_NODE, TANH_NODE,
                             grad_enabled, no_grad)
from linea.backend import xp
from linea._tensor import Tensor
from linea.nn import modules as nn
from linea.nn.functional._linear import affine_rows
from linea.nn.registry import ACTIVATIONS, activation_of_module

__all__ = ["compile", "CompiledModel"]

_make = Tensor._make


class _CannotPlan(Exception):
    pass


def _inplace_activation(name: str):
    """(name, in-place function) for an activation, bit-identical to the eager op, or None."""
    entry = ACTIVATIONS.get(name)
    if entry is None or entry.inplace is None:
        return None
    return name, (None if name == "linear" else entry.inplace)


def _eager_activation(function):
    """(name, function) for activations without an in-place form: the eager op, on a tensor."""
    def apply(buffer):
        result = function(Tensor._make(buffer))._data
        buffer[...] = result
        return buffer
    return "eager", apply


def _module_activation(module):
    """(registry name, None) for an activation with an in-place step, else (None, module)."""
    if isinstance(module, nn.Dropout) and module.training and module.p > 0:
        raise _CannotPlan("Dropout in training mode (it draws a mask at every call)")
    if isinstance(module, (nn.Identity, nn.Dropout)):
        return "linear", None
    found = activation_of_module(module)
    if found is None:
        raise _CannotPlan(type(module).__name__)
    name, settings = found
    if _inplace_activation(name) is not None and not settings:
        return name, None
    return None, module


def _keras():
    """The Keras flavour's modules, if it is loaded (a Keras model exists only if it is)."""
    if "linea.keras" not in sys.modules:
        return None
    from linea.keras import activations, layers
    from linea.keras._sequential import Sequential

    return activations, layers, Sequential


def _flatten(model) -> list:
    """The model as a flat list of leaf layers (nested Sequentials opened)."""
    if isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward:
        return [leaf for module in model for leaf in _flatten(module)]
    keras = _keras()
    if keras is not None and isinstance(model, keras[2]):
        return [leaf for layer in model.layers for leaf in _flatten(layer)]
    return [model]


class _LinearStep:
    """out ← x Wᵀ (or x K); out += b; activation in place — into a reused buffer."""

    def __init__(self, layer, kernel_layout: bool) -> None:
        self.layer, self.kernel_layout = layer, kernel_layout
        self.activation = None  # (name, in-place function) once folded
        self.fresh_output = False
        self.run = None

    def plan(self, shape, dtype):
        layer, kernel_layout = self.layer, self.kernel_layout
        weight = layer.kernel if kernel_layout else layer.weight
        in_features = weight.shape[0] if kernel_layout else weight.shape[1]
        out_features = weight.shape[1] if kernel_layout else weight.shape[0]
        if shape[-1] != in_features or weight._data.dtype != dtype:
            raise _CannotPlan(f"input {shape} / {dtype} does not fit {type(layer).__name__}")
        rows = math.prod(shape[:-1])
        buffer = None if self.fresh_output else xp.empty((rows, out_features), dtype)
        out_shape = tuple(shape[:-1]) + (out_features,)
        self.run = _linear_closure(layer, kernel_layout, buffer, rows, out_shape, self.activation)
        return out_shape


def _linear_closure(layer, kernel_layout, buffer, rows, out_shape, activation):
    """One planned Linear/Dense step, with everything it needs bound as locals.

    ``buffer`` None means "return a fresh array" (the last step: no copy needed).
    The common case — a 2-D input, ReLU or nothing after — gets a closure with
    no per-call branches: at batch 1 the glue is most of the cost.
    """
    name, function = activation if activation is not None else ("linear", None)
    flat = len(out_shape) == 2
    seen = [None, None]  # the weight array last read, and its (in, out) view
    weight = layer.kernel._data if kernel_layout else layer.weight._data
    planned = (weight.shape, weight.dtype)

    if flat and not kernel_layout and layer.bias is not None:

        def fast_step(x):
            data = layer.weight._data  # live weights
            if data is not seen[0]:
                _check_planned(data, planned, layer)
                seen[0], seen[1] = data, data.T
            out = affine_rows(x, seen[1], layer.bias._data, buffer)
            return out if function is None else function(out)

        return fast_step

    def step(x):
        if not flat:
            x = x.reshape(rows, -1)
        data = layer.kernel._data if kernel_layout else layer.weight._data  # live weights
        if data is not seen[0]:
            _check_planned(data, planned, layer)
            seen[0], seen[1] = data, (data if kernel_layout else data.T)
        bias = layer.bias
        out = affine_rows(x, seen[1], None if bias is None else bias._data, buffer)
        if function is not None:
            function(out)
        return out if flat else out.reshape(out_shape)

    return step


class _Replan(Exception):
    """A layer's weights changed shape or dtype since the plan was made."""


def _check_planned(data, planned, layer) -> None:
    if (data.shape, data.dtype) != planned:
        raise _Replan(f"{type(layer).__name__}'s weight is now {data.shape} {data.dtype}")


class _EagerStep:
    """A layer run through its eager forward (activations without an in-place form, norms)."""

    def __init__(self, function) -> None:
        self.function = function
        self.run = lambda x: function(Tensor._make(x))._data

    def plan(self, shape, dtype):
        probe = self.function(Tensor._make(xp.zeros(shape, dtype)))
        return tuple(probe.shape)


_NOTHING_YET = (None, None, None, None)

#: Graph nodes a traced forward may hold between its Linears, and the module each one is.
_TRACED_ACTIVATIONS = {RELU_NODE: nn.ReLU, TANH_NODE: nn.Tanh, SIGMOID_NODE: nn.Sigmoid}


def _traceable(module) -> bool:
    """A module of the user's own (a ``forward`` linea does not know): planned by tracing."""
    known = (nn.Linear, nn.Sequential, nn.LayerNorm, nn.Flatten, nn.Identity, nn.Dropout)
    return isinstance(module, nn.Module) and not isinstance(module, known) and \
        activation_of_module(module) is None and type(module).forward is not nn.Module.forward


def _trace(model, shape, dtype):
    """(layers, probe input, eager output) of one eager call, read from the graph it recorded.

    The forward runs on a probe that requires grad, so every op it applies is recorded
    through the one recording point; the graph from the output back to the probe must be
    a chain of Linear layers of the model, ReLU/Tanh/Sigmoid and flattening reshapes. A
    forward that reads values (``item()``, ``bool()``, ``numpy()`` …) may choose its ops by
    the data, and is not planned.
    """
    from linea._autograd import _TRACE_READS, enable_grad

    probe_data = xp.random.default_rng(0).standard_normal(shape).astype(dtype)
    probe = Tensor._make(probe_data.copy())
    probe._requires_grad = True
    reads = []
    token = _TRACE_READS.set(reads)
    try:
        with enable_grad():
            out = model(probe)
    except Exception as error:  # the eager call itself fails: eager reports it
        raise _CannotPlan(f"{type(model).__name__} ({type(error).__name__} while tracing)") from None
    finally:
        _TRACE_READS.reset(token)
    name = type(model).__name__
    if reads:
        raise _CannotPlan(f"{name} (its forward reads tensor values with {reads[0]}, so its ops "
                          "may depend on the data)")
    if not isinstance(out, Tensor) or out.grad_fn is None:
        raise _CannotPlan(f"{name} (its forward does not return a tensor computed from its input)")
    linears = {id(m.weight): m for m in model.modules() if type(m) is nn.Linear}
    layers, tensor = [], out
    while tensor is not probe:
        node = tensor.grad_fn
        if node is None:
            raise _CannotPlan(f"{name} (its output does not come from its input alone)")
        if node.name == LINEAR_NODE:
            source, weight, bias = node.inputs
            layer = linears.get(id(weight))
            if layer is None or bias is not layer.bias:
                raise _CannotPlan(f"{name} (a linear op whose weight and bias are not one nn.Linear's)")
            layers.append(layer)
        elif node.name in _TRACED_ACTIVATIONS:
            source = node.inputs[0]
            layers.append(_TRACED_ACTIVATIONS[node.name]())
        elif node.name == RESHAPE_NODE:
            source = node.inputs[0]
            if tensor.ndim != 2 or tensor.shape[0] != source.shape[0]:
                raise _CannotPlan(f"{name} (a reshape other than a flatten after the batch axis)")
            layers.append(nn.Flatten())
        else:
            raise _CannotPlan(f"{name} (the op {node.name} in its forward)")
        tensor = source
    layers.reverse()
    return layers, probe_data, out._data


class CompiledModel:
    """A callable that runs ``model`` for inference through per-shape plans.

    Plans own their buffers, so each thread gets plans of its own: several threads
    may call one compiled model at once.
    """

    def __init__(self, model) -> None:
        self.model = model
        self._local = threading.local()
        self.stale = True  # set by any watched module's change (Module._watch_structure)
        self._fallback = None
        self._layers = ()
        self._generation = 0  # bumped by each survey: plans of older generations are dropped
        self._warned = False
        self._survey(stacklevel=4)

    def _survey(self, stacklevel: int) -> None:
        """Flatten the model and check its layers, as its structure is now."""
        self.stale = False
        for module in self.model.modules():  # this plan hears of their changes, no other's
            module._watch_structure(self)
        self._generation += 1
        self._fallback = None
        # Read once per structure: train()/eval() and every change of a child bump it.
        self._parameters = list(self.model.parameters())
        self._modes = tuple(module.training for module in self.model.modules())
        try:
            hooked = [type(m).__name__ for m in self.model.modules() if m._hooks]
            if hooked:
                raise _CannotPlan(f"{hooked[0]} (it has hooks, which run in eager calls only)")
            self._layers = _flatten(self.model)
            if len(self._layers) == 1 and _traceable(self._layers[0]):
                self._traced = self._layers[0]
                self._layers = None  # a module of the user's own: its forward is traced per input
                return
            for layer in self._layers:  # reject unknown layers now, not at the first call
                self._step_for(layer)
        except _CannotPlan as reason:
            self._fallback = str(reason)
            warnings.warn(f"linea.compile: cannot plan {reason}; running the model eagerly",
                          stacklevel=stacklevel)

    def _step_for(self, layer):
        if isinstance(layer, nn.Linear):
            return _LinearStep(layer, kernel_layout=False)
        if isinstance(layer, (nn.LayerNorm, nn.Flatten, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d,
                              nn.AdaptiveAvgPool2d)):
            return _EagerStep(lambda t, layer=layer: layer(t))
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if layer.training:  # each call moves the running statistics: not a plan
                raise _CannotPlan(f"{type(layer).__name__} in training mode")
            return _EagerStep(lambda t, layer=layer: layer(t))
        keras = _keras()
        if keras is None:
            name, module = _module_activation(layer)
            return ("activation", _inplace_activation(name) if name is not None
                    else _eager_activation(module))
        keras_activations, keras_layers, _ = keras
        if isinstance(layer, keras_layers.Dense):
            step = _LinearStep(layer, kernel_layout=True)
            name = keras_activations.serialize(layer.activation)
            step.activation = _inplace_activation(name) or _eager_activation(layer.activation)
            return step
        if isinstance(layer, (keras_layers.Activation,)):
            name = keras_activations.serialize(layer.activation)
            return ("activation", _inplace_activation(name) or _eager_activation(layer.activation))
        if isinstance(layer, keras_layers.Dropout):
            return ("activation", _inplace_activation("linear"))
        if isinstance(layer, (keras_layers.LayerNormalization, keras_layers.Flatten)):
            return _EagerStep(lambda t, layer=layer: layer(t))
        name, module = _module_activation(layer)
        if name is not None:
            return ("activation", _inplace_activation(name))
        return ("activation", _eager_activation(module))

    def _plan(self, shape, dtype):
        if self._layers is None:  # traced: the ops one eager call made, checked bit for bit
            layers, probe, expected = _trace(self._traced, shape, dtype)
            steps = self._plan_layers(layers, shape, dtype)
            x = probe
            for run in steps:
                x = run(x)
            if x.shape != expected.shape or not xp.array_equal(x, expected, equal_nan=True):
                raise _CannotPlan(f"{type(self._traced).__name__} (its plan does not reproduce its "
                                  "forward exactly)")
            return steps
        return self._plan_layers(self._layers, shape, dtype)

    def _plan_layers(self, layers, shape, dtype):
        steps, current = [], tuple(shape)
        previous_shape = current
        for layer in layers:
            step = self._step_for(layer)
            if isinstance(step, tuple):  # an activation: fold it into the step before
                previous = steps[-1] if steps else None
                if isinstance(previous, _LinearStep) and previous.activation is None:
                    previous.activation = step[1]
                    current = previous.plan(previous_shape, dtype)
                else:
                    name, function = step[1]
                    if function is None:
                        continue
                    # order="K": the eager op keeps its input's memory layout, and later
                    # reductions sum in that order
                    eager = _EagerStep(lambda t, f=function: Tensor._make(f(t._data.copy(order="K"))))
                    current = eager.plan(current, dtype)
                    steps.append(eager)
                continue
            previous_shape = current
            current = step.plan(current, dtype)
            steps.append(step)
        if steps and isinstance(steps[-1], _LinearStep):  # the last step returns a fresh array
            steps[-1].fresh_output = True
            steps[-1].plan(previous_shape, dtype)
        else:
            steps.append(_EagerStep(lambda t: Tensor._make(t._data.copy())))
        return tuple(step.run for step in steps)

    def __call__(self, input):
        if self.stale:  # a child, parameter, attribute, mode or hook of the model changed
            self._survey(stacklevel=3)
        if grad_enabled() and (getattr(input, "_requires_grad", False) or
                               any(p._requires_grad for p in self._parameters)):
            return self._train(input)
        if self._fallback is not None:
            return self._eager(input)
        x = input._data if input.__class__ is Tensor else getattr(input, "_data", None)
        if x is None:
            x = xp.asarray(input)
        local = self._local
        last_shape, last_dtype, steps, generation = getattr(local, "last", _NOTHING_YET)
        if x.shape != last_shape or x.dtype is not last_dtype or generation != self._generation:
            if not x.ndim or x.dtype.kind not in "biuf":
                return self._eager(input)  # eager's own error (a 0-d input, None, strings)
            if x.dtype != self._dtype():  # raw data of another dtype: convert, as the layers do
                x = x.astype(self._dtype())
            steps = self._steps_for(x.shape, x.dtype)
            if steps is None:  # this shape does not fit the layers: eager raises its error
                return self._eager(input)
            local.last = (x.shape, x.dtype, steps, self._generation)
        try:
            for run in steps:
                x = run(x)
        except _Replan:  # weights replaced by ones of another shape or dtype
            self._survey(stacklevel=3)
            return self(input)
        return _make(x)  # the last step wrote a fresh array; the other buffers are reused

    def _eager(self, input):
        with no_grad():
            return self.model(input)

    def _train(self, input):
        """A call that records the graph: one node, a planned backward (_compile_training)."""
        from linea._compile_training import CannotTrain, TrainingPlan

        if self._fallback is not None or not isinstance(input, Tensor) or \
                type(input._data) is not xp.ndarray:
            return self.model(input)
        x = input._data
        if x.dtype.kind != "f" or not x.ndim:  # eager converts or raises its own error
            return self.model(input)
        local = self._local
        if getattr(local, "train_generation", None) != self._generation:
            local.train_plans, local.train_generation = {}, self._generation
        key = (x.shape, x.dtype, self._modes)
        plan = local.train_plans.get(key, _NOTHING_YET)
        if plan is _NOTHING_YET:
            try:
                layers = self._layers if self._layers is not None else \
                    _trace(self._traced, x.shape, x.dtype)[0]
                plan = TrainingPlan(layers, x.dtype)
            except (CannotTrain, _CannotPlan) as reason:
                plan = None
                if not self._warned:
                    self._warned = True
                    warnings.warn(f"linea.compile: cannot plan {reason}; running the model "
                                  "eagerly", stacklevel=3)
            local.train_plans[key] = plan
        if plan is None:
            return self.model(input)
        try:
            return plan.run(input)
        except CannotTrain:  # the input does not fit: eager raises its error
            return self.model(input)

    def _steps_for(self, shape, dtype):
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            local.plans, local.generation = {}, self._generation
        key = (shape, dtype)
        if self._layers is None:  # a traced forward may depend on train/eval mode
            key += (self._modes,)
        steps = local.plans.get(key)
        if steps is None:
            try:
                steps = local.plans[key] = self._plan(shape, dtype)
            except _CannotPlan as reason:
                if self._layers is None:
                    local.plans[key] = None  # not traced again for this input
                    if not self._warned:
                        self._warned = True
                        warnings.warn(f"linea.compile: cannot plan {reason}; running the model "
                                      "eagerly", stacklevel=4)
                return None
        return steps

    def _dtype(self):
        for parameter in self.model.parameters():
            return parameter._data.dtype
        return xp.dtype(xp.float32)

    def __repr__(self) -> str:
        return f"CompiledModel({self.model!r}, plans={len(getattr(self._local, 'plans', {}))})"


def compile(model) -> CompiledModel:  # noqa: A001 - linea.compile mirrors torch.compile
    """A callable that runs ``model``'s inference forward as a flat, preallocated plan."""
    return CompiledModel(model)
