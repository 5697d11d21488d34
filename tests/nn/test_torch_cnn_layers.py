"""linea against real PyTorch: BatchNorm1d/2d (train and eval steps), MaxPool2d, AvgPool2d,
AdaptiveAvgPool2d — values, gradients, running statistics, reprs and state-dict keys."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn
from _helpers import assert_close

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

R = {np.float32: 1e-5, np.float64: 1e-10}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
LINEA_DTYPE = {np.float32: linea.float32, np.float64: linea.float64}
RNG = np.random.default_rng(41)
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])

POOLS = {
    "MaxPool2d": (lambda m: m.MaxPool2d(2), (2, 3, 8, 7)),
    "MaxPool2d-strided-padded": (lambda m: m.MaxPool2d(3, stride=2, padding=1), (2, 3, 9, 8)),
    "MaxPool2d-ceil": (lambda m: m.MaxPool2d((3, 2), stride=(2, 3), ceil_mode=True), (1, 2, 8, 9)),
    "MaxPool2d-dilated": (lambda m: m.MaxPool2d(2, stride=1, dilation=2), (2, 2, 6, 6)),
    "AvgPool2d": (lambda m: m.AvgPool2d(2), (2, 3, 8, 7)),
    "AvgPool2d-padded": (lambda m: m.AvgPool2d(3, stride=2, padding=1), (2, 3, 9, 8)),
    "AvgPool2d-exclude-pad-ceil": (lambda m: m.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
                                   (1, 2, 8, 9)),
    "AvgPool2d-ceil": (lambda m: m.AvgPool2d(2, 3, 1, ceil_mode=True), (1, 2, 8, 8)),
    "AvgPool2d-divisor": (lambda m: m.AvgPool2d(2, divisor_override=3), (1, 2, 4, 6)),
    "AdaptiveAvgPool2d-1": (lambda m: m.AdaptiveAvgPool2d(1), (2, 3, 5, 7)),
    "AdaptiveAvgPool2d-uneven": (lambda m: m.AdaptiveAvgPool2d((3, 4)), (2, 3, 7, 9)),
    "AdaptiveAvgPool2d-none": (lambda m: m.AdaptiveAvgPool2d((None, 2)), (1, 2, 5, 6)),
}


@DTYPES
@pytest.mark.parametrize("name", sorted(POOLS))
def test_pooling_matches_torch(name, dtype):
    factory, shape = POOLS[name]
    ours, theirs = factory(nn), factory(torch.nn)
    assert repr(ours) == repr(theirs)
    x = RNG.standard_normal(shape).astype(dtype)
    x[0, 0, 0, :2] = x[0, 0, 1, 0]  # ties: the gradient goes where torch sends it
    x_ours, x_theirs = linea.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert_close(out_ours, out_theirs.detach().numpy(), R[dtype])
    upstream = RNG.standard_normal(tuple(out_theirs.shape)).astype(dtype)
    out_ours.backward(linea.tensor(upstream))
    out_theirs.backward(torch.tensor(upstream))
    assert_close(x_ours.grad, x_theirs.grad.numpy(), R[dtype])
    assert ours(linea.tensor(x[0])).shape == tuple(theirs(torch.tensor(x[0])).shape)  # unbatched


def test_max_pool2d_of_nan_and_of_bfloat16_match_torch():
    x = RNG.standard_normal((1, 1, 4, 4)).astype(np.float32)
    x[0, 0, 1, 1] = np.nan
    ours = nn.MaxPool2d(2)(linea.tensor(x)).numpy()
    theirs = torch.nn.MaxPool2d(2)(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(ours, theirs)
    low = linea.tensor(x).to(linea.bfloat16)
    assert nn.AvgPool2d(2)(low).dtype is linea.bfloat16
    expected = torch.nn.AvgPool2d(2)(torch.tensor(x).bfloat16()).float().numpy()
    np.testing.assert_array_equal(nn.AvgPool2d(2)(low).float().numpy(), expected)


BATCHNORMS = {
    "BatchNorm1d": (lambda m: m.BatchNorm1d(4), (6, 4)),
    "BatchNorm1d-3d": (lambda m: m.BatchNorm1d(4, momentum=0.3, eps=1e-3), (5, 4, 3)),
    "BatchNorm1d-cumulative": (lambda m: m.BatchNorm1d(4, momentum=None), (6, 4)),
    "BatchNorm2d": (lambda m: m.BatchNorm2d(3), (4, 3, 5, 5)),
    "BatchNorm2d-nobias": (lambda m: m.BatchNorm2d(3, bias=False), (4, 3, 5, 5)),
    "BatchNorm2d-noaffine": (lambda m: m.BatchNorm2d(3, affine=False), (4, 3, 5, 5)),
    "BatchNorm2d-untracked": (lambda m: m.BatchNorm2d(3, track_running_stats=False), (4, 3, 2, 3)),
}


@DTYPES
@pytest.mark.parametrize("name", sorted(BATCHNORMS))
def test_batchnorm_train_and_eval_steps_match_torch(name, dtype):
    factory, shape = BATCHNORMS[name]
    ours, theirs = factory(nn).to(LINEA_DTYPE[dtype]), factory(torch.nn).to(TORCH_DTYPE[dtype])
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with torch.no_grad():
        for (_, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
            values = RNG.standard_normal(a.shape).astype(dtype)
            a.data = linea.tensor(values)
            b.copy_(torch.from_numpy(values))
    for step in range(4):
        if step == 3:
            ours.eval(), theirs.eval()
        x = (RNG.standard_normal(shape) * 3 + step).astype(dtype)
        x_ours, x_theirs = linea.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
        assert_close(out_ours, out_theirs.detach().numpy(), R[dtype])
        upstream = RNG.standard_normal(shape).astype(dtype)
        out_ours.backward(linea.tensor(upstream))
        out_theirs.backward(torch.tensor(upstream))
        assert_close(x_ours.grad, x_theirs.grad.numpy(), R[dtype])
        for (key, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert_close(a.grad, b.grad.numpy(), R[dtype])
            a.grad = None
        theirs.zero_grad()
        for key, value in theirs.state_dict().items():
            assert_close(ours.state_dict()[key], value.numpy(), R[dtype])


def test_batchnorm_state_dict_round_trips_through_torch():
    theirs = torch.nn.BatchNorm2d(3)
    theirs(torch.randn(4, 3, 2, 2) * 2)
    ours = nn.BatchNorm2d(3)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert int(ours.num_batches_tracked.item()) == 1
    x = RNG.standard_normal((2, 3, 2, 2)).astype(np.float32)
    assert_close(ours.eval()(linea.tensor(x)), theirs.eval()(torch.tensor(x)).detach().numpy())
    back = torch.nn.BatchNorm2d(3)
    back.load_state_dict({k: torch.from_numpy(np.asarray(v.numpy())) for k, v in ours.state_dict().items()})
    assert back.num_batches_tracked.dtype == torch.int64


def test_batchnorm_in_bfloat16_matches_torch():
    x = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    ours, theirs = nn.BatchNorm2d(3).to(linea.bfloat16), torch.nn.BatchNorm2d(3).bfloat16()
    out_ours = ours(linea.tensor(x).to(linea.bfloat16))
    out_theirs = theirs(torch.tensor(x).bfloat16())
    assert out_ours.dtype is linea.bfloat16
    np.testing.assert_allclose(out_ours.float().numpy(), out_theirs.float().detach().numpy(),
                               atol=1e-2, rtol=1e-2)
