"""linea.autocast against torch.autocast("cpu"): which ops run in the low dtype, which in float32,
the outputs, and gradients reaching float32 master weights."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

DTYPES = {"bfloat16": (linea.bfloat16, torch.bfloat16), "float16": (linea.float16, torch.float16)}
RNG = np.random.default_rng(21)


def twins():
    ours = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.LayerNorm(16), nn.Linear(16, 5))
    theirs = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.LayerNorm(16),
                                 torch.nn.Linear(16, 5))
    with torch.no_grad():
        for (_, mine), (_, other) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            other.copy_(torch.from_numpy(mine.numpy().copy()))
    return ours, theirs


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_dtypes_inside_autocast_follow_torch_s_table(name):
    ours_dtype, theirs_dtype = DTYPES[name]
    x = RNG.standard_normal((4, 12)).astype(np.float32)
    ours, theirs = twins()
    ours_x, theirs_x = linea.tensor(x), torch.from_numpy(x)
    with linea.autocast("cpu", dtype=ours_dtype), torch.autocast("cpu", dtype=theirs_dtype):
        pairs = [(ours[0](ours_x), theirs[0](theirs_x))]  # linear: low precision
        pairs.append((ours_x @ ours_x.T, theirs_x @ theirs_x.T))  # matmul: low precision
        low = pairs[0]
        pairs.append((nn.functional.softmax(low[0], dim=-1), torch.softmax(low[1], dim=-1)))
        pairs.append((nn.functional.log_softmax(low[0], dim=-1), torch.log_softmax(low[1], dim=-1)))
        pairs.append((ours[2](nn.functional.relu(low[0])), theirs[2](torch.relu(low[1]))))
        pairs.append((nn.functional.relu(low[0]), torch.relu(low[1])))  # others: input's dtype
        target = RNG.integers(0, 16, 4)
        pairs.append((nn.functional.cross_entropy(low[0], linea.tensor(target)),
                      torch.nn.functional.cross_entropy(low[1], torch.from_numpy(target))))
        pairs.append((nn.functional.mse_loss(low[0], linea.zeros(4, 16)),
                      torch.nn.functional.mse_loss(low[1], torch.zeros(4, 16))))
    for ours_out, theirs_out in pairs:
        assert str(ours_out.dtype).split(".")[-1] == str(theirs_out.dtype).split(".")[-1]
        np.testing.assert_allclose(ours_out.float().detach().numpy(), theirs_out.float().detach().numpy(),
                                   rtol=2 ** -7 if name == "bfloat16" else 2 ** -10, atol=2e-2)


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_a_model_under_autocast_matches_torch_and_float32_math_on_rounded_values(name):
    ours_dtype, theirs_dtype = DTYPES[name]
    x = RNG.standard_normal((8, 12)).astype(np.float32)
    ours, theirs = twins()
    with linea.autocast("cpu", dtype=ours_dtype):
        ours_y = ours(linea.tensor(x))
    with torch.autocast("cpu", dtype=theirs_dtype):
        theirs_y = theirs(torch.from_numpy(x))
    assert ours_y.dtype == ours_dtype
    got, expected = ours_y.float().detach().numpy(), theirs_y.float().detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=2 ** -7 if name == "bfloat16" else 2 ** -10,
                               atol=1e-2 if name == "bfloat16" else 2e-3)
    low = ours_dtype.numpy
    layer = ours[0]
    rounded = (x.astype(low).astype(np.float32) @ layer.weight.detach().numpy().astype(low)
               .astype(np.float32).T + layer.bias.detach().numpy().astype(low).astype(np.float32))
    with linea.autocast("cpu", dtype=ours_dtype):
        first = layer(linea.tensor(x))
    assert first.numpy().tobytes() == rounded.astype(low).tobytes()


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_gradients_reach_the_float32_master_weights_as_torch_s_do(name):
    ours_dtype, theirs_dtype = DTYPES[name]
    x = RNG.standard_normal((8, 12)).astype(np.float32)
    target = RNG.integers(0, 5, 8)
    ours, theirs = twins()
    with linea.autocast("cpu", dtype=ours_dtype):
        loss = nn.functional.cross_entropy(ours(linea.tensor(x)), linea.tensor(target))
    loss.backward()
    with torch.autocast("cpu", dtype=theirs_dtype):
        theirs_loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)),
                                                        torch.from_numpy(target))
    theirs_loss.backward()
    assert loss.dtype == linea.float32
    for mine, other in zip(ours.parameters(), theirs.parameters()):
        assert mine.dtype == linea.float32 and mine.grad.dtype == linea.float32
        np.testing.assert_allclose(mine.grad.numpy(), other.grad.numpy(),
                                   atol=3e-2 if name == "bfloat16" else 5e-3, rtol=0.05)


def test_autocast_as_decorator_nesting_and_errors():
    layer = nn.Linear(3, 2)

    @linea.autocast("cpu")
    def run(x):
        return layer(x)

    assert run(linea.randn(1, 3)).dtype == linea.bfloat16
    with linea.autocast("cpu", dtype=linea.float16):
        assert layer(linea.randn(1, 3)).dtype == linea.float16
        with linea.autocast("cpu", enabled=False):
            assert layer(linea.randn(1, 3)).dtype == linea.float32
        assert layer(linea.randn(1, 3)).dtype == linea.float16
    assert layer(linea.randn(1, 3)).dtype == linea.float32
    with pytest.raises(ValueError, match="device_type"):
        linea.autocast("cuda")
    with pytest.raises(ValueError, match="bfloat16 or linea.float16"):
        linea.autocast("cpu", dtype=linea.float64)
    assert linea.amp.autocast is linea.autocast


def test_weight_casts_are_cached_within_autocast_and_refreshed_after_in_place_updates():
    layer = linea.nn.Linear(8, 4)
    x = linea.randn(3, 8)
    with linea.autocast("cpu", dtype=linea.bfloat16):
        first = layer(x).float().numpy()
        assert np.array_equal(layer(x).float().numpy(), first)
        with linea.no_grad():
            layer.weight.mul_(2.0)
            layer.bias.zero_()
        doubled = layer(x).float().numpy()
    with linea.autocast("cpu", dtype=linea.bfloat16, cache_enabled=False):
        uncached = layer(x).float().numpy()
    assert np.array_equal(doubled, uncached) and not np.array_equal(doubled, first)


def test_cached_weight_casts_still_carry_gradients_to_the_float32_weights():
    layer = linea.nn.Linear(6, 2)
    x = linea.randn(4, 6)
    with linea.autocast("cpu", dtype=linea.bfloat16):
        loss = (layer(x).float() ** 2).sum() + (layer(x).float() ** 2).sum()
    loss.backward()
    twice = layer.weight.grad.numpy().copy()
    layer.zero_grad()
    with linea.autocast("cpu", dtype=linea.bfloat16):
        loss = (layer(x).float() ** 2).sum()
    loss.backward()
    assert layer.weight.grad.dtype == linea.float32
    np.testing.assert_allclose(twice, 2 * layer.weight.grad.numpy(), rtol=1e-6)


def test_digits_mlp_trained_under_bf16_autocast_is_within_half_a_point_of_float32():
    from linea import _demo

    def train(autocast: bool) -> float:
        linea.manual_seed(0)
        x_train, y_train, x_test, y_test = _demo.split_digits(0)
        model = _demo.build_model()
        optimizer = linea.optim.Adam(model.parameters(), lr=1e-3)
        with linea.autocast("cpu", dtype=linea.bfloat16, enabled=autocast):
            for order in _demo.batch_orders(len(y_train), 12, 1):
                _demo.train_epoch(model, optimizer, x_train, y_train, order, 32)
        assert all(p.dtype == linea.float32 for p in model.parameters())
        return _demo.evaluate(model, x_test, y_test)[1]

    float_accuracy, bf16_accuracy = train(False), train(True)
    assert float_accuracy > 0.9
    assert bf16_accuracy >= float_accuracy - 0.005, (float_accuracy, bf16_accuracy)
