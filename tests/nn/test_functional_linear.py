"""nn.functional.linear: y = x Wᵀ + b on the last dimension of any rank."""
import numpy as np
import pytest

import linea
import linea.nn.functional as F
from _helpers import assert_close, gradcheck

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("input_shape", [(4,), (5, 4), (2, 3, 4), (2, 2, 3, 4)], ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_closed_form(input_shape, with_bias):
    x = RNG.standard_normal(input_shape)
    w = RNG.standard_normal((6, 4))
    b = RNG.standard_normal(6) if with_bias else None
    out = F.linear(linea.tensor(x), linea.tensor(w), None if b is None else linea.tensor(b))
    expected = x @ w.T + (0 if b is None else b)
    assert out.shape == input_shape[:-1] + (6,)
    assert_close(out, expected)


@pytest.mark.parametrize("input_shape", [(4,), (5, 4), (1, 4), (2, 3, 4)], ids=str)
def test_gradients_match_finite_differences(input_shape):
    x, w, b = RNG.standard_normal(input_shape), RNG.standard_normal((3, 4)), RNG.standard_normal(3)
    gradcheck(F.linear, x, w, b)
    gradcheck(lambda x, w: F.linear(x, w), x, w)


def test_fused_rule_equals_composed_ops():
    x = linea.tensor(RNG.standard_normal((2, 5, 4)), requires_grad=True)
    w = linea.tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    b = linea.tensor(RNG.standard_normal(3), requires_grad=True)
    weights = linea.tensor(RNG.standard_normal((2, 5, 3)))
    (F.linear(x, w, b) * weights).sum().backward()
    fused = [t.grad.numpy().copy() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    ((x @ w.T + b) * weights).sum().backward()
    for tensor, grad in zip((x, w, b), fused):
        assert_close(grad, tensor.grad.numpy())


def test_zero_size_dimensions():
    w, b = linea.ones(3, 0), linea.tensor([1.0, 2.0, 3.0])
    assert F.linear(linea.ones(5, 0), w, b).tolist() == [[1.0, 2.0, 3.0]] * 5
    empty = F.linear(linea.ones(0, 4), linea.ones(3, 4), linea.zeros(3))
    assert empty.shape == (0, 3)
    x = linea.ones(0, 4, requires_grad=True)
    w = linea.ones(3, 4, requires_grad=True)
    F.linear(x, w).sum().backward()
    assert x.grad.shape == (0, 4) and w.grad.tolist() == [[0.0] * 4] * 3


def test_raw_numpy_input_is_converted_to_the_weight_dtype():
    w = linea.ones(2, 3)
    out = F.linear(np.ones((4, 3), np.float64), w)
    assert out.dtype == linea.float32 and out.shape == (4, 2)
    assert F.linear([1, 2, 3], w).tolist() == [6.0, 6.0]


def test_wrong_feature_count_is_a_shape_error():
    with pytest.raises(linea.ShapeError, match=r"\(5, 4\).*in_features=3"):
        F.linear(linea.ones(5, 4), linea.ones(2, 3))


def test_shape_error_is_also_value_and_runtime_error():
    with pytest.raises(ValueError):
        F.linear(linea.ones(5, 4), linea.ones(2, 3))
    with pytest.raises(RuntimeError):
        F.linear(linea.ones(5, 4), linea.ones(2, 3))


def test_bad_bias_shape():
    with pytest.raises(linea.ShapeError, match=r"bias of shape \(2,\)"):
        F.linear(linea.ones(5, 3), linea.ones(2, 3), linea.ones(3))


def test_scalar_input_is_rejected():
    with pytest.raises(linea.ShapeError):
        F.linear(linea.tensor(1.0), linea.ones(2, 1))


@pytest.mark.parametrize("input_shape", [(4,), (1, 4), (5, 4), (2, 3, 4)], ids=str)
def test_dense_is_linear_with_the_kernel_transposed(input_shape):
    x, k, b = RNG.standard_normal(input_shape), RNG.standard_normal((4, 3)), RNG.standard_normal(3)
    assert_close(F.dense(linea.tensor(x), linea.tensor(k), linea.tensor(b)), x @ k + b)
    assert_close(F.dense(linea.tensor(x), linea.tensor(k)), F.linear(linea.tensor(x), linea.tensor(k.T.copy())).numpy())
    gradcheck(F.dense, x, k, b)


def test_dense_shape_error_names_the_kernel():
    with pytest.raises(linea.ShapeError, match=r"dense\(\).*\(4, 3\).*in_features=4"):
        F.dense(linea.ones(2, 3), linea.ones(4, 3))
