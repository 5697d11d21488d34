"""nn.init: PyTorch's gains, fans and distributions (closed-form checks; KS tests against torch are in test_torch_core.py)."""
import math

import numpy as np
import pytest

import linea
from linea.nn import init


@pytest.mark.parametrize("name,param,expected", [
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("sigmoid", None, 1.0), ("tanh", None, 5 / 3),
    ("relu", None, math.sqrt(2)), ("leaky_relu", None, math.sqrt(2 / (1 + 0.01 ** 2))),
    ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)), ("selu", None, 0.75),
])
def test_calculate_gain(name, param, expected):
    assert math.isclose(init.calculate_gain(name, param), expected)


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_fans_follow_pytorch_layout():
    assert init._calculate_fan_in_and_fan_out((30, 3)) == (3, 30)
    assert init._calculate_fan_in_and_fan_out((8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(linea.empty(5))


def _filled(function, shape=(400, 300), **kwargs):
    tensor = linea.empty(*shape)
    function(tensor, generator=linea.Generator().manual_seed(0), **kwargs)
    return tensor.numpy()


def test_xavier_uniform_bound():
    values = _filled(init.xavier_uniform_, gain=2.0)
    bound = 2.0 * math.sqrt(6 / 700)
    assert values.max() <= bound and values.min() >= -bound and values.max() > 0.99 * bound


def test_xavier_normal_std():
    assert math.isclose(_filled(init.xavier_normal_).std(), math.sqrt(2 / 700), rel_tol=0.02)


def test_kaiming_uniform_and_normal():
    values = _filled(init.kaiming_uniform_, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert values.max() <= bound and values.max() > 0.99 * bound
    std = _filled(init.kaiming_normal_, mode="fan_out", nonlinearity="relu").std()
    assert math.isclose(std, math.sqrt(2 / 400), rel_tol=0.02)


def test_kaiming_rejects_bad_mode():
    with pytest.raises(ValueError, match="fan_in"):
        init.kaiming_uniform_(linea.empty(3, 3), mode="fan_avg")


def test_trunc_normal_stays_within_bounds():
    values = _filled(init.trunc_normal_, std=1.0, a=-0.5, b=1.0)
    assert values.min() >= -0.5 and values.max() <= 1.0
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(linea.empty(2), a=1, b=0)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 2, 2, 2)])
def test_orthogonal(shape):
    values = _filled(init.orthogonal_, shape=shape, gain=1.0).reshape(shape[0], -1)
    rows, cols = values.shape
    product = values @ values.T if rows <= cols else values.T @ values
    assert np.allclose(product, np.eye(min(rows, cols)), atol=1e-5)


def test_constant_ones_zeros_eye_dirac():
    t = linea.empty(3, 4)
    assert init.constant_(t, 2.5).numpy().tolist() == [[2.5] * 4] * 3
    assert init.ones_(t).numpy().sum() == 12 and init.zeros_(t).numpy().sum() == 0
    assert np.array_equal(init.eye_(t).numpy(), np.eye(3, 4))
    conv = init.dirac_(linea.empty(2, 2, 3, 3)).numpy()
    assert conv[0, 0, 1, 1] == 1 and conv.sum() == 2


def test_init_works_on_parameters_without_no_grad():
    layer = linea.nn.Linear(3, 3)
    init.zeros_(layer.weight)
    init.xavier_uniform_(layer.weight)
    assert layer.weight.requires_grad and layer.weight.grad_fn is None


def test_zero_element_tensor_is_a_no_op_with_warning():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(linea.empty(0, 3))


def test_init_functions_need_a_tensor():
    with pytest.raises(TypeError, match="linea.Tensor"):
        init.zeros_(np.zeros(3))
