"""int8 dynamic quantization: exact int32 accumulators on every kernel path, the same outputs
whichever path runs, errors within torch's quantize_dynamic, Keras 3's int8 arithmetic, the
digits MLP's accuracy, 4× smaller weights in memory and on disk, and clear refusals."""
import os
import pathlib
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn
from linea.backend import _int8
from linea.backend._int8 import PackedWeight, kernel_paths, quantize_weight
from linea.quantization import QuantizedLinear, kernel_info, model_size, quantize_dynamic

from _helpers import train_demo_model

RNG = np.random.default_rng(12)
PATHS = kernel_paths()
SHAPES = [(1, 1, 1), (1, 1024, 1024), (3, 37, 21), (5, 3125, 50), (13, 64, 129), (64, 512, 512),
          (4, 4, 16), (7, 5, 17), (0, 5, 3), (2, 0, 3)]


def random_layer(n, k):
    weight = RNG.standard_normal((n, k)).astype(np.float32)
    return PackedWeight(*quantize_weight(weight)), weight


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_accumulators_equal_an_int64_reference_on_every_path(path, m, k, n):
    packed, _ = random_layer(n, k)
    xq = RNG.integers(-127, 128, (m, k)).astype(np.int8)
    reference = xq.astype(np.int64) @ packed.int8().astype(np.int64).T
    assert np.array_equal(packed.accumulate(xq, path), reference)


@pytest.mark.parametrize("path", PATHS)
def test_extreme_values_never_saturate(path):
    # ±127 everywhere: every vpmaddubsw pair is 2·127·127 = 32258, the int16 maximum case.
    k, n = 2048, 32
    wq = np.where(RNG.random((n, k)) < 0.5, 127, -127).astype(np.int8)
    packed = PackedWeight(wq, np.ones(n, np.float32))
    for xq in (np.full((3, k), 127, np.int8), np.full((3, k), -127, np.int8),
               np.where(RNG.random((3, k)) < 0.5, 127, -127).astype(np.int8)):
        reference = xq.astype(np.int64) @ wq.astype(np.int64).T
        assert np.array_equal(packed.accumulate(xq, path), reference)
    same = np.full((1, k), 127, np.int8)
    assert packed.accumulate(same, path)[0, 0] == 127 * int(wq[0].astype(np.int64).sum())


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_every_path_gives_bit_identical_outputs(m, k, n):
    packed, _ = random_layer(n, k)
    x = RNG.standard_normal((m, k)).astype(np.float32)
    bias = RNG.standard_normal(n).astype(np.float32)
    outputs = [packed.matmul(x, bias, path) for path in PATHS]
    for output in outputs[1:]:
        assert np.array_equal(output, outputs[0])


@pytest.mark.parametrize("path", PATHS)
def test_rows_holding_inf_or_nan_give_nan_and_leave_other_rows_alone(path):
    packed, _ = random_layer(8, 40)
    x = RNG.standard_normal((4, 40)).astype(np.float32)
    clean = packed.matmul(x, None, path)
    x[1, 3], x[2, 0] = np.nan, -np.inf
    dirty = packed.matmul(x, None, path)
    assert np.isnan(dirty[1]).all() and np.isnan(dirty[2]).all()
    assert np.array_equal(dirty[[0, 3]], clean[[0, 3]])


def test_the_numpy_fallback_runs_when_the_extension_is_missing(monkeypatch):
    packed, weight = random_layer(16, 70)
    x = RNG.standard_normal((3, 70)).astype(np.float32)
    expected = packed.matmul(x, None, "numpy")
    monkeypatch.setattr(_int8, "_native", None)
    monkeypatch.setattr(_int8, "_NATIVE_ERROR", "No module named 'linea.backend._int8_kernel'")
    info = kernel_info()
    assert info["path"] == "numpy" and not info["extension"] and "not built" in info["reason"]
    fallback = PackedWeight(*quantize_weight(weight))
    assert np.array_equal(fallback.matmul(x), expected)


