"""The torch-compatible mt19937 stream: float32 and float64 uniform draws equal torch's bit for bit."""
import math

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea

from linea.backend._mt19937 import TorchStream

torch = pytest.importorskip("torch", reason="torch is the oracle for its own random stream")

SEEDS = [0, 1, 7, 42, 12345, 2 ** 32 + 5, 2 ** 40 - 1]
SIZES = [1, 7, 15, 16, 17, 1000, 10 ** 5, 2 ** 20]


def same_bits(ours, theirs):
    return ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize("seed", [2 ** 32 + 5, 2 ** 40 - 1, 2 ** 63 - 1])
def test_seeds_wrap_to_32_bits_as_torchs_do(seed):
    torch.manual_seed(seed)
    assert same_bits(TorchStream(seed).uniform_float32(100, 0.0, 1.0), torch.rand(100).numpy())
    torch.manual_seed(seed & 0xFFFFFFFF)
    assert same_bits(TorchStream(seed).uniform_float32(100, 0.0, 1.0), torch.rand(100).numpy())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", SEEDS[:4])
def test_rand_matches_torch_bit_for_bit(seed, size):
    torch.manual_seed(seed)
    assert same_bits(TorchStream(seed).uniform_float32(size, 0.0, 1.0), torch.rand(size).numpy())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_float64_rand_matches_torch_bit_for_bit(seed, size):
    torch.manual_seed(seed)
    assert same_bits(TorchStream(seed).uniform_float64(size, 0.0, 1.0),
                     torch.rand(size, dtype=torch.float64).numpy())


def test_mixed_float32_and_float64_draws_share_one_stream():
    stream = TorchStream(9)
    torch.manual_seed(9)
    for size in (3, 1000, 17):
        assert same_bits(stream.uniform_float64(size, -0.3, 1.7),
                         torch.empty(size, dtype=torch.float64).uniform_(-0.3, 1.7).numpy())
        assert same_bits(stream.uniform_float32(size, -2.0, 0.5), torch.empty(size).uniform_(-2.0, 0.5).numpy())


@pytest.mark.parametrize("bounds", [(-1.0, 1.0), (-0.1, 0.3), (2.5, 1e4), (-1e-3, 1e-3)])
def test_uniform_matches_torch_bit_for_bit(bounds):
    stream = TorchStream(3)
    torch.manual_seed(3)
    for size in (17, 1000, 4099):
        assert same_bits(stream.uniform_float32(size, *bounds), torch.empty(size).uniform_(*bounds).numpy())


@pytest.mark.parametrize("shape", [(30, 3), (128, 64), (10, 128)])
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_nn_linear_initialisation_reproduced(seed, shape):
    """kaiming_uniform_(a=√5) then bias U(±1/√fan_in), torch's arithmetic for the bounds."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(shape[1], shape[0])
    stream = TorchStream(seed)
    fan_in = shape[1]
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    weight = stream.uniform_float32(shape[0] * shape[1], -bound, bound).reshape(shape)
    bias = stream.uniform_float32(shape[0], -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
    assert same_bits(weight, layer.weight.detach().numpy())
    assert same_bits(bias, layer.bias.detach().numpy())


@pytest.mark.parametrize("n", [0, 1, 2, 7, 16, 17, 1000, 60000])
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_randperm_matches_torch(seed, n):
    torch.manual_seed(seed)
    stream = TorchStream(seed)
    assert same_bits(stream.randperm(n), torch.randperm(n).numpy())
    assert same_bits(stream.uniform_float32(20, 0.0, 1.0), torch.rand(20).numpy())  # the stream stays in step


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", SEEDS[:4])
def test_small_normal_draws_and_their_cache_match_torch(seed, dtype):
    torch.manual_seed(seed)
    stream = TorchStream(seed)
    for count, mean, std in ((1, 0.0, 1.0), (5, 2.0, 0.5), (15, -1.0, 3.0), (2, 0.0, 1e-3)):
        theirs = torch.empty(count, dtype=getattr(torch, dtype)).normal_(mean, std).numpy()
        assert same_bits(stream.normal(count, mean, std, np.dtype(dtype)), theirs)
    assert same_bits(stream.uniform_float32(7, 0.0, 1.0), torch.rand(7).numpy())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_normal_matches_torch_bit_for_bit_at_every_size(seed, dtype, size):
    """16 and more: torch's vectorised Box–Muller (Cephes float polynomials in float32)."""
    torch.manual_seed(seed)
    stream = TorchStream(seed)
    for mean, std in ((0.0, 1.0), (0.3, 0.02)):
        theirs = torch.empty(size, dtype=getattr(torch, dtype)).normal_(mean, std).numpy()
        assert same_bits(stream.normal(size, mean, std, np.dtype(dtype)), theirs)
    assert stream.get_state() == torch.get_rng_state().numpy().tobytes()


