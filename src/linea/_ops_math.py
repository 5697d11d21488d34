"""Elementwise and matrix primitives, each forward next to its gradient rule.

Binary ops broadcast like NumPy; ``unbroadcast`` (the one place that does it)
sums a gradient back to the shape of the input it belongs to. Dtypes follow
PyTorch: a float tensor keeps its dtype against Python numbers and integer
tensors, so ``float32 * 2.0`` and ``float32 + int64`` stay float32.
"""
from __future__ import annotations

import operator

from linea._autograd import (RELU_NODE, SIGMOID_NODE, TANH_NODE, grad_enabled, needs_grad,
                             record)
from linea.backend import blas_ready, kind_of, namespace_of, quiet, space_of, xp
from linea._dtype import is_floating
from linea._errors import ShapeError
from linea._tensor import Tensor
from linea._autocast import cast_for

_make = Tensor._make
_maximum = xp.maximum
_where = xp.where
_FLOAT32 = xp.dtype(xp.float32)
_ndarray = xp.ndarray



def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``."""
    if grad.shape == shape:
        return grad
    space = space_of(grad)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = space.sum(grad, axis=tuple(range(extra)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = space.sum(grad, axis=stretched, keepdims=True)
    return grad


def _operand(value, partner):
    """The array for one side of a binary op; ``partner`` is the other side's array."""
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, (bool, int, float)):
        if isinstance(value, float) and kind_of(partner) in "biu":
            space = space_of(partner)
            return space.asarray(value, dtype=space.float32)
        return value  # NumPy keeps the array's dtype against a Python scalar
    from linea._creation import as_array

    return as_array(value)


def _promote(left, right):
    """Cast so that the result dtype is PyTorch's, where the array library's own rules differ.

    Any library: a float array meets an integer/bool one → the float dtype; a 0-d array
    does not widen a dimensioned one. Libraries other than NumPy (whose standard rules
    refuse mixed kinds) also get the wider of two same-kind dtypes; NumPy promotes those itself.
    """
    if not (hasattr(left, "dtype") and hasattr(right, "dtype")):
        return left, right
    numpy = isinstance(left, (_ndarray, xp.generic)) and isinstance(right, (_ndarray, xp.generic))
    space = xp if numpy else namespace_of(left, right)  # two libraries: an error naming both
    if left.dtype == right.dtype:
        return left, right

    def cast(array, dtype):
        return array.astype(dtype) if numpy else space.astype(array, dtype)

    left_float, right_float = is_floating(left.dtype), is_floating(right.dtype)
    if left_float != right_float:  # an integer or bool array meets a float one
        return (left, cast(right, left.dtype)) if left_float else (cast(left, right.dtype), right)
    if left.ndim == 0 and right.ndim > 0:  # a 0-d tensor does not widen a dimensioned one
        return cast(left, right.dtype), right
    if right.ndim == 0 and left.ndim > 0:
        return left, cast(right, left.dtype)
    if numpy:
        return left, right
    wider = space.result_type(left.dtype, right.dtype)
    return cast(left, wider), cast(right, wider)


def _binary(name, compute, gradients, a, b, saves=None):
    """Apply ``compute`` to two operands; ``gradients(g, x, y, out)`` gives (dx, dy).

    ``saves(x, y, out, needs_x, needs_y)`` names the arrays the gradients read (what
    PyTorch saves for the same op), checked for in-place writes before backward.
    """
    a_is_tensor, b_is_tensor = isinstance(a, Tensor), isinstance(b, Tensor)
    x = a._data if a_is_tensor else _operand(a, b._data)
    y = b._data if b_is_tensor else _operand(b, a._data)
    if type(x) is xp.ndarray and type(y) is xp.ndarray:
        if x.dtype != y.dtype:
            x, y = _promote(x, y)
    elif hasattr(x, "dtype") and hasattr(y, "dtype"):
        x, y = _promote(x, y)
    out = compute(x, y)
    if type(out) is not _ndarray and isinstance(out, xp.generic):
        out = xp.asarray(out)
    result = _make(out)
    if (a_is_tensor and a._requires_grad or b_is_tensor and b._requires_grad) and \
            needs_grad(a if a_is_tensor else None, b if b_is_tensor else None):
        needs_a = a_is_tensor and a._requires_grad
        needs_b = b_is_tensor and b._requires_grad
        x_shape = x.shape if hasattr(x, "shape") else ()
        y_shape = y.shape if hasattr(y, "shape") else ()

        def backward(grad):
            grad_x, grad_y = gradients(grad, x, y, out, needs_a, needs_b)
            return (
                unbroadcast(grad_x, x_shape) if needs_a else None,
                unbroadcast(grad_y, y_shape) if needs_b else None,
            )

        saved = () if saves is None else tuple(
            array for array in saves(x, y, out, needs_a, needs_b) if hasattr(array, "shape"))
        record(result, name, (a if a_is_tensor else None, b if b_is_tensor else None), backward,
               saved)
    return result


