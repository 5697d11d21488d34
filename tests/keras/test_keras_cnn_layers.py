"""Keras's Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D and BatchNormalization
against real Keras 3 (KERAS_BACKEND=torch): configs, weights, outputs and input gradients in
float32 and float64, BatchNormalization's training steps and moving statistics."""
import json

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
torch = pytest.importorskip("torch")

import linea  # noqa: E402
from linea import keras as lk  # noqa: E402
from _helpers import assert_close  # noqa: E402

RNG = np.random.default_rng(43)
R = {"float32": 1e-5, "float64": 1e-10}

LAYERS = {
    "Conv2D": (lambda m, d: m.layers.Conv2D(4, 3, dtype=d), (2, 7, 6, 3)),
    "Conv2D-same-strided": (lambda m, d: m.layers.Conv2D(5, (3, 2), strides=2, padding="same",
                                                         activation="relu", dtype=d), (2, 7, 8, 2)),
    "Conv2D-same-even-kernel": (lambda m, d: m.layers.Conv2D(3, 4, padding="same", dtype=d), (1, 6, 5, 2)),
    "Conv2D-dilated-nobias": (lambda m, d: m.layers.Conv2D(3, 2, dilation_rate=2, use_bias=False,
                                                           dtype=d), (2, 6, 6, 2)),
    "Conv2D-groups": (lambda m, d: m.layers.Conv2D(4, 3, groups=2, padding="same", dtype=d), (1, 5, 5, 4)),
    "Conv2D-channels-first": (lambda m, d: m.layers.Conv2D(3, 3, data_format="channels_first",
                                                           dtype=d), (2, 2, 6, 5)),
    "MaxPooling2D": (lambda m, d: m.layers.MaxPooling2D(dtype=d), (2, 6, 7, 3)),
    "MaxPooling2D-same": (lambda m, d: m.layers.MaxPooling2D(3, strides=2, padding="same", dtype=d),
                          (2, 8, 7, 2)),
    "MaxPooling2D-channels-first": (lambda m, d: m.layers.MaxPooling2D(2, data_format="channels_first",
                                                                       dtype=d), (1, 2, 6, 6)),
    "AveragePooling2D": (lambda m, d: m.layers.AveragePooling2D(2, dtype=d), (2, 6, 7, 3)),
    "AveragePooling2D-same-even": (lambda m, d: m.layers.AveragePooling2D(3, strides=1, padding="same",
                                                                          dtype=d), (2, 5, 5, 2)),
    "AveragePooling2D-same-uneven": (lambda m, d: m.layers.AveragePooling2D(2, strides=1, padding="same",
                                                                            dtype=d), (2, 5, 4, 2)),
    "AveragePooling2D-same-strided": (lambda m, d: m.layers.AveragePooling2D(3, strides=2, padding="same",
                                                                             dtype=d), (1, 8, 7, 2)),
    "GlobalAveragePooling2D": (lambda m, d: m.layers.GlobalAveragePooling2D(dtype=d), (2, 5, 4, 3)),
    "GlobalAveragePooling2D-keepdims": (lambda m, d: m.layers.GlobalAveragePooling2D(keepdims=True,
                                                                                     dtype=d), (2, 5, 4, 3)),
    "Flatten-channels-first": (lambda m, d: m.layers.Flatten(data_format="channels_first", dtype=d),
                               (2, 3, 4, 5)),
    "Flatten": (lambda m, d: m.layers.Flatten(dtype=d), (2, 3, 4, 5)),
    "BatchNormalization-inference": (lambda m, d: m.layers.BatchNormalization(dtype=d), (4, 5, 5, 3)),
}


def keras_output_and_gradient(layer, x, upstream, training=False):
    tensor = torch.tensor(x, requires_grad=True)
    out = layer(tensor, training=training)
    out.backward(torch.tensor(upstream))
    return out.detach().numpy(), tensor.grad.numpy()


