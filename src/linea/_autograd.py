"""The autograd tape: grad mode, graph nodes and the backward walk.

Every differentiable op computes its result with the array library and, only
when grad mode is on and some input requires a gradient, attaches a ``Node``
holding a closure that maps the output's gradient to its inputs' gradients.
Under ``no_grad`` no node, closure or saved array is created at all.
"""
from __future__ import annotations

import contextvars
import functools
import inspect

from linea.backend import copy_of, is_writeable, namespace_of, owner, quiet
from linea._versions import _LATEST, check_saved

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "Node", "run_backward",
           "needs_grad", "record", "grad_enabled", "LINEAR_NODE", "RELU_NODE", "TANH_NODE",
           "SIGMOID_NODE", "RESHAPE_NODE"]

#: Grad mode, per thread as in PyTorch: a thread that was not started inside a copied
#: context starts with recording on. A ContextVar rather than a ``threading.local``
#: because reading it is ~15 ns against ~50 ns, and Linear's forward reads it on every call.
_GRAD_ENABLED = contextvars.ContextVar("linea_grad_enabled", default=True)
#: ``grad_enabled()`` is the fast read of grad mode for the hottest op (Linear's forward).
grad_enabled = _GRAD_ENABLED.get
_set_grad = _GRAD_ENABLED.set


#: While ``linea.compile`` traces a forward: the list of tensor reads that make its ops depend
#: on the data (``item()``, ``bool()``, ``numpy()``, …), else None.
_TRACE_READS = contextvars.ContextVar("linea_trace_reads", default=None)


def note_data_read(what: str) -> None:
    """Called by the Tensor methods that hand values to Python: a trace sees the dependence."""
    reads = _TRACE_READS.get()
    if reads is not None:
        reads.append(what)


def is_grad_enabled() -> bool:
    """True when operations record the graph for ``backward()`` (in this thread)."""
    return _GRAD_ENABLED.get()


def needs_grad(*inputs) -> bool:
    """Whether an op on ``inputs`` is recorded: grad mode on and some input requiring grad.

    The one reader of grad mode for ops; with ``record`` it is the one place where
    recording happens, so cross-cutting concerns (autocast, version counters) hook here.
    """
    if grad_enabled():
        for tensor in inputs:
            if tensor is not None and tensor._requires_grad:
                return True
    return False


#: Node names that code outside the ops reads (``linea.compile``'s tracer plans these):
#: the ops record them under these constants, and readers compare with the same ones.
LINEAR_NODE, RELU_NODE, TANH_NODE, SIGMOID_NODE, RESHAPE_NODE = (
    "Linear", "Relu", "Tanh", "Sigmoid", "Reshape")


def record(result, name: str, inputs, backward, saved=()):
    """Attach to ``result`` the node whose ``backward(grad)`` gives one gradient per input.

    ``saved`` holds every array ``backward`` reads (inputs or the result): an in-place
    write to one of them before ``backward()`` is an error, as in PyTorch. The one
    builder of graph nodes; call it only where ``needs_grad`` said so.
    """
    result._requires_grad = True
    result.grad_fn = Node(name, tuple(inputs), backward, saved)
    return result


class _GradMode:
    """Context manager and decorator that sets grad mode and restores it after.

    Like PyTorch's, an instance remembers one previous mode: use a fresh instance
    per ``with`` (``with linea.no_grad():``), which is also what makes it cheap.
    """

    mode = True
    _previous = True

    def __enter__(self):
        self._previous = grad_enabled()
        _set_grad(self.mode)
        return self

    def __exit__(self, *exc_info) -> None:
        _set_grad(self._previous)

    def __call__(self, function):
        return decorate_with(self.__class__, function)


def decorate_with(make_context, function):
    """``function`` run inside a fresh ``make_context()`` on each call.

    A generator function gets the mode while its body runs, and only then, as with
    PyTorch's decorators: each resumption (``next``, ``send``, ``throw``, ``close``)
    enters a fresh context and leaves it before the value is handed back, so the
    caller's own mode holds at every ``yield`` and the body's holds inside, whichever
    thread resumes it.
    """
    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def generator_in_mode(*args, **kwargs):
            with make_context():
                generator = function(*args, **kwargs)
            return (yield from _resumed_in(make_context, generator))

        return generator_in_mode

    @functools.wraps(function)
    def in_mode(*args, **kwargs):
        with make_context():
            return function(*args, **kwargs)

    return in_mode


def _resumed_in(make_context, generator):
    """Drive ``generator``, each step of it inside a fresh ``make_context()``."""
    try:
        with make_context():
            value = generator.send(None)
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                with make_context():
                    generator.close()
                raise
            except BaseException as error:
                with make_context():
                    value = generator.throw(error)
            else:
                with make_context():
                    value = generator.send(sent)
    except StopIteration as stop:
        return stop.value


class no_grad(_GradMode):
    """Disable graph recording: ``with linea.no_grad(): ...`` or ``@linea.no_grad()``."""

    mode = False


class enable_grad(_GradMode):
    """Re-enable graph recording inside a ``no_grad`` block."""

    mode = True


class inference_mode(_GradMode):
    """``torch.inference_mode``: no graph recording (``inference_mode(False)`` changes nothing).

    linea has no separate inference tensors: this is ``no_grad`` under PyTorch's name, as
    a context manager (``with linea.inference_mode():``) or a decorator.
    """

    def __init__(self, mode: bool = True) -> None:
        self.enabled = bool(mode)

    def __enter__(self):
        self._previous = grad_enabled()
        if self.enabled:
            _set_grad(False)
        return self

    def __call__(self, function):
        enabled = self.enabled
        return decorate_with(lambda: inference_mode(enabled), function)