def _add_grads(grad, x, y, out, needs_x, needs_y):
    return grad, grad


def _sub_grads(grad, x, y, out, needs_x, needs_y):
    return grad, (-grad if needs_y else None)


def _mul_grads(grad, x, y, out, needs_x, needs_y):
    return (grad * y if needs_x else None), (grad * x if needs_y else None)


def _mul_saves(x, y, out, needs_x, needs_y):
    return (y,) * needs_x + (x,) * needs_y


def _div_grads(grad, x, y, out, needs_x, needs_y):
    return (grad / y if needs_x else None), (-grad * x / (y * y) if needs_y else None)


def _div_saves(x, y, out, needs_x, needs_y):
    return (x, y) if needs_y else (y,)


def _pow_saves(x, y, out, needs_x, needs_y):
    return (x, y, out) if needs_y else (x, y)


def _both_saved(x, y, out, needs_x, needs_y):
    return x, y


def _true_divide(x, y):
    if type(x) is not _ndarray and hasattr(x, "dtype") and kind_of(x) in "biu" and \
            (not hasattr(y, "dtype") or kind_of(y) in "biu"):  # PyTorch: int / int is float32
        space = namespace_of(x)
        return space.astype(x, space.float32) / (space.astype(y, space.float32)
                                                 if hasattr(y, "dtype") else y)
    out = x / y
    if type(out) is _ndarray and out.dtype == xp.float64 and xp.result_type(x, y).kind in "biu":
        out = out.astype(_FLOAT32)  # PyTorch: int / int gives the default float dtype
    return out


def _pow_grads(grad, x, y, out, needs_x, needs_y):
    grad_x = grad * y * x ** (y - 1) if needs_x else None
    grad_y = None
    if needs_y:
        space = space_of(out)
        if space is xp:
            grad_y = grad * out * xp.log(xp.where(x > 0, x, 1)) * (x > 0)
        else:  # the standard has no bool × float: the mask as a number
            positive = space.asarray(x, dtype=out.dtype) > 0 if not hasattr(x, "shape") else x > 0
            base = space.where(positive, space.asarray(x, dtype=out.dtype), space.asarray(1, dtype=out.dtype))
            grad_y = grad * out * space.log(base) * space.astype(positive, out.dtype)
    return grad_x, grad_y


@quiet
def add(a, b):
    return _binary("Add", operator.add, _add_grads, a, b)


@quiet
def sub(a, b):
    return _binary("Sub", operator.sub, _sub_grads, a, b)


@quiet
def mul(a, b):
    return _binary("Mul", operator.mul, _mul_grads, a, b, _mul_saves)


@quiet
def div(a, b):
    return _binary("Div", _true_divide, _div_grads, a, b, _div_saves)


@quiet
def pow(a, b):  # noqa: A001 - PyTorch's name
    return _binary("Pow", operator.pow, _pow_grads, a, b, _pow_saves)


def _max_grads(grad, x, y, out, needs_x, needs_y):
    # Where the two are equal the gradient is split evenly, as PyTorch does.
    space = space_of(grad)
    x_wins = space.astype(x > y, grad.dtype) + space.astype(x == y, grad.dtype) * 0.5
    return (grad * x_wins if needs_x else None), (grad * (1 - x_wins) if needs_y else None)


def _min_grads(grad, x, y, out, needs_x, needs_y):
    space = space_of(grad)
    x_wins = space.astype(x < y, grad.dtype) + space.astype(x == y, grad.dtype) * 0.5
    return (grad * x_wins if needs_x else None), (grad * (1 - x_wins) if needs_y else None)