def linea_output_and_gradient(layer, x, upstream, training=False):
    tensor = linea.tensor(x, requires_grad=True)
    out = layer(tensor, training=training)
    out.backward(linea.tensor(upstream))
    return out.numpy(), tensor.grad.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_keras(name, dtype, monkeypatch):
    from keras.src.backend.common import dtypes

    # Keras 3.15 computes float64 in float32 on its torch backend (see test_keras.py's
    # float64_keras); lifting that mapping makes it an exact float64 oracle
    monkeypatch.setitem(dtypes.BIT64_TO_BIT32_DTYPE, "float64", "float64")
    factory, shape = LAYERS[name]
    theirs = factory(keras, dtype)
    theirs.build(shape)
    ours = type(factory(lk, dtype)).from_config(theirs.get_config())  # Keras's own config
    ours.build(shape)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [RNG.standard_normal(tuple(w.shape)).astype(dtype) for w in theirs.weights]
    if name.startswith("BatchNormalization"):
        weights[-1] = np.abs(weights[-1]) + 0.1  # a variance
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = RNG.standard_normal(shape).astype(dtype)
    expected_shape = tuple(theirs.compute_output_shape(shape))
    assert ours.compute_output_shape(shape) == expected_shape
    upstream = RNG.standard_normal(expected_shape).astype(dtype)
    out_theirs, grad_theirs = keras_output_and_gradient(theirs, x, upstream)
    out_ours, grad_ours = linea_output_and_gradient(ours, x, upstream)
    assert_close(out_ours, out_theirs, R[dtype])
    assert_close(grad_ours, grad_theirs, R[dtype])
    assert json.loads(json.dumps(ours.get_config())) == json.loads(json.dumps(theirs.get_config()))


@pytest.mark.parametrize("config", [dict(), dict(momentum=0.9, epsilon=1e-5), dict(axis=1),
                                    dict(center=False), dict(scale=False)], ids=str)
def test_batch_normalization_training_steps_match_keras(config):
    shape = (6, 4, 3, 5)
    theirs, ours = keras.layers.BatchNormalization(**config), lk.layers.BatchNormalization(**config)
    theirs.build(shape)
    ours.build(shape)
    weights = [RNG.standard_normal(tuple(w.shape)).astype(np.float32) for w in theirs.weights]
    weights[-1] = np.abs(weights[-1]) + 0.5
    theirs.set_weights(weights)
    ours.set_weights(weights)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.name for w in ours.trainable_weights] == [w.name for w in theirs.trainable_weights]
    for step in range(3):
        x = (RNG.standard_normal(shape) * 2 + step).astype(np.float32)
        upstream = RNG.standard_normal(shape).astype(np.float32)
        out_theirs, grad_theirs = keras_output_and_gradient(theirs, x, upstream, training=True)
        out_ours, grad_ours = linea_output_and_gradient(ours, x, upstream, training=True)
        assert_close(out_ours, out_theirs, 1e-4)
        assert_close(grad_ours, grad_theirs, 1e-4)
        for mine, real in zip(ours.get_weights(), theirs.get_weights()):
            assert_close(mine, np.asarray(real), 1e-5)


def test_a_frozen_batch_normalization_runs_in_inference_mode_like_keras():
    theirs, ours = keras.layers.BatchNormalization(), lk.layers.BatchNormalization()
    for layer in (theirs, ours):
        layer.build((4, 3))
        layer.trainable = False
    x = RNG.standard_normal((4, 3)).astype(np.float32) * 3
    assert_close(ours(x, training=True), keras.ops.convert_to_numpy(theirs(x, training=True)))
    assert ours.moving_mean.tolist() == [0.0, 0.0, 0.0]
    ours.trainable = True
    assert [w.name for w in ours.trainable_weights] == ["gamma", "beta"]


def test_a_keras_cnn_fits_like_keras():
    def layers(m):
        return [m.layers.Input((8, 8, 1)), m.layers.Conv2D(4, 3, activation="relu"),
                m.layers.BatchNormalization(), m.layers.MaxPooling2D(),
                m.layers.Flatten(), m.layers.Dense(3)]

    theirs, ours = keras.Sequential(layers(keras)), lk.Sequential(layers(lk))
    ours.set_weights(theirs.get_weights())
    for model in (theirs, ours):
        model.compile(optimizer=model is theirs and keras.optimizers.SGD(0.05) or lk.optimizers.SGD(0.05),
                      loss="mse")
    x = RNG.standard_normal((16, 8, 8, 1)).astype(np.float32)
    y = RNG.standard_normal((16, 3)).astype(np.float32)
    theirs.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for mine, real in zip(ours.get_weights(), theirs.get_weights()):
        assert_close(mine, np.asarray(real), 1e-4)
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), 1e-4)


def test_conv_and_pooling_errors_are_keras_errors():
    with pytest.raises(ValueError, match="filters"):
        lk.layers.Conv2D(0, 3)
    with pytest.raises(ValueError, match="padding"):
        lk.layers.Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="dilation_rate"):
        lk.layers.Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="divisible"):
        lk.layers.Conv2D(4, 3, groups=2)(linea.ones(1, 5, 5, 3))
    with pytest.raises(linea.ShapeError, match="expected ndim=4"):
        lk.layers.MaxPooling2D()(linea.ones(2, 4, 4))
    with pytest.raises(NotImplementedError, match="renorm"):
        lk.layers.BatchNormalization(renorm=True)
