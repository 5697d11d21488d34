"""Test helpers: tolerances and a finite-difference gradcheck."""
from __future__ import annotations

import numpy as np

import linea

#: The relative tolerance R of the issues: rtol = R, atol = R·max|expected|.
TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def assert_close(actual, expected, R=None):
    """assert_allclose with rtol = R and atol = R·max|expected| (R chosen by dtype)."""
    actual = np.asarray(getattr(actual, "_data", actual))
    expected = np.asarray(expected)
    if R is None:
        R = TOLERANCE.get(np.dtype(actual.dtype), 1e-5)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=R, atol=R * scale)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)


def numerical_grads(function, arrays, eps=1e-6):
    """Central differences of sum(function(*arrays) * weights) for each array."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    out = np.asarray(function(*arrays))
    weights = np.random.default_rng(0).standard_normal(out.shape)
    grads = []
    for array in arrays:
        grad = np.zeros_like(array)
        it = np.nditer(array, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            old = array[i]
            array[i] = old + eps
            plus = np.sum(np.asarray(function(*arrays)) * weights)
            array[i] = old - eps
            minus = np.sum(np.asarray(function(*arrays)) * weights)
            array[i] = old
            grad[i] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads, weights


def gradcheck(op, *arrays, eps=1e-6, tol=1e-6):
    """Check linea's backward of ``op`` (taking tensors) against finite differences."""
    def on_arrays(*raw):
        with linea.no_grad():
            return op(*[linea.tensor(a) for a in raw])._data

    expected, weights = numerical_grads(on_arrays, arrays, eps)
    tensors = [linea.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = op(*tensors)
    (out * linea.tensor(weights)).sum().backward()
    for tensor, grad in zip(tensors, expected):
        assert tensor.grad is not None, "no gradient reached an input"
        assert tensor.grad.shape == tensor.shape
        np.testing.assert_allclose(tensor.grad._data, grad, rtol=tol, atol=tol)


#: Source of ``peak()`` for scripts run in a fresh subprocess: the process's own peak resident
#: bytes, from /proc/self/status VmHWM (``ru_maxrss`` is inherited across fork+exec on Linux).
PEAK_SOURCE = '''
def peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
'''


def train_demo_model(epochs: int, seed: int = 0):
    """What ``linea demo --seed seed`` trains, for ``epochs``: (model, x_test, y_test)."""
    from linea import _demo

    linea.manual_seed(seed)
    x_train, y_train, x_test, y_test = _demo.split_digits(seed)
    model = _demo.build_model()
    optimizer = linea.optim.Adam(model.parameters(), lr=1e-3)
    for order in _demo.batch_orders(len(y_train), epochs, seed + 1):
        _demo.train_epoch(model, optimizer, x_train, y_train, order, 32)
    return model, x_test, y_test
