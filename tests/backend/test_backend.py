"""The backend seam: namespaces taken from the arrays, and the kernels the standard lacks.

Each named kernel's portable fallback (written in the array API standard) is checked
against its NumPy implementation on ``array_api_strict`` arrays.
"""
import warnings

import numpy as np
import pytest

import linea
from linea import backend

xps = pytest.importorskip("array_api_strict", reason="the strict namespace is a test extra")
pytest.importorskip("array_api_compat", reason="namespace lookup uses array-api-compat")


def strict(array):
    return xps.asarray(np.asarray(array))


def host(array):
    return np.asarray(array)


def test_numpy_arrays_keep_numpy_itself():
    assert backend.namespace_of(np.ones(2), None, 3.0) is np
    assert backend.namespace_of() is np


def test_other_arrays_give_their_array_api_namespace():
    assert backend.namespace_of(strict([1.0])).__name__ == "array_api_strict"
    assert "array_api_strict" in backend.namespaces()


def test_two_libraries_in_one_op_are_refused_naming_both():
    with pytest.raises(RuntimeError, match="numpy on cpu and array_api_strict"):
        backend.namespace_of(np.ones(2), strict([1.0, 2.0]))
    a, b = linea.ones(2), linea.Tensor._make(strict([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="same device and array library"):
        a + b


def test_dtypes_resolve_by_name_in_any_namespace():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = linea.Tensor._make(strict(np.ones(2, np.float32)))
        assert t.dtype == linea.float32 and str(t.device) == "cpu"
    assert linea.float64.in_namespace(xps) == xps.float64
    assert linea.float64.in_namespace(np) == np.float64


def test_scatter_add_accumulates_repeats_like_numpy():
    index = np.array([0, 2, 0, 1])
    values = np.arange(12, dtype=np.float64).reshape(4, 3)
    expected = np.zeros((3, 3))
    backend.scatter_add(expected, index, values)
    target = strict(np.zeros((3, 3)))
    backend.scatter_add(target, index, strict(values))
    np.testing.assert_array_equal(host(target), expected)
    assert expected[0].tolist() == [6.0, 8.0, 10.0]


@pytest.mark.parametrize("axis", [0, 1])
def test_take_and_put_along_axis_match_numpy(axis):
    data = np.random.default_rng(0).standard_normal((3, 4))
    indices = np.argmax(data, axis=axis, keepdims=True)
    np.testing.assert_array_equal(host(backend.take_along_axis(strict(data), strict(indices), axis)),
                                  np.take_along_axis(data, indices, axis=axis))
    expected = np.zeros_like(data)
    backend.put_along_axis(expected, indices, 1.0, axis)
    target = strict(np.zeros_like(data))
    backend.put_along_axis(target, strict(indices), strict(np.ones(indices.shape)), axis)
    np.testing.assert_array_equal(host(target), expected)


def test_pad_erf_and_copy_into_match_numpy():
    x = np.random.default_rng(1).standard_normal((2, 3))
    widths = ((1, 0), (2, 1))
    np.testing.assert_array_equal(host(backend.pad(strict(x), widths)), backend.pad(x, widths))
    np.testing.assert_allclose(host(backend.erf(strict(x))), backend.erf(x), rtol=1e-15)
    assert backend.erf(x.astype(np.float32)).dtype == np.float32
    target = strict(np.zeros((2, 3)))
    backend.copy_into(target, strict(x))
    np.testing.assert_array_equal(host(target), x)
    numpy_target = np.zeros((2, 3), np.float32)
    backend.copy_into(numpy_target, x)
    assert numpy_target.dtype == np.float32 and np.allclose(numpy_target, x)


def test_blas_ready_and_writeable():
    read_only = np.ones(3)
    read_only.flags.writeable = False
    assert not backend.is_writeable(read_only) and backend.is_writeable(strict([1.0]))
    assert backend.blas_ready(np.broadcast_to(np.float32(1), (1, 8))).flags.c_contiguous


# ---- the core's primitives on array_api_strict arrays -------------------------------------

def _pair(values, requires_grad=True):
    """The same data as a NumPy-backed and an array_api_strict-backed leaf tensor."""
    array = np.asarray(values, np.float64)
    ours = linea.Tensor._make(array.copy())
    theirs = linea.Tensor._make(strict(array))
    ours.requires_grad_(requires_grad)
    theirs.requires_grad_(requires_grad)
    return ours, theirs


PRIMITIVES = {
    "add": lambda a, b: (a + b * 2.0).sum(),
    "sub-div": lambda a, b: ((a - b) / (b * b + 1.0)).sum(),
    "neg-exp-log": lambda a, b: ((-a).exp() + (b * b + 1.0).log()).sum(),
    "tanh-sigmoid-relu": lambda a, b: (a.tanh() * b.sigmoid() + a.relu()).sum(),
    "matmul-mean": lambda a, b: (a @ b.T).mean(),
    "reshape-sum-dim": lambda a, b: (a.reshape(3, 2) * b.reshape(3, 2)).sum(0).sum(),
    "linear": lambda a, b: linea.nn.functional.linear(a, b, None).sum(),
    "mse": lambda a, b: linea.nn.functional.mse_loss(a, b),
}


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitives_run_on_array_api_strict_arrays(name):
    rng = np.random.default_rng(3)
    a_np, a_strict = _pair(rng.standard_normal((2, 3)))
    b_np, b_strict = _pair(rng.standard_normal((2, 3)))
    expected = PRIMITIVES[name](a_np, b_np)
    got = PRIMITIVES[name](a_strict, b_strict)
    assert type(got._data).__module__.startswith("array_api_strict"), "the result left its namespace"
    np.testing.assert_allclose(host(got._data), expected._data, rtol=1e-12)
    expected.backward()
    got.backward()
    for ours, theirs in ((a_np, a_strict), (b_np, b_strict)):
        assert type(theirs.grad._data).__module__.startswith("array_api_strict")
        np.testing.assert_allclose(host(theirs.grad._data), ours.grad._data, rtol=1e-12)


def _into_strict(module):
    """The module's parameters moved into the strict namespace (a test-side .to())."""
    for parameter in module.parameters():
        parameter._data = strict(parameter._data)
    return module


@pytest.mark.parametrize("optimizer", ["sgd", "sgd-momentum", "adam"])
def test_training_steps_run_on_array_api_strict_arrays(optimizer):
    def build():
        linea.manual_seed(0)
        return linea.nn.Sequential(linea.nn.Linear(3, 5), linea.nn.ReLU(), linea.nn.Linear(5, 2))

    def make_optimizer(model):
        if optimizer == "adam":
            return linea.optim.Adam(model.parameters(), lr=0.05)
        return linea.optim.SGD(model.parameters(), lr=0.1, momentum=0.9 if "momentum" in optimizer else 0)

    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)
    ours, theirs = build(), _into_strict(build())
    runs = []
    for model, inputs, targets in ((ours, x, y), (theirs, strict(x), strict(y))):
        step = make_optimizer(model)
        losses = []
        for _ in range(4):
            step.zero_grad()
            loss = linea.nn.functional.mse_loss(model(linea.Tensor._make(inputs)),
                                                linea.Tensor._make(targets))
            loss.backward()
            step.step()
            losses.append(float(host(loss._data)))
        runs.append((losses, [host(p._data) for p in model.parameters()]))
    assert all(type(p._data).__module__.startswith("array_api_strict") for p in theirs.parameters())
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-6)
    for got, expected in zip(runs[1][1], runs[0][1]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