@pytest.mark.parametrize("size", [16, 17, 33, 1000])
def test_the_numpy_path_gives_the_c_kernels_bits(monkeypatch, size):
    """Without the C kernel (LINEA_RANDOM_KERNEL=numpy), the same values, only slower."""
    fast = TorchStream(5)
    expected = [fast.normal(size, 0.5, 2.0, np.float32), fast.normal(size, 0.0, 1.0, np.float64),
                fast.uniform_float32(size, -1.0, 1.0), fast.randperm(size)]
    monkeypatch.setenv("LINEA_RANDOM_KERNEL", "numpy")
    slow = TorchStream(5)
    got = [slow.normal(size, 0.5, 2.0, np.float32), slow.normal(size, 0.0, 1.0, np.float64),
           slow.uniform_float32(size, -1.0, 1.0), slow.randperm(size)]
    for ours, reference in zip(got, expected):
        assert same_bits(ours, reference)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_randint_matches_torch(seed):
    torch.manual_seed(seed)
    stream = TorchStream(seed)
    for low, high, count in ((0, 10, 1000), (-5, 3, 17), (0, 2 ** 40, 100), (7, 8, 3), (0, 2 ** 32, 5)):
        assert same_bits(stream.integers(low, high, count), torch.randint(low, high, (count,)).numpy())


def test_state_bytes_are_torchs_and_restore_the_position():
    torch.manual_seed(2 ** 40 + 7)
    stream = TorchStream(2 ** 40 + 7)
    assert stream.get_state() == torch.get_rng_state().numpy().tobytes()  # fresh: left 1, next 0
    for draw in (lambda s: s.uniform_float32(3, 0, 1), lambda s: s.normal(3, 0, 1, np.float64),
                 lambda s: s.uniform_float32(615, 0, 1), lambda s: s.uniform_float32(1, 0, 1)):
        draw(stream)
    torch.rand(3), torch.randn(3, dtype=torch.float64), torch.rand(615), torch.rand(1)
    state = torch.get_rng_state().numpy().tobytes()
    assert stream.get_state() == state  # includes the cached normal
    copy = TorchStream(0)
    copy.set_state(state)
    assert same_bits(copy.normal(5, 0, 1, np.float64), torch.randn(5, dtype=torch.float64).numpy())


@pytest.mark.parametrize("broken", [b"", b"\0" * 5055, b"\xff" * 5056])
def test_a_broken_state_is_refused_and_changes_nothing(broken):
    stream = TorchStream(3)
    before = stream.get_state()
    with pytest.raises(ValueError):
        stream.set_state(broken)
    assert stream.get_state() == before


@pytest.mark.parametrize("n", [1, 100, 1797])
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_dataloader_shuffle_orders_over_epochs_match_torch(seed, n):
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(list(range(n)), batch_size=32, shuffle=True)
    theirs = [torch.cat(list(loader)).numpy() for _ in range(3)]
    after = torch.rand(5).numpy()
    linea.manual_seed(seed)
    ours = linea.utils.data.DataLoader(list(range(n)), batch_size=32, shuffle=True)
    for epoch in theirs:
        assert same_bits(linea.cat(list(ours)).numpy(), epoch)
    assert same_bits(linea.rand(5).numpy(), after)  # four draws per epoch, no more


def test_the_upper_bound_is_never_returned():
    values = TorchStream(0).uniform_float32(10 ** 6, 1.0, 1.0000001)
    assert (values >= np.float32(1.0)).all() and (values < np.float32(1.0000001)).all()
