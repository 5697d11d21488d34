"""linea against real PyTorch: Linear, the tensor ops, init distributions, state dicts."""
import math

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn
from _helpers import assert_close

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")
stats = pytest.importorskip("scipy.stats")

DTYPES = {np.float32: (linea.float32, torch.float32), np.float64: (linea.float64, torch.float64)}
RNG = np.random.default_rng(11)


def twin_layers(in_features, out_features, bias, numpy_dtype):
    linea_dtype, torch_dtype = DTYPES[numpy_dtype]
    ours = nn.Linear(in_features, out_features, bias=bias, dtype=linea_dtype)
    theirs = torch.nn.Linear(in_features, out_features, bias=bias, dtype=torch_dtype)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().copy()))
        if bias:
            theirs.bias.copy_(torch.from_numpy(ours.bias.numpy().copy()))
    return ours, theirs


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("numpy_dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape,in_features", [
    ((7,), 7), ((5, 3), 3), ((4, 6, 8), 8), ((2, 3, 4, 5), 5), ((0, 4), 4), ((3, 0), 0),
    ((2, 0, 4), 4),
], ids=str)
def test_linear_outputs_and_gradients_match(shape, in_features, bias, numpy_dtype):
    out_features = 6
    ours, theirs = twin_layers(in_features, out_features, bias, numpy_dtype)
    x = RNG.standard_normal(shape).astype(numpy_dtype)
    upstream = RNG.standard_normal(shape[:-1] + (out_features,)).astype(numpy_dtype)

    x_ours = linea.tensor(x, requires_grad=True)
    y_ours = ours(x_ours)
    y_ours.backward(linea.tensor(upstream))

    x_theirs = torch.tensor(x, requires_grad=True)
    y_theirs = theirs(x_theirs)
    y_theirs.backward(torch.tensor(upstream))

    assert_close(y_ours, y_theirs.detach().numpy())
    assert_close(x_ours.grad, x_theirs.grad.numpy())
    assert_close(ours.weight.grad, theirs.weight.grad.numpy())
    if bias:
        assert_close(ours.bias.grad, theirs.bias.grad.numpy())


def test_functional_linear_matches_torch():
    x, w, b = (RNG.standard_normal(s) for s in ((3, 4), (5, 4), (5,)))
    expected = torch.nn.functional.linear(*(torch.tensor(a) for a in (x, w, b))).numpy()
    assert_close(nn.functional.linear(*(linea.tensor(a) for a in (x, w, b))), expected)