@quiet
def maximum(a, b):
    return _binary("Maximum", lambda x, y: space_of(x).maximum(x, y), _max_grads, a, b, _both_saved)


@quiet
def minimum(a, b):
    return _binary("Minimum", lambda x, y: space_of(x).minimum(x, y), _min_grads, a, b, _both_saved)


@quiet
def compare(numpy_compare, a, b):
    """An elementwise comparison; the result is a bool tensor outside the graph."""
    if not isinstance(a, Tensor):
        return NotImplemented
    other = b._data if isinstance(b, Tensor) else _operand(b, a._data)
    try:
        return _make(xp.asarray(numpy_compare(a._data, other)))
    except ValueError:
        raise ShapeError(
            f"cannot compare tensors of shapes {a.shape} and {xp.shape(other)}"
        ) from None


def _unary(name, input_tensor, out, gradient, saved=()):
    """Wrap ``out``; ``gradient(grad)`` gives the input's gradient, reading the arrays ``saved``."""
    result = _make(out)
    if input_tensor._requires_grad and needs_grad(input_tensor):
        record(result, name, (input_tensor,), lambda grad: (gradient(grad),), saved)
    return result


def _float_data(tensor: Tensor):
    data = tensor._data
    if kind_of(data) in "biu":  # PyTorch computes exp/log/... of integers in float32
        space = space_of(data)
        return space.astype(data, space.float32)
    return data


@quiet
def neg(a: Tensor) -> Tensor:
    return _unary("Neg", a, -a._data, lambda grad: -grad)


@quiet
def exp(a: Tensor) -> Tensor:
    x = _float_data(a)
    out = space_of(x).exp(x)
    return _unary("Exp", a, out, lambda grad: grad * out, (out,))


@quiet
def log(a: Tensor) -> Tensor:
    x = _float_data(a)
    return _unary("Log", a, space_of(x).log(x), lambda grad: grad / x, (x,))


@quiet
def sqrt(a: Tensor) -> Tensor:
    x = _float_data(a)
    out = space_of(x).sqrt(x)
    return _unary("Sqrt", a, out, lambda grad: grad / (2 * out), (out,))


@quiet
def tanh(a: Tensor) -> Tensor:
    x = _float_data(a)
    out = space_of(x).tanh(x)
    return _unary(TANH_NODE, a, out, lambda grad: tanh_gradient(grad, out), (out,))


def stable_sigmoid(x):
    """1 / (1 + e^-x) of an array without overflow: e^x/(1+e^x) below zero (exp(-|x|) ≤ 1)."""
    space = space_of(x)
    e = space.exp(-space.abs(x))
    return space.where(x >= 0, 1 / (1 + e), e / (1 + e))


def stable_softplus(x):
    """log(1 + e^x) of an array without overflow: max(x, 0) + log1p(e^-|x|)."""
    space = space_of(x)
    return space.maximum(x, 0) + space.log1p(space.exp(-space.abs(x)))


@quiet
def sigmoid(a: Tensor) -> Tensor:
    out = stable_sigmoid(_float_data(a))
    return _unary(SIGMOID_NODE, a, out, lambda grad: sigmoid_gradient(grad, out), (out,))


def relu_gradient(grad, out):
    """ReLU's rule on its result: 0 where out ≤ 0, the gradient elsewhere (eager and compiled)."""
    if type(out) is _ndarray:
        return _where(out <= 0, 0, grad)
    space = namespace_of(out)
    return space.where(out <= 0, space.asarray(0, dtype=grad.dtype), grad)


def tanh_gradient(grad, out):
    return grad * (1 - out * out)


def sigmoid_gradient(grad, out):
    return grad * out * (1 - out)


#: The activations whose gradient reads only their result: name → rule(grad, out).
RESULT_GRADIENTS = {"relu": relu_gradient, "tanh": tanh_gradient, "sigmoid": sigmoid_gradient}


