"""Module hooks as PyTorch calls them: forward pre-hooks, forward hooks, full backward hooks.

Order of one call: forward pre-hooks (in registration order; each may replace the
positional inputs, or with ``with_kwargs`` the (args, kwargs) pair), ``forward``, forward
hooks (each may replace the output). With backward hooks, each tensor input and output
passes through an identity node; when the inputs' gradients are known, every backward
hook is called as ``hook(module, grad_input, grad_output)`` — one entry per positional
input (None for non-tensors) and per output — and may return a replacement ``grad_input``.
Where no input requires a gradient the hooks fire once the outputs' gradients are known,
with ``grad_input`` all None (PyTorch does the same, with a warning).
"""
from __future__ import annotations

import warnings

from linea._autograd import grad_enabled, record
from linea._tensor import Tensor

__all__ = ["ModuleHooks", "call_with_hooks"]


class ModuleHooks:
    """One module's hooks: {id: entry} in call order."""

    def __init__(self) -> None:
        self.forward_pre: dict = {}
        self.forward: dict = {}
        self.backward: dict = {}

    def __bool__(self) -> bool:
        return bool(self.forward_pre or self.forward or self.backward)


def _as_args(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def call_with_hooks(module, args: tuple, kwargs: dict):
    hooks = module._hooks
    for hook, with_kwargs in list(hooks.forward_pre.values()):
        if with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError("forward pre-hook must return None or a tuple of "
                                       f"(new_args, new_kwargs), but got {result!r}.")
                args, kwargs = _as_args(result[0]), result[1]
        else:
            result = hook(module, args)
            if result is not None:
                args = _as_args(result)
    state = _BackwardState(module, args) if hooks.backward and grad_enabled() else None
    if state is not None:
        args = state.wrap_inputs(args)
    output = module.forward(*args, **kwargs)
    for hook, with_kwargs in list(hooks.forward.values()):
        result = hook(module, args, kwargs, output) if with_kwargs else hook(module, args, output)
        if result is not None:
            output = result
    if state is not None:
        output = state.wrap_outputs(output)
    return output


class _BackwardState:
    """The gradients around one call of a module with full backward hooks."""

    def __init__(self, module, args: tuple) -> None:
        self.module = module
        self.count = len(args)
        self.grad_output: list = []
        self.input_positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if len(self.input_positions) > 1:
            raise NotImplementedError(
                f"{type(module).__name__}: linea's full backward hooks take modules with one input "
                f"that requires grad; this call has {len(self.input_positions)}")
        self.first_output = None

    def wrap_inputs(self, args: tuple) -> tuple:
        args = list(args)
        for position in self.input_positions:
            source = args[position]
            out = Tensor._make(source._data)

            def backward(grad, position=position):
                return (self._fire(position, grad),)

            args[position] = record(out, "BackwardHookFunction", (source,), backward)
        return tuple(args)

    def wrap_outputs(self, output):
        outputs = list(output) if isinstance(output, (tuple, list)) else [output]
        self.grad_output = [None] * len(outputs)
        for index, value in enumerate(outputs):
            if isinstance(value, Tensor) and value.requires_grad:
                wrapped = Tensor._make(value._data)
                self.first_output = index if self.first_output is None else self.first_output

                def backward(grad, index=index):
                    self.grad_output[index] = Tensor._make(grad)
                    if not self.input_positions and index == self.first_output:
                        self._fire(None, None)  # no input gradient will fire the hooks
                    return (grad,)

                outputs[index] = record(wrapped, "BackwardHookFunction", (value,), backward)
        if isinstance(output, tuple):
            return tuple(outputs)
        if isinstance(output, list):
            return outputs
        return outputs[0]

    def _fire(self, position, grad):
        grad_input = [None] * self.count
        if position is not None:
            grad_input[position] = Tensor._make(grad)
        else:
            warnings.warn("Full backward hook is firing when gradients are computed with respect to "
                          "module outputs since no inputs require gradients.", stacklevel=2)
        for hook in list(self.module._hooks.backward.values()):
            result = hook(self.module, tuple(grad_input), tuple(self.grad_output))
            if result is not None:
                result = _as_args(result)
                if len(result) != self.count:
                    raise RuntimeError(f"backward hook returned {len(result)} gradients; the module "
                                       f"has {self.count} inputs")
                grad_input = list(result)
        if position is None:
            return None
        chosen = grad_input[position]
        return None if chosen is None else (chosen._data if isinstance(chosen, Tensor) else chosen)