OPS = {
    "add-broadcast": (lambda a, b: a + b, [(3, 4), (4,)]),
    "sub": (lambda a, b: a - b, [(3, 1), (1, 4)]),
    "mul": (lambda a, b: a * b, [(2, 3, 4), (3, 4)]),
    "div": (lambda a, b: a / (b * b + 1), [(3, 4), (3, 4)]),
    "matmul-batched": (lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    "matmul-vec": (lambda a, b: a @ b, [(4,), (4, 5)]),
    "pow": (lambda a: (a * a + 1) ** 1.5, [(3, 4)]),
    "exp-log": (lambda a: (a.exp() + 1).log(), [(3, 4)]),
    "tanh-sigmoid": (lambda a: a.tanh() * a.sigmoid(), [(3, 4)]),
    "sqrt-abs": (lambda a: (a.abs() + 0.1).sqrt(), [(3, 4)]),
    "clamp": (lambda a: a.clamp(-0.3, 0.4), [(3, 4)]),
    "sum-mean": (lambda a: a.sum(1, keepdim=True) * a.mean(0), [(3, 4)]),
    "max-dim": (lambda a: a.max(dim=1).values, [(3, 4)]),
    "var": (lambda a: a.var(dim=0), [(5, 4)]),
    "logsumexp": (lambda a: a.logsumexp(1), [(3, 4)]),
    "reshape-transpose": (lambda a: a.reshape(4, 3).transpose(0, 1) * 2, [(3, 4)]),
    "permute-flatten": (lambda a: a.permute(2, 0, 1).flatten(1), [(2, 3, 4)]),
    "index": (lambda a: a[1:, ::2] * a[0, 1], [(3, 4)]),
    "unsqueeze-squeeze": (lambda a: a.unsqueeze(0).squeeze(0).T, [(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_ops_and_their_gradients_match_torch(name):
    function, shapes = OPS[name]
    arrays = [RNG.standard_normal(shape) for shape in shapes]
    ours = [linea.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_ours, out_theirs = function(*ours), function(*theirs)
    assert out_ours.shape == tuple(out_theirs.shape)
    assert_close(out_ours, out_theirs.detach().numpy())
    upstream = RNG.standard_normal(tuple(out_theirs.shape))
    out_ours.backward(linea.tensor(upstream))
    out_theirs.backward(torch.tensor(upstream))
    for a, b in zip(ours, theirs):
        assert_close(a.grad, b.grad.numpy())


@pytest.mark.parametrize("data", [[1.0, 2.0], [1, 2], [True, False], [1, 2.5], 3.0, 7])
def test_dtype_inference_matches_torch(data):
    assert linea.tensor(data).dtype.name == str(torch.tensor(data).dtype).split(".")[1]


@pytest.mark.parametrize("expression", [
    lambda m: m.tensor([1, 2]) * 0.5, lambda m: m.tensor([3, 4]) / m.tensor([2, 2]),
    lambda m: m.ones(2) * m.tensor(2.0, dtype=m.float64), lambda m: m.tensor([1, 2]) + m.ones(2),
    lambda m: m.ones(2, dtype=m.float16) + m.ones(2), lambda m: m.arange(0, 1, 0.5),
    lambda m: m.arange(3), lambda m: (m.ones(2) > 0).sum(),
])
def test_type_promotion_matches_torch(expression):
    assert expression(linea).dtype.name == str(expression(torch).dtype).split(".")[1]


# ---- distributions: two-sample KS tests, fixed seeds, ≥ 10⁵ samples -------------------

def _ks_same(ours, theirs):
    result = stats.ks_2samp(np.ravel(ours), np.ravel(theirs))
    assert result.pvalue >= 1e-4, f"KS statistic {result.statistic:.4g}, p = {result.pvalue:.3g}"


def test_default_linear_init_matches_torch_in_distribution():
    linea.manual_seed(0)
    torch.manual_seed(0)
    ours = [nn.Linear(100, 1000) for _ in range(2)]
    theirs = [torch.nn.Linear(100, 1000) for _ in range(2)]
    _ks_same(np.concatenate([l.weight.numpy().ravel() for l in ours]),
             np.concatenate([l.weight.detach().numpy().ravel() for l in theirs]))
    ours_b = np.concatenate([nn.Linear(100, 1000).bias.numpy() for _ in range(100)])
    theirs_b = np.concatenate([torch.nn.Linear(100, 1000).bias.detach().numpy() for _ in range(100)])
    _ks_same(ours_b, theirs_b)


INITS = {
    "uniform_": dict(a=-0.3, b=0.7),
    "normal_": dict(mean=0.5, std=2.0),
    "xavier_uniform_": dict(gain=1.5),
    "xavier_normal_": dict(gain=0.5),
    "kaiming_uniform_": dict(a=0.2, mode="fan_out", nonlinearity="leaky_relu"),
    "kaiming_normal_": dict(nonlinearity="relu"),
    "trunc_normal_": dict(mean=0.2, std=1.0, a=-1.0, b=1.5),
    "orthogonal_": dict(gain=2.0),
}


@pytest.mark.parametrize("name", sorted(INITS))
@pytest.mark.parametrize("shape", [(400, 300), (16, 8, 5, 5)], ids=["2d", "4d"])
def test_init_functions_match_torch_in_distribution(name, shape):
    kwargs = INITS[name]
    ours = linea.empty(*shape)
    getattr(nn.init, name)(ours, generator=linea.Generator().manual_seed(1), **kwargs)
    theirs = torch.empty(*shape)
    getattr(torch.nn.init, name)(theirs, generator=torch.Generator().manual_seed(1), **kwargs)
    _ks_same(ours.numpy(), theirs.numpy())


def test_rand_and_randn_match_torch_in_distribution():
    _ks_same(linea.rand(200000).numpy(), torch.rand(200000).numpy())
    _ks_same(linea.randn(200000).numpy(), torch.randn(200000).numpy())


@pytest.mark.parametrize("name,param", [("linear", None), ("tanh", None), ("relu", None),
                                        ("leaky_relu", 0.2), ("selu", None), ("sigmoid", None)])
def test_calculate_gain_matches_torch(name, param):
    assert math.isclose(nn.init.calculate_gain(name, param), torch.nn.init.calculate_gain(name, param))


# ---- modules: state dicts and printing ------------------------------------------

class OursNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 30)
        self.fc2 = nn.Linear(30, 2, bias=False)
        self.register_buffer("scale", linea.ones(2))

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()) * self.scale


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(5, 30)
        self.fc2 = torch.nn.Linear(30, 2, bias=False)
        self.register_buffer("scale", torch.ones(2))

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()) * self.scale


def test_state_dict_moves_to_torch_and_back_with_the_same_keys():
    ours, theirs = OursNet(), TorchNet()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()},
                           strict=True)
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    assert_close(ours(x), theirs(torch.from_numpy(x)).detach().numpy())
    back = OursNet()
    back.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for (key, a), (_, b) in zip(back.state_dict().items(), ours.state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), key


def test_torch_state_dict_tensors_load_directly():
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    ours = nn.Sequential(nn.Linear(3, 4), nn.Identity(), nn.Linear(4, 1))
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert np.array_equal(ours[2].weight.numpy(), theirs[2].weight.detach().numpy())


def test_sequential_keys_and_repr_match_torch():
    ours = nn.Sequential(nn.Linear(3, 30), nn.Linear(30, 1, bias=False))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 30), torch.nn.Linear(30, 1, bias=False))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    assert repr(nn.Linear(3, 30)) == repr(torch.nn.Linear(3, 30))