@quiet
def relu(a: Tensor) -> Tensor:
    """max(x, 0); the gradient is 0 where the result is ≤ 0 and passes through elsewhere.

    As in PyTorch, the rule reads the result (so a NaN input passes its gradient on)
    and an in-place write to the input after the forward pass is allowed.
    """
    x = a._data
    if type(x) is _ndarray:
        out = _maximum(x, 0)
        result = _make(out)
        if a._requires_grad and grad_enabled():  # needs_grad for one input, written out
            record(result, RELU_NODE, (a,), lambda grad: (relu_gradient(grad, out),), (out,))
        return result
    space = namespace_of(x)
    out = space.maximum(x, 0)
    result = _make(out)
    if a._requires_grad and grad_enabled():
        record(result, RELU_NODE, (a,), lambda grad: (relu_gradient(grad, out),), (out,))
    return result


@quiet
def abs(a: Tensor) -> Tensor:  # noqa: A001 - PyTorch's name
    x = a._data
    space = space_of(x)
    return _unary("Abs", a, space.abs(x), lambda grad: grad * space.sign(x), (x,))


@quiet
def clamp(a: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    x = a._data
    low = min._data if isinstance(min, Tensor) else min
    high = max._data if isinstance(max, Tensor) else max
    space = space_of(x)
    out = space.clip(x, low, high)
    if out.dtype != x.dtype and kind_of(x) == "f":
        out = space.astype(out, x.dtype)
    inside = space.ones(x.shape, dtype=space.bool)
    if low is not None:
        inside &= x >= low
    if high is not None:
        inside &= x <= high
    mask = inside if space is xp else space.astype(inside, x.dtype)
    saved = (x,) + tuple(bound for bound in (low, high) if hasattr(bound, "shape"))
    return _unary("Clamp", a, out, lambda grad: grad * mask, saved)


def _as_matrix_operand(value):
    if isinstance(value, Tensor):
        return value
    from linea._creation import tensor

    return tensor(value)


@quiet
def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules for 1-D and batched operands."""
    a, b = cast_for("matmul", _as_matrix_operand(a), _as_matrix_operand(b))
    x, y = a._data, b._data
    if type(x) is _ndarray and x.dtype == y.dtype and x.dtype.itemsize == 2 and x.dtype.kind in "fV":
        # float16/bfloat16 have no BLAS: float32 BLAS on the widened values, rounded once.
        return _matmul_tensors(a.float(), b.float()).to(a.dtype)
    return _matmul_tensors(a, b)


def _matmul_tensors(a: Tensor, b: Tensor) -> Tensor:
    x, y = a._data, b._data
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"matmul needs operands of at least 1 dimension, got {a.shape} and {b.shape}")
    if x.shape[-1] != y.shape[-2 if y.ndim > 1 else 0]:
        raise ShapeError(
            f"matmul shapes cannot be multiplied: {tuple(x.shape)} @ {tuple(y.shape)} "
            f"(the last dimension of the first, {x.shape[-1]}, must equal the "
            f"{'second-to-last' if y.ndim > 1 else 'only'} dimension of the second)"
        )
    if x.dtype != y.dtype:
        x, y = _promote(x, y)
    out = xp.asarray(xp.matmul(x, y)) if type(x) is _ndarray else namespace_of(x, y).matmul(x, y)
    result = _make(out)
    if needs_grad(a, b):
        needs_a, needs_b = a._requires_grad, b._requires_grad

        def backward(grad):
            if x.ndim == 1 and y.ndim == 1:  # a dot product
                return (grad * y if needs_a else None), (grad * x if needs_b else None)
            # Promote 1-D operands to matrices, differentiate, then drop the added axes.
            x2 = x[None, :] if x.ndim == 1 else x
            y2 = y[:, None] if y.ndim == 1 else y
            space = space_of(grad)
            g2 = blas_ready(grad)
            if x.ndim == 1:
                g2 = space.expand_dims(g2, axis=-2)
            if y.ndim == 1:
                g2 = space.expand_dims(g2, axis=-1)
            grad_x = grad_y = None
            if needs_a:
                grad_x = unbroadcast(space.matmul(g2, space.matrix_transpose(y2)), x2.shape)
                grad_x = space.reshape(grad_x, x.shape)
            if needs_b:
                grad_y = unbroadcast(space.matmul(space.matrix_transpose(x2), g2), y2.shape)
                grad_y = space.reshape(grad_y, y.shape)
            return grad_x, grad_y

        record(result, "Mm", (a, b), backward, (y,) * needs_a + (x,) * needs_b)
    return result
