"""After the same seed, linea's public random API gives torch's numbers bit for bit."""
import math

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn

torch = pytest.importorskip("torch", reason="torch is the oracle for its own random stream")

SEEDS = [0, 1, 42, 2 ** 33 + 9]
SIZES = [1, 7, 15, 16, 17, 1000, 10 ** 5, 2 ** 20]


def same_bits(ours, theirs):
    ours = ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    return ours.dtype == theirs.dtype and ours.shape == theirs.shape and ours.tobytes() == theirs.tobytes()


def seed_both(seed):
    torch.manual_seed(seed)
    linea.manual_seed(seed)


def streams_in_step():
    return same_bits(linea.get_rng_state(), torch.get_rng_state())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_rand_randn_match_at_every_size(seed, size):
    seed_both(seed)
    assert same_bits(linea.rand(size), torch.rand(size))
    assert same_bits(linea.randn(size), torch.randn(size))
    assert same_bits(linea.randn(size, dtype=linea.float64), torch.randn(size, dtype=torch.float64))
    assert same_bits(linea.rand(size, dtype=linea.float64), torch.rand(size, dtype=torch.float64))
    assert streams_in_step()


@pytest.mark.parametrize("seed", SEEDS)
def test_shaped_draws_and_in_place_fills_match(seed):
    seed_both(seed)
    assert same_bits(linea.rand(4, 5, 6), torch.rand(4, 5, 6))
    assert same_bits(linea.randn(3, 7), torch.randn(3, 7))
    assert same_bits(linea.empty(9, 9).uniform_(-2, 3), torch.empty(9, 9).uniform_(-2, 3))
    assert same_bits(linea.empty(40).normal_(1.5, 0.1), torch.empty(40).normal_(1.5, 0.1))
    assert same_bits(linea.randint(0, 10, (3, 4)), torch.randint(0, 10, (3, 4)))
    assert same_bits(linea.randint(5, (6,)), torch.randint(5, (6,)))
    assert same_bits(linea.randperm(1000), torch.randperm(1000))
    assert same_bits(linea.rand_like(linea.zeros(3, 3)), torch.rand_like(torch.zeros(3, 3)))
    assert same_bits(linea.randn_like(linea.zeros(20)), torch.randn_like(torch.zeros(20)))
    assert streams_in_step()


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "uint8"])
def test_random_matches_in_every_form(dtype):
    seed_both(11)
    ours, theirs = linea.empty(50, dtype=getattr(linea, dtype)), torch.empty(50, dtype=getattr(torch, dtype))
    assert same_bits(ours.random_(), theirs.random_())
    assert same_bits(ours.random_(7), theirs.random_(7))
    assert same_bits(ours.random_(3, 9), theirs.random_(3, 9))
    assert streams_in_step()


def test_explicit_generators_match_and_leave_the_global_stream_alone():
    seed_both(0)
    ours, theirs = linea.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert same_bits(linea.rand(100, generator=ours), torch.rand(100, generator=theirs))
    assert same_bits(linea.randn(100, generator=ours), torch.randn(100, generator=theirs))
    assert same_bits(linea.randperm(50, generator=ours), torch.randperm(50, generator=theirs))
    assert same_bits(ours.get_state(), theirs.get_state())
    assert same_bits(linea.rand(3), torch.rand(3))


@pytest.mark.parametrize("shape", [(30, 3), (128, 64), (10, 784), (1, 1)])
@pytest.mark.parametrize("seed", SEEDS)
def test_nn_linear_is_torchs(seed, shape):
    seed_both(seed)
    ours, theirs = nn.Linear(shape[1], shape[0]), torch.nn.Linear(shape[1], shape[0])
    assert same_bits(ours.weight, theirs.weight) and same_bits(ours.bias, theirs.bias)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_whole_model_is_torchs(seed):
    seed_both(seed)
    ours = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 10, bias=False))
    theirs = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16),
                                 torch.nn.Tanh(), torch.nn.Linear(16, 10, bias=False))
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert same_bits(a, b)
    assert streams_in_step()


def test_conv2d_and_lazy_linear_are_torchs():
    seed_both(3)
    ours, theirs = nn.Conv2d(3, 8, 3), torch.nn.Conv2d(3, 8, 3)
    assert same_bits(ours.weight, theirs.weight) and same_bits(ours.bias, theirs.bias)
    lazy_ours, lazy_theirs = nn.LazyLinear(7), torch.nn.LazyLinear(7)
    lazy_ours(linea.zeros(2, 5))
    lazy_theirs(torch.zeros(2, 5))
    assert same_bits(lazy_ours.weight, lazy_theirs.weight) and same_bits(lazy_ours.bias, lazy_theirs.bias)


INITS = ["uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
         "trunc_normal_"]


@pytest.mark.parametrize("shape", [(40, 30), (3, 5), (7,) * 2, (16, 1)])
@pytest.mark.parametrize("name", INITS)
def test_init_functions_are_torchs(name, shape):
    seed_both(21)
    ours, theirs = linea.empty(*shape), torch.empty(*shape)
    getattr(nn.init, name)(ours)
    getattr(torch.nn.init, name)(theirs)
    assert same_bits(ours, theirs)
    assert streams_in_step()


def test_trunc_normal_default_window_redraws_as_torch_does():
    seed_both(8)
    ours, theirs = linea.empty(5000), torch.empty(5000)  # ±2σ: about 230 values need a redraw
    nn.init.trunc_normal_(ours, std=0.02, a=-0.04, b=0.04)
    torch.nn.init.trunc_normal_(theirs, std=0.02, a=-0.04, b=0.04)
    assert same_bits(ours, theirs) and streams_in_step()


