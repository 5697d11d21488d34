"""Keras 3's Dense.quantize("int8") in linea's Keras flavour, against real Keras (torch backend):
the same int8 kernel and scales, the same outputs and input gradients, the same weights list
and config, and Keras's errors (unbuilt layer, bad mode, twice, float16)."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import keras as lk

keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
torch = pytest.importorskip("torch", reason="Keras's torch backend needs PyTorch")

RNG = np.random.default_rng(21)


def twins(units=7, inputs=12, activation=None, use_bias=True):
    kernel = RNG.standard_normal((inputs, units)).astype(np.float32)
    bias = RNG.standard_normal(units).astype(np.float32)
    ours = lk.layers.Dense(units, activation=activation, use_bias=use_bias)
    ours.build((None, inputs))
    theirs = keras.layers.Dense(units, activation=activation, use_bias=use_bias)
    theirs.build((None, inputs))
    weights = [kernel, bias] if use_bias else [kernel]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize("activation,use_bias", [(None, True), ("relu", True), ("tanh", False)])
def test_quantized_dense_matches_keras(activation, use_bias):
    ours, theirs = twins(activation=activation, use_bias=use_bias)
    ours.quantize("int8")
    theirs.quantize("int8")
    assert np.array_equal(ours.kernel.numpy(), keras.ops.convert_to_numpy(theirs._kernel))
    assert np.array_equal(ours.kernel_scale.numpy(), keras.ops.convert_to_numpy(theirs.kernel_scale))
    assert [w.path.split("/")[-1] for w in ours.weights] == [w.path.split("/")[-1] for w in theirs.weights]
    assert [w.trainable for w in ours.weights] == [w.trainable for w in theirs.weights]
    assert ours.kernel.dtype == linea.int8
    x = RNG.standard_normal((5, 12)).astype(np.float32)
    np.testing.assert_allclose(ours(x).numpy(), keras.ops.convert_to_numpy(theirs(x)),
                               rtol=1e-6, atol=1e-6)
    assert ours.get_config()["dtype"] == theirs.get_config()["dtype"]
    assert ours.dtype_policy_name == theirs.dtype_policy.name == "int8_from_float32"


def test_gradients_reach_the_input_and_the_bias_as_in_keras():
    ours, theirs = twins()
    ours.quantize("int8")
    theirs.quantize("int8")
    x = RNG.standard_normal((4, 12)).astype(np.float32)
    xt = linea.tensor(x, requires_grad=True)
    (ours(xt) ** 2).sum().backward()
    xk = torch.tensor(x, requires_grad=True)
    (theirs(xk) ** 2).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), xk.grad.numpy(), rtol=1e-5, atol=1e-5)
    bias = next(w for w in theirs.weights if w.path.endswith("bias"))
    np.testing.assert_allclose(ours.bias.grad.numpy(), bias.value.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert ours.kernel.grad is None


def test_keras_errors_for_bad_calls():
    layer = lk.layers.Dense(3, name="d")
    with pytest.raises(ValueError, match="Cannot quantize a layer that isn't yet built. Layer 'd'"):
        layer.quantize("int8")
    layer.build((None, 4))
    with pytest.raises(ValueError, match=r"Invalid quantization mode.*Received: mode=int9"):
        layer.quantize("int9")
    with pytest.raises(ValueError, match="must provide either `mode` or `config`"):
        layer.quantize()
    with pytest.raises(NotImplementedError, match="int8"):
        layer.quantize("int4")
    layer.quantize("int8")
    with pytest.raises(ValueError, match="already quantized with dtype_policy='int8_from_float32'"):
        layer.quantize("int8")
    half = lk.layers.Dense(3, dtype="float16")
    half.build((None, 4))
    with pytest.raises(ValueError, match="doesn't work well with compute_dtype='float16'"):
        half.quantize("int8")


def test_sequential_quantize_changes_every_dense_and_nothing_on_refusal(tmp_path):
    # Seeded: the bound below fails for about one draw in a thousand (a ReLU unit near 0 that
    # int8 flips), which the suite's order of tests once hit.
    linea.manual_seed(0)
    model = lk.Sequential([lk.Input((6,)), lk.layers.Dense(5, activation="relu"), lk.layers.Dense(2)])
    x = RNG.standard_normal((3, 6)).astype(np.float32)
    before = model(x).numpy()
    with pytest.raises(ValueError, match="Invalid quantization mode"):
        model.quantize("int7")
    assert all(layer.quantization_mode is None for layer in model.layers)
    model.quantize("int8")
    assert [layer.quantization_mode for layer in model.layers] == ["int8", "int8"]
    assert np.abs(model(x).numpy() - before).max() < 0.05 * np.abs(before).max()


def test_set_weights_after_quantize_repacks_the_kernel():
    ours, theirs = twins()
    ours.quantize("int8")
    theirs.quantize("int8")
    x = RNG.standard_normal((2, 12)).astype(np.float32)
    ours(x)
    bias, kernel, scale = ours.get_weights()
    kernel[0, 0] = -kernel[0, 0]
    ours.set_weights([bias, kernel, scale])
    theirs.set_weights([bias, kernel, scale])
    np.testing.assert_allclose(ours(x).numpy(), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-6,
                               atol=1e-6)


def test_quantized_keras_files_round_trip_with_real_keras(tmp_path):
    from linea.keras._saving import load_model

    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                               keras.layers.Dense(2)])
    theirs.quantize("int8")
    theirs.save(tmp_path / "keras.keras")
    theirs.save_weights(tmp_path / "keras.weights.h5")
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(theirs(x))
    ours = load_model(tmp_path / "keras.keras")
    assert [layer.quantization_mode for layer in ours.layers] == ["int8", "int8"]
    np.testing.assert_array_equal(ours(x).numpy(), expected)
    ours.save(tmp_path / "linea.keras")
    back = keras.models.load_model(tmp_path / "linea.keras")
    assert [layer.quantization_mode for layer in back.layers] == ["int8", "int8"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(back(x)), expected)
    twin = lk.Sequential([lk.Input((4,)), lk.layers.Dense(3, activation="relu"), lk.layers.Dense(2)])
    twin.quantize("int8")
    twin.load_weights(str(tmp_path / "keras.weights.h5"))
    np.testing.assert_array_equal(twin(x).numpy(), expected)
    float_model = lk.Sequential([lk.Input((4,)), lk.layers.Dense(3), lk.layers.Dense(2)])
    with pytest.raises(linea.FormatError, match="expects weights of shapes"):
        float_model.load_weights(str(tmp_path / "keras.weights.h5"))


def test_hostile_int8_keras_weights_are_refused_at_load_and_change_nothing(tmp_path):
    import h5py

    model = lk.Sequential([lk.Input((4,)), lk.layers.Dense(3)])
    model.quantize("int8")
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    before = model(x).numpy()
    model.save_weights(str(tmp_path / "good.weights.h5"))
    for index, value, message in [(2, 0.0, "finite and positive"), (2, np.nan, "finite and positive"),
                                  (0, -128, r"outside \[-127, 127\]")]:
        path = tmp_path / f"bad{index}.weights.h5"
        path.write_bytes((tmp_path / "good.weights.h5").read_bytes())
        with h5py.File(path, "r+") as handle:
            dataset = handle["layers/dense/vars"][str(index)]
            data = dataset[()]
            data.flat[0] = value
            dataset[...] = data
        with pytest.raises(linea.FormatError, match=message):
            model.load_weights(str(path))
        assert np.array_equal(model(x).numpy(), before)
