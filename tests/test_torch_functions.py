"""The top-level functions, inference_mode, topk/sort and DLPack against real PyTorch."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from _helpers import assert_close

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

RNG = np.random.default_rng(71)
X = RNG.standard_normal((4, 5)).astype(np.float32)

UNARY = ["exp", "abs", "sqrt", "log", "tanh", "sigmoid", "relu"]


@pytest.mark.parametrize("name", UNARY)
def test_elementwise_functions_match_torch(name):
    x = np.abs(X) + 0.1 if name in ("sqrt", "log") else X
    assert_close(getattr(linea, name)(linea.tensor(x)), getattr(torch, name)(torch.tensor(x)).numpy())


CALLS = {
    "sum-all": lambda m, t: m.sum(t), "sum-dim": lambda m, t: m.sum(t, 1, keepdim=True),
    "mean": lambda m, t: m.mean(t, 0), "std": lambda m, t: m.std(t, 1), "var": lambda m, t: m.var(t),
    "softmax": lambda m, t: m.softmax(t, 1), "log_softmax": lambda m, t: m.log_softmax(t, -1),
    "flatten": lambda m, t: m.flatten(t.reshape(2, 2, 5)), "flatten-1": lambda m, t: m.flatten(t.reshape(2, 2, 5), 1),
    "clamp": lambda m, t: m.clamp(t, -0.5, 0.5), "clamp-min": lambda m, t: m.clamp(t, min=0.1),
    "matmul": lambda m, t: m.matmul(t, t.T), "argmax": lambda m, t: m.argmax(t, 1),
    "argmin": lambda m, t: m.argmin(t), "max-all": lambda m, t: m.max(t),
    "max-dim-values": lambda m, t: m.max(t, 1)[0], "max-dim-indices": lambda m, t: m.max(t, 1)[1],
    "min-dim-values": lambda m, t: m.min(t, 0).values, "maximum": lambda m, t: m.maximum(t, t * 0),
    "logsumexp": lambda m, t: m.logsumexp(t, 1), "transpose": lambda m, t: m.transpose(t, 0, 1),
    "unsqueeze": lambda m, t: m.unsqueeze(t, 1), "reshape": lambda m, t: m.reshape(t, (5, 4)),
    "topk-values": lambda m, t: m.topk(t, 2).values, "topk-indices": lambda m, t: m.topk(t, 3, dim=0)[1],
    "topk-smallest": lambda m, t: m.topk(t, 2, largest=False)[0],
    "sort-values": lambda m, t: m.sort(t, 1)[0], "sort-desc-indices": lambda m, t: m.sort(t, 0, descending=True)[1],
    "tensor-softmax": lambda m, t: t.softmax(0), "tensor-topk": lambda m, t: t.topk(1).indices,
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_functions_match_torch(name):
    ours = CALLS[name](linea, linea.tensor(X))
    theirs = CALLS[name](torch, torch.tensor(X))
    expected = theirs.numpy() if hasattr(theirs, "numpy") else np.asarray(theirs)
    got = ours.numpy()
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert_close(got, expected)


def test_the_classic_accuracy_idiom_and_comparisons():
    outputs = linea.tensor(X)
    _, predicted = linea.max(outputs.data, 1)
    assert predicted.tolist() == torch.max(torch.tensor(X).data, 1)[1].tolist()
    a, b = linea.tensor(X), linea.tensor(X + 1e-7)
    assert linea.allclose(a, b) == torch.allclose(torch.tensor(X), torch.tensor(X + 1e-7))
    assert linea.isclose(a, b * 1.1).tolist() == torch.isclose(torch.tensor(X), torch.tensor((X + 1e-7) * 1.1)).tolist()
    assert linea.equal(a, a) and not linea.equal(a, a[:2]) and not linea.equal(a, b)
    assert linea.numel(a) == 20


def test_topk_and_sort_gradients_match_torch():
    grads = []
    for lib in (linea, torch):
        x = lib.tensor(X, requires_grad=True)
        (lib.topk(x, 2)[0].sum() * 2 + (lib.sort(x, 0)[0] * lib.tensor(np.arange(5.0, dtype=np.float32))).sum()).backward()
        grads.append(x.grad.numpy())
    assert_close(grads[0], grads[1])


def test_inference_mode_records_nothing_and_is_a_decorator():
    x = linea.ones(2, requires_grad=True)
    with linea.inference_mode():
        assert not (x * 2).requires_grad
    with linea.inference_mode(False):
        assert (x * 2).requires_grad

    @linea.inference_mode()
    def predict(value):
        return value * 3

    assert not predict(x).requires_grad and linea.is_grad_enabled()


def test_dlpack_shares_memory_with_torch_both_ways():
    ours = linea.arange(6.0).reshape(2, 3)
    theirs = torch.from_dlpack(ours)
    theirs[0, 0] = 42.0
    assert ours[0, 0].item() == 42.0  # one memory
    back = torch.arange(4.0)
    shared = linea.from_dlpack(back)
    back[1] = -1.0
    assert shared.tolist() == [0.0, -1.0, 2.0, 3.0]
    assert torch.tensor(ours).tolist() == ours.tolist() and torch.tensor(linea.tensor(2.5)).item() == 2.5
    assert np.array(ours).tolist() == ours.tolist() and len(ours) == 2
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(linea.tensor(1.0))
    with pytest.raises(RuntimeError, match="detach"):
        torch.from_dlpack(linea.ones(2, requires_grad=True))
    with pytest.raises(BufferError, match="bfloat16"):
        linea.ones(2, dtype=linea.bfloat16).__dlpack__()
    with pytest.raises(TypeError, match="__dlpack__"):
        linea.from_dlpack([1, 2])


def test_linea_save_refuses_a_pytorch_name_and_load_points_to_io(tmp_path):
    with pytest.raises(ValueError, match="save_state_dict"):
        linea.save({"w": linea.ones(2)}, tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()
    for legacy in (False, True):
        path = tmp_path / f"torch{legacy}.pth"
        torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(linea.FormatError, match="linea.io.load_state_dict"):
            linea.load(path)
    from linea import io

    io.save_state_dict({"w": linea.ones(2)}, tmp_path / "model.pt")
    assert torch.load(tmp_path / "model.pt", weights_only=True)["w"].tolist() == [1.0, 1.0]
