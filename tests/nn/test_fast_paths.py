"""The fast paths keep PyTorch's semantics: layouts, gradients, aliasing and the seed."""
import numpy as np
import pytest

import linea
from linea import nn
from _helpers import assert_close


def test_linear_weight_is_column_major_with_pytorch_shape():
    layer = nn.Linear(5, 3)
    assert layer.weight.shape == (3, 5) and layer.weight.numpy().flags.f_contiguous
    assert layer.weight.numpy().T.flags.c_contiguous


def test_seeded_initial_values_do_not_depend_on_the_layout():
    linea.manual_seed(0)
    column_major = nn.Linear(5, 3).weight.numpy().copy()
    linea.manual_seed(0)
    c_order = np.empty((3, 5), np.float32)
    layer = nn.Linear(5, 3)
    c_order[...] = layer.weight.numpy()
    assert np.array_equal(column_major, c_order)


def test_weight_gradients_share_the_weights_layout_and_are_owned():
    for batch in (1, 7):
        layer = nn.Linear(5, 3)
        layer(linea.randn(batch, 5)).sum().backward()
        grad = layer.weight.grad.numpy()
        assert grad.flags.f_contiguous and grad.flags.writeable
        assert not np.shares_memory(grad, layer.weight.numpy())


def test_batch_one_weight_gradient_is_the_outer_product():
    layer = nn.Linear(4, 3, dtype=linea.float64)
    x = linea.tensor(np.random.default_rng(0).standard_normal((1, 4)))
    g = np.random.default_rng(1).standard_normal((1, 3))
    layer(x).backward(linea.tensor(g))
    assert_close(layer.weight.grad, np.outer(g[0], x.numpy()[0]))


@pytest.mark.numpy_only(reason="read-only NumPy arrays: NumPy's memory model")
def test_backward_does_not_keep_or_mutate_the_callers_gradient():
    a = linea.ones(3, requires_grad=True)
    seed = np.ones(3, np.float32)
    (a * 1).backward(seed)
    a.grad._data *= 5
    assert seed.tolist() == [1.0, 1.0, 1.0]
    b = linea.ones(3, requires_grad=True)
    b.backward(seed)  # a leaf seeded directly must not hold the caller's array
    b.grad._data *= 7
    assert seed.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.numpy_only(reason="NumPy views and owners: NumPy's memory model")
def test_views_of_one_gradient_are_not_shared_between_leaves():
    a = linea.ones(2, 2, requires_grad=True)
    b = linea.ones(2, 2, requires_grad=True)
    (b.T + a).sum().backward()
    a.grad._data *= 10
    assert b.grad.numpy().tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_sequential_still_honours_a_custom_call():
    class Doubling(nn.Module):
        def forward(self, x):
            return x

        def __call__(self, x):
            return x * 2

    assert nn.Sequential(Doubling())(linea.ones(2)).tolist() == [2.0, 2.0]


def test_lazy_linear_inside_sequential_materialises_once():
    model = nn.Sequential(nn.LazyLinear(3))
    model(linea.ones(1, 4))
    weight = model[0].weight.numpy().copy()
    model(linea.ones(1, 4))
    assert np.array_equal(model[0].weight.numpy(), weight)