def test_narrow_trunc_normal_has_the_right_distribution():
    """[1, 3] under N(0, 1) holds 16 % of the mass: torch's narrow branch is not reproduced."""
    values = nn.init.trunc_normal_(linea.empty(200_000), a=1.0, b=3.0).numpy().astype(np.float64)
    assert values.min() >= 1.0 and values.max() <= 3.0
    from scipy.stats import truncnorm

    assert abs(values.mean() - truncnorm.mean(1.0, 3.0)) < 0.005
    assert abs(values.std() - truncnorm.std(1.0, 3.0)) < 0.005


def test_orthogonal_draws_as_torch_does_and_agrees_to_round_off():
    seed_both(4)
    ours, theirs = nn.init.orthogonal_(linea.empty(20, 30)), torch.nn.init.orthogonal_(torch.empty(20, 30))
    assert np.allclose(ours.numpy(), theirs.numpy(), atol=1e-5)
    assert streams_in_step()  # the same 600 normals were drawn


@pytest.mark.parametrize("p", [0.1, 0.5, 0.77])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_masks_are_torchs(p, dtype):
    """torch 2.13's CPU bernoulli_: a float64 uniform per element (checked on Intel Xeon machines)."""
    seed_both(6)
    x = np.linspace(-3, 3, 999).astype(dtype).reshape(27, 37)
    ours = nn.functional.dropout(linea.from_numpy(x), p)
    theirs = torch.nn.functional.dropout(torch.from_numpy(x), p)
    assert same_bits(ours, theirs) and streams_in_step()
    assert same_bits(nn.Dropout(p)(linea.from_numpy(x)), torch.nn.Dropout(p)(torch.from_numpy(x)))


def batches(module, dataset, epochs, **options):
    loader = module.utils.data.DataLoader(dataset, batch_size=16, shuffle=True, **options)
    return [batch[0].tolist() for _ in range(epochs) for batch in loader]


@pytest.mark.parametrize("n", [1, 100, 1797])
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_dataloader_shuffles_as_torchs_with_and_without_a_generator(seed, n):
    seed_both(seed)
    ours = linea.utils.data.TensorDataset(linea.arange(n))
    theirs = torch.utils.data.TensorDataset(torch.arange(n))
    assert batches(linea, ours, 3) == batches(torch, theirs, 3)
    assert batches(linea, ours, 3, generator=linea.Generator().manual_seed(seed + 1)) == \
        batches(torch, theirs, 3, generator=torch.Generator().manual_seed(seed + 1))
    assert streams_in_step()


def test_random_split_and_samplers_are_torchs():
    seed_both(13)
    split = lambda module, lengths: [list(s.indices) for s in module.utils.data.random_split(range(50), lengths)]
    assert split(linea, [0.3, 0.7]) == split(torch, [0.3, 0.7])
    assert split(linea, [10, 25, 15]) == split(torch, [10, 25, 15])
    for options in ({"replacement": True, "num_samples": 70}, {"num_samples": 120}):
        assert list(linea.utils.data.RandomSampler(range(50), **options)) == \
            list(torch.utils.data.RandomSampler(range(50), **options))
    assert list(linea.utils.data.SubsetRandomSampler([5, 9, 2, 7])) == \
        list(torch.utils.data.SubsetRandomSampler([5, 9, 2, 7]))
    assert streams_in_step()


def test_states_cross_between_linea_and_torch():
    torch.manual_seed(77)
    torch.randn(3)  # leaves a cached normal
    linea.set_rng_state(torch.get_rng_state())
    assert same_bits(linea.randn(5), torch.randn(5))
    linea.manual_seed(9)
    linea.rand(700)
    torch.set_rng_state(torch.from_numpy(linea.get_rng_state().numpy()))
    assert same_bits(linea.rand(10), torch.rand(10))


def test_seeds_wrap_as_torchs_do():
    for seed in (-1, 2 ** 64 - 1, 2 ** 63):
        seed_both(seed)
        assert same_bits(linea.rand(5), torch.rand(5))
        assert linea.initial_seed() == torch.initial_seed()


def test_the_default_stream_before_any_seed_is_torchs_default():
    fresh = linea.Generator()
    assert fresh.initial_seed() == torch.Generator().initial_seed()
    assert same_bits(linea.rand(10, generator=fresh), torch.rand(10, generator=torch.Generator()))


def test_float16_draws_have_the_right_distribution():
    """torch computes float16/bfloat16 draws in their own arithmetic: not reproduced, only distributed alike."""
    linea.manual_seed(0)
    values = linea.randn(100_000, dtype=linea.float16).numpy().astype(np.float64)
    assert abs(values.mean()) < 0.02 and abs(values.std() - 1) < 0.02
    uniform = linea.rand(100_000, dtype=linea.bfloat16).numpy().astype(np.float64)
    assert 0 <= uniform.min() and uniform.max() <= 1 and abs(uniform.mean() - 0.5) < 0.01
    assert math.isfinite(values.sum())


@pytest.mark.parametrize("name", INITS)
def test_init_of_a_linears_own_weight_is_torchs(name):
    """linea keeps Linear's weight column-major; the draws follow the (out, in) order torch fills."""
    seed_both(2)
    ours, theirs = nn.Linear(40, 30), torch.nn.Linear(40, 30)
    getattr(nn.init, name)(ours.weight)
    getattr(torch.nn.init, name)(theirs.weight)
    assert same_bits(np.ascontiguousarray(ours.weight.numpy()), theirs.weight.detach().numpy())


def test_a_strided_view_takes_torchs_scalar_path():
    seed_both(2)
    ours, theirs = linea.zeros(6, 40), torch.zeros(6, 40)
    ours[:, :20].normal_()
    theirs[:, :20].normal_()
    assert same_bits(ours, theirs) and streams_in_step()