def test_kernel_path_can_be_forced_and_a_missing_one_is_refused(monkeypatch):
    monkeypatch.setenv("LINEA_INT8_KERNEL", "numpy")
    assert kernel_info()["path"] == "numpy" and "LINEA_INT8_KERNEL" in kernel_info()["reason"]
    monkeypatch.setenv("LINEA_INT8_KERNEL", "avx9000")
    with pytest.raises(ValueError, match="avx9000.*not available"):
        kernel_info()


def test_the_package_builds_without_a_compiler(tmp_path):
    root = pathlib.Path(__file__).resolve().parents[2]
    shutil.copy(root / "setup.py", tmp_path)
    (tmp_path / "src/linea/backend").mkdir(parents=True)
    shutil.copy(root / "src/linea/backend/_int8_kernel.c", tmp_path / "src/linea/backend")
    env = dict(os.environ, CC="/bin/false", LDSHARED="/bin/false")
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.rglob("*.so"))


def test_in_features_beyond_exact_int32_accumulation_are_refused():
    with pytest.raises(ValueError, match="int32 accumulation"):
        PackedWeight(np.zeros((1, _int8.MAX_IN_FEATURES + 1), np.int8), np.ones(1, np.float32))


# ---- against PyTorch's quantize_dynamic ----------------------------------------------------

INPUTS = {
    "normal": lambda shape: RNG.standard_normal(shape),
    "after relu": lambda shape: np.maximum(RNG.standard_normal(shape), 0),
    "uniform": lambda shape: RNG.uniform(-3, 3, shape),
    "outliers": lambda shape: RNG.standard_normal(shape) * np.where(RNG.random(shape) < 0.01, 20, 1),
}


@pytest.mark.parametrize("inputs", list(INPUTS))
@pytest.mark.parametrize("m,k,n", [(1, 256, 128), (32, 512, 512), (16, 64, 10)])
def test_error_is_within_torch_quantize_dynamic_error(inputs, m, k, n):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")
    linear = nn.Linear(k, n)
    x = INPUTS[inputs]((m, k)).astype(np.float32)
    exact = linear(linea.tensor(x)).numpy().astype(np.float64)
    ours = quantize_dynamic(linear)(linea.tensor(x)).numpy()
    twin = torch.nn.Linear(k, n)
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(linear.weight.numpy()))
        twin.bias.copy_(torch.from_numpy(linear.bias.numpy()))
    theirs = torch.ao.quantization.quantize_dynamic(
        torch.nn.Sequential(twin), {torch.nn.Linear}, dtype=torch.qint8)(torch.from_numpy(x))
    our_error = np.abs(ours - exact).max()
    torch_error = np.abs(theirs.detach().numpy() - exact).max()
    assert our_error <= 1.5 * torch_error, (our_error, torch_error)


def test_outputs_equal_keras_int8_dense_on_the_same_weights():
    keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
    linear = nn.Linear(48, 20)
    x = RNG.standard_normal((6, 48)).astype(np.float32)
    layer = keras.layers.Dense(20)
    layer.build((None, 48))
    layer.set_weights([linear.weight.numpy().T, linear.bias.numpy()])
    layer.quantize("int8")
    kernel = keras.ops.convert_to_numpy(layer._kernel)
    kernel_scale = keras.ops.convert_to_numpy(layer.kernel_scale)
    assert kernel.dtype == np.int8
    quantized = quantize_dynamic(linear)
    assert np.array_equal(quantized.weight().numpy(), kernel.T)
    assert np.array_equal(quantized.weight_scale().numpy(), kernel_scale)
    expected = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(quantized(linea.tensor(x)).numpy(), expected, rtol=1e-6, atol=1e-6)


# ---- models -------------------------------------------------------------------------------

def test_digits_accuracy_stays_within_half_a_point_of_float32():
    from linea import _demo

    model, x_test, y_test = train_demo_model(10, seed=0)
    _, float_accuracy, _ = _demo.evaluate(model, x_test, y_test)
    with linea.no_grad():
        _, int8_accuracy, _ = _demo.evaluate(quantize_dynamic(model), x_test, y_test)
    assert float_accuracy > 0.9
    assert abs(int8_accuracy - float_accuracy) <= 0.005, (float_accuracy, int8_accuracy)


