"""bfloat16 and float16 Linear layers against PyTorch's CPU kernels: float32 BLAS on the widened
values, rounded once to the layer's dtype, forward and backward."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

DTYPES = {"bfloat16": (linea.bfloat16, torch.bfloat16), "float16": (linea.float16, torch.float16)}
RNG = np.random.default_rng(12)


def ulp(values: np.ndarray, name: str) -> np.ndarray:
    """One unit in the last place of each value in ``name`` (bfloat16: 8 bits, float16: 11)."""
    mantissa = 8 if name == "bfloat16" else 11
    exponent = np.floor(np.log2(np.maximum(np.abs(values), np.finfo(np.float32).tiny)))
    if name == "float16":
        exponent = np.maximum(exponent, -14)  # float16's subnormals share one spacing
    return 2.0 ** (exponent - (mantissa - 1))


def assert_within_one_ulp(ours, theirs, name):
    ours, theirs = ours.float().detach().numpy(), theirs.float().detach().numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_array_less(np.abs(ours - theirs), ulp(theirs, name) * 1.0001 + 1e-30)


def twins(in_features, out_features, name, bias=True):
    ours_dtype, theirs_dtype = DTYPES[name]
    theirs = torch.nn.Linear(in_features, out_features, bias=bias).to(theirs_dtype)
    ours = nn.Linear(in_features, out_features, bias=bias, dtype=ours_dtype)
    with linea.no_grad():
        ours.weight.copy_(linea.tensor(theirs.weight.detach().float().numpy()).to(ours_dtype))
        if bias:
            ours.bias.copy_(linea.tensor(theirs.bias.detach().float().numpy()).to(ours_dtype))
    return ours, theirs


@pytest.mark.parametrize("name", sorted(DTYPES))
@pytest.mark.parametrize("shape,out_features,bias", [((3, 7), 5, True), ((2, 4, 64), 33, True),
                                                     ((1, 512), 512, True), ((16, 96), 40, False)],
                         ids=str)
def test_linear_forward_and_backward_match_torch_within_one_ulp(name, shape, out_features, bias):
    ours_dtype, theirs_dtype = DTYPES[name]
    ours, theirs = twins(shape[-1], out_features, name, bias)
    x = RNG.standard_normal(shape).astype(np.float32)
    theirs_x = torch.from_numpy(x).to(theirs_dtype).requires_grad_()
    ours_x = linea.tensor(theirs_x.detach().float().numpy()).to(ours_dtype).requires_grad_()
    ours_y, theirs_y = ours(ours_x), theirs(theirs_x)
    assert ours_y.dtype == ours_dtype
    assert_within_one_ulp(ours_y, theirs_y, name)
    g = RNG.standard_normal(ours_y.shape).astype(np.float32)
    theirs_y.backward(torch.from_numpy(g).to(theirs_dtype))
    ours_y.backward(linea.tensor(g).to(ours_dtype))
    assert ours.weight.grad.dtype == ours_x.grad.dtype == ours_dtype
    assert_within_one_ulp(ours_x.grad, theirs_x.grad, name)
    assert_within_one_ulp(ours.weight.grad, theirs.weight.grad, name)
    if bias:
        assert_within_one_ulp(ours.bias.grad, theirs.bias.grad, name)


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_the_product_is_float32_math_on_the_rounded_values_rounded_once(name):
    ours_dtype, _ = DTYPES[name]
    layer = nn.Linear(6, 4, dtype=ours_dtype)
    x = linea.randn(3, 6).to(ours_dtype)
    expected = (x.float().numpy() @ layer.weight.float().detach().numpy().T
                + layer.bias.float().detach().numpy()).astype(ours_dtype.numpy)
    assert layer(x).numpy().tobytes() == expected.tobytes()


def test_module_and_tensor_conversions_to_bfloat16():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).bfloat16()
    assert {p.dtype for p in model.parameters()} == {linea.bfloat16}
    x = linea.randn(5, 4).bfloat16()
    assert x.dtype == linea.bfloat16 and model(x).dtype == linea.bfloat16
    assert linea.tensor(np.ones(2, linea.bfloat16.numpy)).dtype == linea.bfloat16


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_low_precision_state_dicts_round_trip_with_torch_files(name, tmp_path):
    from safetensors.torch import save_file

    ours_dtype, theirs_dtype = DTYPES[name]
    theirs = torch.nn.Linear(5, 3).to(theirs_dtype)
    save_file(theirs.state_dict(), str(tmp_path / "t.safetensors"))
    torch.save(theirs.state_dict(), tmp_path / "t.pt")
    for path in (tmp_path / "t.safetensors", tmp_path / "t.pt"):
        state = linea.io.load_state_dict(path)
        layer = nn.Linear(5, 3, dtype=ours_dtype)
        layer.load_state_dict({k: linea.Tensor._make(np.asarray(v)) for k, v in state.items()})
        assert layer.weight.float().detach().numpy().tobytes() == \
            theirs.weight.detach().float().numpy().tobytes()
    linea.save(layer.state_dict(), tmp_path / "ours.safetensors")
    from safetensors.torch import load_file

    back = load_file(str(tmp_path / "ours.safetensors"))
    assert back["weight"].dtype == theirs_dtype
    assert torch.equal(back["weight"], theirs.weight.detach())


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_a_low_precision_torch_file_loads_as_a_model_of_that_dtype(name, tmp_path):
    ours_dtype, theirs_dtype = DTYPES[name]
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).to(theirs_dtype)
    torch.save(theirs.state_dict(), tmp_path / "m.pt")
    model = linea.io.load_model(tmp_path / "m.pt", activation="tanh")
    assert {p.dtype for p in model.parameters()} == {ours_dtype}
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x).to(theirs_dtype))
    with linea.no_grad():
        got = model(linea.tensor(x).to(ours_dtype))
    np.testing.assert_allclose(got.float().numpy(), expected.float().numpy(), rtol=2 ** -6, atol=2e-2)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_pt_files_carry_bf16_and_fp16_both_ways(tmp_path, dtype):
    layer = nn.Linear(5, 3).to(getattr(linea, dtype))
    linea.io.save_state_dict(layer.state_dict(), tmp_path / "linea.pt")
    state = torch.load(tmp_path / "linea.pt", weights_only=True)
    assert state["weight"].dtype == getattr(torch, dtype)
    assert torch.equal(state["weight"].float(), torch.from_numpy(layer.weight.float().numpy()))
    twin = torch.nn.Linear(5, 3).to(getattr(torch, dtype))
    torch.save(twin.state_dict(), tmp_path / "torch.pt")
    loaded = linea.io.load_state_dict(tmp_path / "torch.pt")
    assert loaded["weight"].dtype.name == dtype
    np.testing.assert_array_equal(loaded["weight"].astype(np.float32), twin.weight.float().detach().numpy())


def test_keras_files_with_bf16_and_mixed_policies_round_trip_with_real_keras(tmp_path):
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras 3 is an oracle; install the test extra")
    from linea import keras as lk

    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, dtype="mixed_bfloat16"),
                               keras.layers.Dense(2, dtype="bfloat16")])
    theirs.save(tmp_path / "keras.keras")
    ours = lk.models.load_model(tmp_path / "keras.keras")
    assert [layer.dtype_policy.name for layer in ours.layers] == ["mixed_bfloat16", "bfloat16"]
    assert [layer.kernel.dtype for layer in ours.layers] == [linea.float32, linea.bfloat16]
    x = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras.ops.cast(theirs(x), "float32"))
    np.testing.assert_array_equal(ours(x).float().numpy(), expected)
    ours.save(tmp_path / "linea.keras")
    back = keras.models.load_model(tmp_path / "linea.keras")
    assert [layer.dtype_policy.name for layer in back.layers] == ["mixed_bfloat16", "bfloat16"]
    for a, b in zip(theirs.weights, back.weights):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.ops.cast(a, "float32")),
                                      keras.ops.convert_to_numpy(keras.ops.cast(b, "float32")))


def test_float16_models_export_to_onnx_run_in_onnxruntime_and_read_back(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is an oracle; install the test extra")
    model = nn.Sequential(nn.Linear(8, 6), nn.GELU(), nn.LayerNorm(6), nn.Linear(6, 3),
                          nn.Softmax(dim=-1)).half()
    linea.io.save_model(model, tmp_path / "half.onnx")
    x = np.random.default_rng(6).standard_normal((5, 8)).astype(np.float16)
    ours = model(linea.tensor(x)).numpy()
    session = ort.InferenceSession(str(tmp_path / "half.onnx"), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"input": x})[0]
    assert theirs.dtype == np.float16
    ulp = 2.0 ** -10 * np.maximum(np.abs(ours.astype(np.float32)), 2.0 ** -4)
    assert np.all(np.abs(theirs.astype(np.float32) - ours.astype(np.float32)) <= 2 * ulp)
    back = linea.io.load_model(tmp_path / "half.onnx")
    assert back[0].weight.dtype == linea.float16
    assert np.array_equal(back(linea.tensor(x)).numpy(), ours)


def test_bfloat16_onnx_export_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="no bfloat16 Gemm"):
        linea.io.save_model(nn.Linear(3, 2).bfloat16(), tmp_path / "bf16.onnx")
    assert not (tmp_path / "bf16.onnx").exists()