class set_grad_enabled(_GradMode):
    """Set grad mode to ``mode``; usable as a call, a context manager or a decorator."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous = grad_enabled()
        _set_grad(self.mode)

    def __enter__(self):
        return self

    def __call__(self, function):
        _set_grad(self._previous)
        mode = self.mode
        return decorate_with(lambda: set_grad_enabled(mode), function)


class Node:
    """One recorded operation: its inputs and the rule giving their gradients.

    ``backward(grad)`` returns one gradient array (or None) per input, each of
    that input's shape.
    """

    __slots__ = ("name", "inputs", "backward", "saved", "tick", "output")

    def __init__(self, name: str, inputs: tuple, backward, saved=()) -> None:
        self.name = name
        self.inputs = inputs
        self.backward = backward
        self.saved = saved  # the arrays backward reads: checked for in-place writes
        self.tick = _LATEST[0]
        self.output = None  # the tensor it made, set only when that tensor has hooks or retains grad

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"

    @property
    def next_functions(self) -> tuple:
        return tuple((t.grad_fn if t is not None else None, 0) for t in self.inputs)


def _topological_order(root: Node) -> list[Node]:
    """Nodes reachable from ``root``, each after every node that consumes it.

    An iterative depth-first search: a node is appended once all its inputs'
    nodes are, and the reversed list is a topological order.
    """
    order: list[Node] = []
    visited: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for tensor in node.inputs:
            if tensor is not None:
                child = tensor.grad_fn
                if child is not None and id(child) not in visited:
                    stack.append((child, False))
    order.reverse()
    return order


@quiet
def run_backward(root_tensor, root_grad, retain_graph: bool) -> None:
    """Walk the graph from ``root_tensor`` in reverse, accumulating into ``.grad``."""
    root = root_tensor.grad_fn
    # A leaf's .grad takes the array itself when nothing else can hold its memory:
    # writeable, and its owner (itself, or the array it views) not handed out already.
    handed_out = {id(owner(root_grad))}
    if root is None:  # a leaf that requires grad: its gradient is the seed
        _accumulate_leaf(root_tensor, _hooked(root_tensor, root_grad), handed_out)
        return
    leaves: dict = {}  # id → [tensor, summed gradient]: each leaf's hooks see its total, as in torch
    pending = {id(root): root_grad}
    order = _topological_order(root)
    latest = _LATEST[0]
    for node in order:  # every saved array checked before any gradient is accumulated
        if node.tick < latest and node.saved:  # some write since: was it to a saved array?
            check_saved(node)
    for node in order:
        grad = pending.pop(id(node), None)
        if grad is None:
            continue
        made = node.output
        if made is not None:  # a non-leaf with hooks (which may replace the gradient) or retain_grad
            grad = _hooked(made, grad)
            if made._retains_grad:
                _accumulate_leaf(made, grad, handed_out)
        backward = node.backward
        if backward is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time: its saved values "
                "were freed by the first backward(). Pass retain_graph=True to the first "
                "backward() if you need to call it twice."
            )
        input_grads = backward(grad)
        if not retain_graph:
            node.backward = None
            node.saved = ()
        for tensor, input_grad in zip(node.inputs, input_grads):
            if input_grad is None or tensor is None or not tensor.requires_grad:
                continue
            if input_grad.shape != tensor._data.shape:
                raise AssertionError(
                    f"{node.name}Backward produced a gradient of shape {input_grad.shape} "
                    f"for an input of shape {tensor._data.shape}"
                )
            child = tensor.grad_fn
            if child is None:
                entry = leaves.get(id(tensor))
                if entry is None:
                    leaves[id(tensor)] = [tensor, input_grad]
                else:
                    entry[1] = entry[1] + input_grad
            else:
                key = id(child)
                previous = pending.get(key)
                pending[key] = input_grad if previous is None else previous + input_grad
    for tensor, grad in leaves.values():
        _accumulate_leaf(tensor, _hooked(tensor, grad), handed_out)


def _hooked(tensor, grad):
    """``grad`` after the tensor's hooks, each of which may return a replacement."""
    hooks = tensor._hooks
    if not hooks:
        return grad
    from linea._tensor import Tensor

    for hook in list(hooks.values()):
        result = hook(Tensor._make(grad))
        if result is not None:
            replacement = result._data if isinstance(result, Tensor) else result
            if tuple(replacement.shape) != tuple(grad.shape):
                raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of "
                                   f"shape {tuple(replacement.shape)} for a tensor of shape "
                                   f"{tuple(grad.shape)}")
            grad = replacement
    return grad


def zero_grads(tensors, set_to_none: bool = True) -> None:
    """Clear ``.grad`` of every tensor: to None (PyTorch's default) or to zeros in place."""
    for tensor in tensors:
        if tensor.grad is None:
            continue
        if set_to_none:
            tensor.grad = None
        else:
            tensor.grad._data[...] = 0


def _accumulate_leaf(tensor, grad, handed_out: set) -> None:
    if grad.dtype != tensor._data.dtype:
        grad = grad.astype(tensor._data.dtype) if hasattr(grad, "astype") else \
            namespace_of(grad).astype(grad, tensor._data.dtype)
    if tensor.grad is None:
        from linea._tensor import Tensor

        memory = id(owner(grad))
        if memory in handed_out or not is_writeable(grad):
            grad = copy_of(grad)
            memory = id(grad)
        handed_out.add(memory)
        tensor.grad = Tensor._make(grad)
    else:
        tensor.grad._data = tensor.grad._data + grad