def test_weights_are_four_times_smaller_in_memory_and_on_disk(tmp_path):
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 512))
    quantized = quantize_dynamic(model)
    assert model_size(model) / model_size(quantized) >= 3.9
    linea.save(model.state_dict(), tmp_path / "float.safetensors")
    linea.save(quantized.state_dict(), tmp_path / "int8.safetensors")
    ratio = (tmp_path / "float.safetensors").stat().st_size / (tmp_path / "int8.safetensors").stat().st_size
    assert ratio >= 3.9


def test_the_copy_leaves_the_float_model_untouched_and_keeps_other_layers():
    model = nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))
    before = {key: value.numpy().copy() for key, value in model.state_dict().items()}
    quantized = quantize_dynamic(model)
    assert isinstance(model[0], nn.Linear) and isinstance(quantized[0], QuantizedLinear)
    assert isinstance(quantized[1], nn.Tanh) and isinstance(quantized[2], QuantizedLinear)
    for key, value in model.state_dict().items():
        assert np.array_equal(value.numpy(), before[key])
    assert isinstance(quantize_dynamic(nn.Linear(4, 2)), QuantizedLinear)


def test_save_and_load_reproduce_the_outputs_exactly(tmp_path):
    model = quantize_dynamic(nn.Sequential(nn.Linear(30, 20), nn.ReLU(), nn.Linear(20, 5, bias=False)))
    linea.save(model.state_dict(), tmp_path / "q.safetensors")
    state = linea.load(tmp_path / "q.safetensors")
    assert state["0.weight"].dtype == linea.int8 and state["0.weight_scale"].dtype == linea.float32
    fresh = quantize_dynamic(nn.Sequential(nn.Linear(30, 20), nn.ReLU(), nn.Linear(20, 5, bias=False)))
    fresh.load_state_dict(state)
    x = linea.randn(4, 30)
    assert np.array_equal(fresh(x).numpy(), model(x).numpy())


def test_bad_state_dicts_are_refused_and_change_nothing():
    model = quantize_dynamic(nn.Sequential(nn.Linear(6, 4)))
    x = linea.randn(2, 6)
    before = model(x).numpy()
    good = model.state_dict()
    for key, value, message in [
        ("0.weight", np.zeros((4, 6), np.float32), "must be int8"),
        ("0.weight", np.full((4, 6), -128, np.int8), r"\[-127, 127\]"),
        ("0.weight_scale", np.zeros(4, np.float32), "finite and positive"),
        ("0.weight", np.zeros((4, 7), np.int8), "size mismatch"),
    ]:
        bad = dict(good)
        bad["0.bias"] = np.full(4, 9.0, np.float32)
        bad[key] = value
        with pytest.raises(linea.StateDictError, match=message):
            model.load_state_dict(bad)
        assert np.array_equal(model(x).numpy(), before)


def test_backward_is_refused_with_a_clear_error():
    model = quantize_dynamic(nn.Sequential(nn.Linear(5, 3)))
    x = linea.randn(2, 5, requires_grad=True)
    with pytest.raises(RuntimeError, match="no backward.*quantize_dynamic"):
        model(x).sum().backward()
    with linea.no_grad():
        assert model(x).requires_grad is False


def test_inputs_of_any_rank_and_their_errors():
    layer = quantize_dynamic(nn.Linear(6, 4))
    x = RNG.standard_normal((2, 3, 6)).astype(np.float32)
    flat = layer(linea.tensor(x.reshape(6, 6))).numpy()
    assert np.array_equal(layer(linea.tensor(x)).numpy(), flat.reshape(2, 3, 4))
    assert layer(linea.tensor(x[0, 0])).shape == (4,)
    with pytest.raises(linea.ShapeError, match=r"\(\*, 6\)"):
        layer(linea.randn(2, 5))
    with pytest.raises(linea.DTypeError, match="float32"):
        layer(linea.randn(2, 6, dtype=linea.float64))
    with pytest.raises(ValueError, match="int8"):
        quantize_dynamic(nn.Linear(2, 2), dtype="int4")


def test_threads_share_one_quantized_layer():
    layer = quantize_dynamic(nn.Linear(256, 128))
    inputs = [linea.tensor(RNG.standard_normal((8, 256)).astype(np.float32)) for _ in range(8)]
    expected = [layer(x).numpy() for x in inputs]
    results = [None] * 8

    def work(index):
        for _ in range(20):
            results[index] = layer(inputs[index]).numpy()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result, want in zip(results, expected):
        assert np.array_equal(result, want)