def test_load_state_dict_reports_the_same_keys_as_torch():
    bad = {"weight": np.zeros((2, 3), np.float32), "extra": np.zeros(1, np.float32)}
    ours = nn.Linear(3, 2).load_state_dict(bad, strict=False)
    theirs = torch.nn.Linear(3, 2).load_state_dict({k: torch.from_numpy(v) for k, v in bad.items()},
                                                   strict=False)
    assert ours.missing_keys == theirs.missing_keys
    assert ours.unexpected_keys == theirs.unexpected_keys


def test_clip_grad_norm_matches_torch():
    grads = [RNG.standard_normal(s).astype(np.float32) for s in ((3, 4), (5,))]
    ours = [linea.zeros(*g.shape, requires_grad=True) for g in grads]
    theirs = [torch.zeros(*g.shape, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = linea.tensor(g), torch.tensor(g)
    for norm_type in (2.0, 1.0, float("inf")):
        total_ours = nn.utils.clip_grad_norm_(ours, 0.5, norm_type)
        total_theirs = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type)
        assert math.isclose(total_ours.item(), total_theirs.item(), rel_tol=1e-5)
        for o, t in zip(ours, theirs):
            assert_close(o.grad, t.grad.numpy())


@pytest.mark.parametrize("torch_dtype, linea_dtype", [
    ("bfloat16", "bfloat16"), ("float16", "float16"), ("bfloat16", "float32"),
    ("float16", "float32"), ("float64", "float64"), ("float32", "float64")])
def test_a_torch_state_dict_of_any_float_dtype_loads_exactly(torch_dtype, linea_dtype):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.LayerNorm(4),
                                 torch.nn.Linear(4, 2)).to(getattr(torch, torch_dtype))
    ours = nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4), nn.Linear(4, 2)).to(getattr(linea, linea_dtype))
    ours.load_state_dict(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        expected = value.double().numpy()
        got = ours.state_dict()[key].numpy().astype(np.float64)
        np.testing.assert_array_equal(got, expected, err_msg=key)  # each value is representable
        assert ours.state_dict()[key].dtype == getattr(linea, linea_dtype)


def test_torch_bfloat16_tensors_become_linea_tensors_bit_for_bit():
    values = torch.randn(3, 4).to(torch.bfloat16)
    for made in (linea.tensor(values), linea.as_tensor(values)):
        assert made.dtype == linea.bfloat16
        np.testing.assert_array_equal(made.numpy().view(np.uint16), values.view(torch.int16).numpy()
                                      .view(np.uint16))
    strided = values.t()  # not contiguous
    np.testing.assert_array_equal(linea.tensor(strided).numpy().astype(np.float32),
                                  strided.float().numpy())


def test_a_torch_dtype_linea_lacks_is_refused_by_name_and_nothing_changes():
    ours = nn.Linear(3, 2)
    before = ours.weight.numpy().copy()
    state = {"weight": torch.zeros(2, 3, dtype=torch.float8_e4m3fn), "bias": torch.zeros(2)}
    with pytest.raises(TypeError, match="float8_e4m3fn.*convert it first"):
        ours.load_state_dict(state)
    np.testing.assert_array_equal(ours.weight.numpy(), before)
