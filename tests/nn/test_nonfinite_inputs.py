"""No linea op prints a NumPy warning on non-finite input, as PyTorch prints none; the values
are IEEE's (and, for gelu at ±∞, the mathematical limits where PyTorch gives NaN)."""
import warnings

import numpy as np
import pytest

import linea
from linea import nn, optim
import linea.nn.functional as F

pytestmark = pytest.mark.numpy_only(reason="NumPy's own floating-point warnings")

VALUES = np.array([np.inf, -np.inf, np.nan, 0.0, 1.0, -1.0, 1e30, -1e30, 3e38, -3e38, 1e-30],
                  np.float64)


def ops():
    """(name, op on one tensor) for every nn.functional op and the Tensor's arithmetic."""
    for name in F.__all__:
        function = getattr(F, name)
        yield f"F.{name}(x)", function
        yield f"F.{name}(x, x)", lambda x, function=function: function(x, x)
        yield f"F.{name}(row)", lambda x, function=function: function(x.reshape(1, -1))
        yield f"F.{name}(image)", lambda x, function=function: function(
            x[:8].reshape(1, 2, 2, 2), x[:8].reshape(1, 2, 2, 2))
    for name in ("exp", "log", "sqrt", "tanh", "sigmoid", "abs", "neg", "relu", "sum", "mean",
                 "var", "std", "max", "min", "argmax", "logsumexp", "float", "half", "bfloat16",
                 "int", "long", "bool", "double", "softmax", "log_softmax", "norm", "clamp"):
        if hasattr(linea.Tensor, name):
            yield f"Tensor.{name}()", lambda x, name=name: getattr(x, name)()
            yield f"Tensor.{name}(-1)", lambda x, name=name: getattr(x, name)(-1)
    for operator in ("__add__", "__sub__", "__mul__", "__truediv__", "__pow__", "__rtruediv__",
                     "__rpow__", "__rsub__", "__matmul__", "__lt__", "__eq__"):
        for other in ("self", 2.0, 0.0, np.inf):
            yield f"Tensor.{operator}({other})", lambda x, operator=operator, other=other: getattr(
                x, operator)(x if other == "self" else other)
    linear = nn.Linear(len(VALUES), 3)
    yield "nn.Linear", linear


def run(op, dtype):
    x = linea.tensor(VALUES.astype(dtype), requires_grad=True)
    try:
        out = op(x)
    except (TypeError, ValueError, RuntimeError, IndexError, linea.ShapeError, linea.DTypeError):
        return  # an op that does not take this input: its refusal is tested elsewhere
    out = out[0] if isinstance(out, tuple) else out
    if isinstance(out, linea.Tensor) and out.requires_grad:
        out.sum().backward()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_op_prints_a_numpy_warning(dtype):
    leaked = []
    for name, op in ops():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run(op, dtype)
        leaked += [f"{name}: {w.message}" for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not leaked, leaked


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_an_optimizer_step_on_non_finite_gradients_is_silent(make):
    weight = linea.tensor(VALUES.astype(np.float32), requires_grad=True)
    optimizer = make([weight], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (weight * linea.tensor(VALUES.astype(np.float32))).sum().backward()
        optimizer.step()


def test_numpy_code_of_the_user_still_warns():
    F.gelu(linea.tensor([np.inf]))
    with pytest.warns(RuntimeWarning):
        np.array([np.inf]) - np.array([np.inf])


def test_gelu_gives_the_limits_at_infinity():
    for approximate in ("none", "tanh"):
        x = linea.tensor([np.inf, -np.inf, np.nan], requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = F.gelu(x, approximate=approximate)
            out.sum().backward()
        assert out.numpy()[0] == np.inf and out.numpy()[1] == 0 and np.isnan(out.numpy()[2])
        np.testing.assert_array_equal(x.grad.numpy()[:2], [1.0, 0.0])


def test_gelu_on_finite_inputs_is_torchs():
    torch = pytest.importorskip("torch")
    values = np.array([-40.0, -5.0, -1.0, 0.0, 0.5, 3.0, 40.0])
    for approximate in ("none", "tanh"):
        ours = F.gelu(linea.tensor(values), approximate=approximate).numpy()
        theirs = torch.nn.functional.gelu(torch.tensor(values), approximate=approximate).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-300)