# ---- interchange ---------------------------------------------------------------------------

@pytest.mark.parametrize("rank", [2, 3])
def test_onnx_export_runs_in_onnxruntime_with_the_same_numbers(tmp_path, rank):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is the oracle; install the test extra")
    model = quantize_dynamic(nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 5, bias=False)))
    path = tmp_path / "int8.onnx"
    linea.io.save_model(model, path, input_rank=rank)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in __import__("onnx").load(str(path)).graph.node}
    assert "MatMulInteger" in ops
    x = RNG.standard_normal((3, 7, 20)[3 - rank:]).astype(np.float32)
    x.reshape(-1, 20)[1, 4] = np.nan
    ours = model(linea.tensor(x)).numpy()
    theirs = session.run(None, {"input": x})[0]
    assert np.array_equal(theirs, ours, equal_nan=True)
    assert np.isnan(theirs.reshape(-1, 5)[1]).all()


def test_keras_quantized_model_exports_to_onnx_and_refuses_float_formats(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is the oracle; install the test extra")
    from linea import keras as lk

    model = lk.Sequential([lk.Input((6,)), lk.layers.Dense(5, activation="relu"), lk.layers.Dense(3)])
    model.quantize("int8")
    path = tmp_path / "keras-int8.onnx"
    linea.io.save_model(model, path)
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(theirs, model(x).numpy(), rtol=1e-6, atol=1e-6)
    for name in ("int8.safetensors", "int8.pt"):
        with pytest.raises(ValueError, match="ONNX or Keras files only"):
            linea.io.save_model(model, tmp_path / name)
        assert not (tmp_path / name).exists()


def test_quantized_onnx_files_are_refused_by_the_float_reader(tmp_path):
    model = quantize_dynamic(nn.Sequential(nn.Linear(4, 3)))
    linea.io.save_model(model, tmp_path / "q.onnx")
    with pytest.raises(linea.FormatError, match="INT8"):
        linea.io.load_model(tmp_path / "q.onnx")


def test_int8_models_move_between_the_flavours_and_real_keras_files(tmp_path):
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
    model = quantize_dynamic(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)))
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    expected = model(linea.tensor(x)).numpy()
    linea.io.save_model(model, tmp_path / "int8.keras")
    theirs = keras.models.load_model(tmp_path / "int8.keras")
    assert [layer.quantization_mode for layer in theirs.layers] == ["int8", "int8"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(theirs(x)), expected, rtol=1e-6, atol=1e-6)
    back = linea.io.load_model(tmp_path / "int8.keras")
    assert isinstance(back[0], QuantizedLinear)
    assert np.array_equal(back(linea.tensor(x)).numpy(), expected)


@pytest.mark.parametrize("path", PATHS[:-1])
def test_the_kernel_gives_the_same_outputs_on_any_thread_count(path):
    # 63 blocks: uneven shares and a short tail; 2.6e8 multiply-adds, so up to 8 threads start
    packed, _ = random_layer(1000, 1024)
    x = RNG.standard_normal((255, 1024)).astype(np.float32)
    previous = _int8.get_threads()
    try:
        _int8.set_threads(1)
        single = packed.matmul(x, None, path)
        for threads in (2, 3, 8):
            _int8.set_threads(threads)
            assert np.array_equal(packed.matmul(x, None, path), single)
    finally:
        _int8.set_threads(previous)


@pytest.mark.parametrize("dtype", [linea.bfloat16, linea.float16, linea.float64])
def test_a_low_or_high_precision_float_model_quantizes_from_its_exact_values(dtype):
    source = nn.Linear(16, 8).to(dtype)
    quantized = quantize_dynamic(source)
    widened = nn.Linear(16, 8)
    widened.load_state_dict({name: value.float() for name, value in source.state_dict().items()})
    x = linea.tensor(RNG.standard_normal((3, 16)).astype(np.float32))
    assert np.array_equal(quantized(x).numpy(), quantize_dynamic(widened)(x).numpy())
    assert source.weight.dtype is dtype  # the source model is left as it was
