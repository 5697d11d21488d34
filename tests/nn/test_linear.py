"""nn.Linear and nn.LazyLinear: PyTorch's constructor, init, repr and errors."""
import math

import numpy as np
import pytest

import linea
from linea import nn


def test_seed_example_shape():
    layer = nn.Linear(in_features=3, out_features=30)
    assert layer(linea.ones(5, 3)).shape == (5, 30)


def test_parameters_and_shapes():
    layer = nn.Linear(4, 2)
    assert layer.weight.shape == (2, 4) and layer.bias.shape == (2,)
    assert isinstance(layer.weight, nn.Parameter) and layer.weight.requires_grad
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]


def test_bias_false_means_bias_is_none():
    layer = nn.Linear(4, 2, bias=False)
    assert layer.bias is None
    assert list(layer.state_dict()) == ["weight"]
    assert repr(layer) == "Linear(in_features=4, out_features=2, bias=False)"


def test_repr():
    assert repr(nn.Linear(3, 30)) == "Linear(in_features=3, out_features=30, bias=True)"


def test_default_init_bounds():
    layer = nn.Linear(50, 400)
    bound = 1 / math.sqrt(50)
    for parameter in (layer.weight, layer.bias):
        values = parameter.numpy()
        assert values.min() >= -bound and values.max() <= bound
        assert values.max() > 0.9 * bound and values.min() < -0.9 * bound


def test_reset_parameters_with_a_generator_is_reproducible():
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    a.reset_parameters(generator=linea.Generator().manual_seed(4))
    b.reset_parameters(generator=linea.Generator().manual_seed(4))
    assert np.array_equal(a.weight.numpy(), b.weight.numpy())
    assert np.array_equal(a.bias.numpy(), b.bias.numpy())


def test_manual_seed_makes_construction_reproducible():
    linea.manual_seed(0)
    first = nn.Linear(4, 4).weight.numpy().copy()
    linea.manual_seed(0)
    assert np.array_equal(nn.Linear(4, 4).weight.numpy(), first)


def test_float64_layer():
    layer = nn.Linear(3, 2, dtype=linea.float64)
    assert layer.weight.dtype == linea.float64
    assert layer(linea.ones(1, 3, dtype=linea.float64)).dtype == linea.float64


def test_zero_in_features_gives_the_bias():
    layer = nn.Linear(0, 3)
    out = layer(linea.ones(2, 0))
    assert out.shape == (2, 3) and np.allclose(out.numpy(), layer.bias.numpy())
    assert layer.bias.numpy().tolist() == [0.0, 0.0, 0.0]


def test_shape_error_names_layer_shape_and_feature_count():
    layer = nn.Linear(3, 30)
    with pytest.raises(linea.ShapeError) as info:
        layer(linea.ones(5, 4))
    message = str(info.value)
    assert "Linear(in_features=3" in message and "(5, 4)" in message and "3" in message


def test_integer_tensor_input_is_a_dtype_error_that_says_float():
    with pytest.raises(linea.DTypeError, match=r"floating-point.*\.float\(\)"):
        nn.Linear(3, 2)(linea.tensor([[1, 2, 3]]))
    with pytest.raises(linea.DTypeError):
        nn.Linear(3, 2)(linea.tensor([[True, False, True]]))


def test_other_float_dtype_is_a_dtype_error_naming_both():
    with pytest.raises(linea.DTypeError, match=r"float64.*float32"):
        nn.Linear(3, 2)(linea.ones(1, 3, dtype=linea.float64))


def test_dtype_error_is_also_type_and_runtime_error():
    with pytest.raises(TypeError):
        nn.Linear(3, 2)(linea.ones(1, 3, dtype=linea.float64))
    with pytest.raises(RuntimeError):
        nn.Linear(3, 2)(linea.ones(1, 3, dtype=linea.float64))


@pytest.mark.parametrize("raw", [np.ones((2, 3), np.int64), np.ones((2, 3), np.float64),
                                 [[1, 2, 3], [4, 5, 6]], np.ones((2, 3), np.float16)])
def test_raw_data_is_converted_to_the_layer_dtype(raw):
    out = nn.Linear(3, 2)(raw)
    assert out.dtype == linea.float32 and out.shape == (2, 2)


def test_scalar_raw_input_is_a_shape_error():
    with pytest.raises(linea.ShapeError):
        nn.Linear(1, 2)(3.0)


@pytest.mark.parametrize("args,error", [((3.5, 2), TypeError), ((-1, 2), ValueError),
                                        ((3, "2"), TypeError)])
def test_bad_constructor_arguments(args, error):
    with pytest.raises(error):
        nn.Linear(*args)


def test_only_cpu_device():
    assert nn.Linear(2, 2, device="cpu").weight.device == "cpu"
    if not linea.cuda.is_available():
        with pytest.raises(RuntimeError, match="'cuda' is not available: " + linea.cuda.unavailable_reason()[:20]):
            nn.Linear(2, 2, device="cuda")
    with pytest.raises(ValueError, match="'mps' is not available"):
        nn.Linear(2, 2, device="mps")


def test_failed_call_changes_nothing():
    layer = nn.Linear(3, 2)
    before = layer.weight.numpy().copy()
    with pytest.raises(linea.ShapeError):
        layer(linea.ones(1, 4))
    assert np.array_equal(before, layer.weight.numpy()) and layer.weight.grad is None


class TestLazyLinear:
    def test_infers_in_features_and_becomes_linear(self):
        layer = nn.LazyLinear(4)
        assert layer.in_features == 0
        out = layer(linea.ones(2, 3, 7))
        assert out.shape == (2, 3, 4) and layer.in_features == 7
        assert type(layer) is nn.Linear and layer.weight.shape == (4, 7)
        bound = 1 / math.sqrt(7)
        assert np.abs(layer.weight.numpy()).max() <= bound

    def test_bias_false(self):
        layer = nn.LazyLinear(4, bias=False)
        layer(linea.ones(1, 2))
        assert layer.bias is None

    def test_load_state_dict_materializes(self):
        source = nn.Linear(5, 3)
        lazy = nn.LazyLinear(3)
        lazy.load_state_dict(source.state_dict())
        assert type(lazy) is nn.Linear and lazy.in_features == 5
        assert np.array_equal(lazy.weight.numpy(), source.weight.numpy())
        assert np.array_equal(lazy.bias.numpy(), source.bias.numpy())

    def test_load_state_dict_with_wrong_out_features_changes_nothing(self):
        lazy = nn.LazyLinear(3)
        with pytest.raises(linea.StateDictError, match="out_features=3"):
            lazy.load_state_dict(nn.Linear(5, 4).state_dict())
        assert type(lazy) is nn.LazyLinear
