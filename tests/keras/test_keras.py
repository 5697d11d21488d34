"""The Keras flavour against real Keras 3 (KERAS_BACKEND=torch): layers, initializers, fit, files."""
import os

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
stats = pytest.importorskip("scipy.stats")

import linea  # noqa: E402
from linea import keras as lk  # noqa: E402
from linea import convert, nn  # noqa: E402
from _helpers import assert_close  # noqa: E402

RNG = np.random.default_rng(31)


@pytest.fixture
def float64_keras(monkeypatch):
    """Keras in float64 that really computes in float64.

    Keras 3.15's dtypes.result_type maps float64 to float32 on non-TensorFlow
    backends (BIT64_TO_BIT32_DTYPE, "to align with JAX"), so its torch backend
    runs float64 matmuls in float32 — ~1e-7 relative error, far above float64
    round-off. Lifting that mapping here makes Keras an exact float64 oracle.
    """
    from keras.src.backend.common import dtypes

    monkeypatch.setitem(dtypes.BIT64_TO_BIT32_DTYPE, "float64", "float64")
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # the policy, once made, no longer follows floatx
    lk.config.set_floatx("float64")
    yield
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
    lk.config.set_floatx("float32")


def to_numpy(value):
    return keras.ops.convert_to_numpy(value)


ACTIVATIONS = [None, "linear", "relu", "gelu", "tanh", "sigmoid", "softmax", "elu", "selu",
               "softplus", "softsign", "silu", "leaky_relu", "relu6", "exponential",
               "hard_sigmoid", "mish", "log_softmax"]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3), (2, 2, 3, 3)], ids=str)
def test_dense_matches_keras(shape, activation):
    theirs = keras.layers.Dense(7, activation=activation)
    theirs.build(shape)
    ours = lk.layers.Dense(7, activation=activation)
    ours.build(shape)
    ours.set_weights(theirs.get_weights())
    x = RNG.standard_normal(shape).astype(np.float32)
    assert_close(ours(x), to_numpy(theirs(x)), 1e-5)


def test_get_weights_order_and_shapes_match_keras():
    theirs = keras.layers.Dense(30)
    theirs.build((None, 3))
    ours = lk.layers.Dense(30)
    ours.build((None, 3))
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    norm_theirs, norm_ours = keras.layers.LayerNormalization(), lk.layers.LayerNormalization()
    norm_theirs.build((None, 5))
    norm_ours.build((None, 5))
    assert [w.shape for w in norm_ours.get_weights()] == [w.shape for w in norm_theirs.get_weights()]
    assert [v.path.split("/")[-1] for v in ours.weights] == [v.path.split("/")[-1] for v in theirs.weights]


def test_seed_example_side_by_side():
    theirs = keras.layers.Dense(30, input_shape=(3,), activation=None)
    ours = lk.layers.Dense(30, input_shape=(3,), activation=None)
    assert tuple(theirs(np.ones((5, 3), np.float32)).shape) == ours(np.ones((5, 3))).shape == (5, 30)
    assert to_numpy(theirs.kernel).shape == ours.kernel.shape == (3, 30)


def test_layer_norm_dropout_activation_flatten_match_keras():
    x = RNG.standard_normal((4, 3, 6)).astype(np.float32)
    for make in (lambda m: m.layers.LayerNormalization(epsilon=1e-3),
                 lambda m: m.layers.Activation("tanh"), lambda m: m.layers.Flatten(),
                 lambda m: m.layers.Dropout(0.4)):
        theirs, ours = make(keras), make(lk)
        expected = to_numpy(theirs(x))
        if ours.weights or theirs.weights:
            ours.build(x.shape)
            ours.set_weights([RNG.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()])
            theirs.set_weights(ours.get_weights())
            expected = to_numpy(theirs(x))
        assert_close(ours(x), expected, 1e-5)


KERAS_INITIALIZERS = {
    "GlorotUniform": {}, "GlorotNormal": {}, "HeNormal": {}, "HeUniform": {}, "LecunNormal": {},
    "LecunUniform": {}, "RandomNormal": {"mean": 0.3, "stddev": 0.2},
    "RandomUniform": {"minval": -0.3, "maxval": 0.1}, "TruncatedNormal": {"mean": 0.1, "stddev": 0.3},
    "Orthogonal": {"gain": 1.5},
    "VarianceScaling": {"scale": 2.5, "mode": "fan_out", "distribution": "untruncated_normal"},
}


@pytest.mark.parametrize("name", sorted(KERAS_INITIALIZERS))
@pytest.mark.parametrize("shape", [(300, 400), (3, 3, 40, 300)], ids=["dense", "conv"])
def test_initializers_match_keras_in_distribution(name, shape):
    kwargs = KERAS_INITIALIZERS[name]
    theirs = to_numpy(getattr(keras.initializers, name)(seed=5, **kwargs)(shape)).ravel()
    ours = getattr(lk.initializers, name)(seed=5, **kwargs)(shape).numpy().ravel()
    result = stats.ks_2samp(ours, theirs)
    assert result.pvalue >= 1e-4, f"KS statistic {result.statistic:.4g}, p = {result.pvalue:.3g}"


def test_constant_initializers_match_keras():
    for name, kwargs in (("Zeros", {}), ("Ones", {}), ("Constant", {"value": 2.5}), ("Identity", {})):
        theirs = to_numpy(getattr(keras.initializers, name)(**kwargs)((4, 4)))
        assert np.array_equal(getattr(lk.initializers, name)(**kwargs)((4, 4)).numpy(), theirs)


def twin_models(make_layers, input_dim):
    theirs = keras.Sequential([keras.Input(shape=(input_dim,))] + make_layers(keras))
    ours = lk.Sequential([lk.Input(shape=(input_dim,))] + make_layers(lk))
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def mlp_layers(m):
    # Explicit names: Keras 3 matches weights in files by layer name, and the two
    # libraries' automatic name counters run independently in one process.
    return [m.layers.Dense(16, activation="relu", name="hidden1"),
            m.layers.Dense(8, activation="tanh", name="hidden2"),
            m.layers.Dense(3, activation="softmax", name="output")]


FITS = {
    "sgd-sparse-ce": ("sgd", "sparse_categorical_crossentropy", "classes"),
    "sgd-momentum-nesterov": (lambda m: m.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
                              "sparse_categorical_crossentropy", "classes"),
    "adam-sparse-ce": ("adam", "sparse_categorical_crossentropy", "classes"),
    "adam-amsgrad-mse": (lambda m: m.optimizers.Adam(learning_rate=0.01, amsgrad=True), "mse", "onehot"),
    "rmsprop-cce": ("rmsprop", "categorical_crossentropy", "onehot"),
    "rmsprop-momentum-centered": (lambda m: m.optimizers.RMSprop(momentum=0.5, centered=True), "mae", "onehot"),
    "adamw-huber": (lambda m: m.optimizers.AdamW(learning_rate=0.01), "huber", "onehot"),
}


def fit_twins(name, dtype):
    optimizer, loss, target = FITS[name]
    x = RNG.standard_normal((90, 5)).astype(dtype)
    labels = RNG.integers(0, 3, 90)
    y = labels if target == "classes" else np.eye(3, dtype=dtype)[labels]
    ours, theirs = twin_models(mlp_layers, 5)
    for model, module in ((ours, lk), (theirs, keras)):
        model.compile(optimizer=optimizer(module) if callable(optimizer) else optimizer, loss=loss,
                      metrics=["accuracy"])
    h_ours = ours.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0, validation_split=0.2)
    h_theirs = theirs.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0, validation_split=0.2)
    return ours, theirs, h_ours, h_theirs


@pytest.mark.parametrize("name", sorted(FITS))
def test_fit_matches_keras_in_float32(name):
    ours, theirs, h_ours, h_theirs = fit_twins(name, np.float32)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    assert sorted(h_ours.history) == sorted(h_theirs.history)
    for key in h_theirs.history:
        np.testing.assert_allclose(h_ours.history[key], h_theirs.history[key], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["sgd-sparse-ce", "adam-sparse-ce", "rmsprop-cce", "adamw-huber"])
def test_fit_matches_keras_in_float64(name, float64_keras):
    ours, theirs, _, _ = fit_twins(name, np.float64)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert a.dtype == b.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_regularizers_and_constraints_train_like_keras():
    def layers(m):
        return [m.layers.Dense(6, activation="relu", kernel_regularizer=m.regularizers.L2(0.01),
                               bias_regularizer=m.regularizers.L1(0.02),
                               activity_regularizer=m.regularizers.L1L2(0.001, 0.002),
                               kernel_constraint=m.constraints.MaxNorm(0.5)),
                m.layers.Dense(1, kernel_constraint=m.constraints.NonNeg())]
    ours, theirs = twin_models(layers, 4)
    x = RNG.standard_normal((40, 4)).astype(np.float32)
    y = RNG.standard_normal((40, 1)).astype(np.float32)
    for model in (ours, theirs):
        model.compile(optimizer="sgd", loss="mse")
    h_ours = ours.fit(x, y, epochs=2, batch_size=10, shuffle=False, verbose=0)
    h_theirs = theirs.fit(x, y, epochs=2, batch_size=10, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(h_ours.history["loss"], h_theirs.history["loss"], rtol=1e-5)


def test_evaluate_and_predict_match_keras():
    ours, theirs = twin_models(mlp_layers, 5)
    for model in (ours, theirs):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = RNG.standard_normal((50, 5)).astype(np.float32), RNG.integers(0, 3, 50)
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), 1e-5)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0), rtol=1e-5)


def test_summary_parameter_counts_match_keras():
    def layers(m):
        return [m.layers.Dense(30, activation="relu"), m.layers.Dropout(0.2),
                m.layers.LayerNormalization(), m.layers.Dense(2)]
    ours, theirs = twin_models(layers, 3)
    lines_ours, lines_theirs = [], []
    ours.summary(print_fn=lines_ours.append)
    theirs.summary(print_fn=lambda line, **kwargs: lines_theirs.append(line))
    text_ours = "\n".join(lines_ours)
    text_theirs = "\n".join(lines_theirs)
    for needle in ("Total params: 242", "Trainable params: 242", "Non-trainable params: 0"):
        assert needle in text_ours and needle in text_theirs
    assert ours.count_params() == theirs.count_params()
    for layer_ours, layer_theirs in zip(ours.layers, theirs.layers):
        assert layer_ours.count_params() == layer_theirs.count_params()


def test_keras_model_converted_to_nn_gives_keras_predictions():
    def layers(m):
        return [m.layers.Dense(16, activation="gelu"), m.layers.LayerNormalization(epsilon=1e-3),
                m.layers.Dropout(0.3), m.layers.Dense(4, activation="softmax")]
    theirs = keras.Sequential([keras.Input(shape=(6,))] + layers(keras))
    ours = lk.Sequential([lk.Input(shape=(6,))] + layers(lk))
    ours.set_weights(theirs.get_weights())
    torch_flavour = convert.to_nn(ours)
    assert not torch_flavour.training
    assert list(torch_flavour.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias",
                                                "4.weight", "4.bias"]
    x = RNG.standard_normal((7, 6)).astype(np.float32)
    assert_close(torch_flavour(x), theirs.predict(x, verbose=0), 1e-5)


def test_nn_model_converted_to_keras_matches_a_torch_twin():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.LayerNorm(12), nn.Linear(12, 3), nn.Tanh())
    twin = torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.ReLU(), torch.nn.LayerNorm(12),
                               torch.nn.Linear(12, 3), torch.nn.Tanh())
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    keras_flavour = convert.to_keras(ours)
    assert [type(layer).__name__ for layer in keras_flavour.layers] == ["Dense", "LayerNormalization", "Dense"]
    x = RNG.standard_normal((6, 5)).astype(np.float32)
    expected = twin(torch.from_numpy(x)).detach().numpy()
    assert_close(keras_flavour.predict(x, verbose=0), expected, 1e-5)
    real = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(12, activation="relu"),
                             keras.layers.LayerNormalization(epsilon=1e-5), keras.layers.Dense(3, activation="tanh")])
    real.set_weights(keras_flavour.get_weights())
    assert_close(real.predict(x, verbose=0), expected, 1e-5)


def test_keras_float64_mode_downcasts_matmul_to_float32():
    """Documents the Keras behaviour the float64 fixture works around."""
    keras.config.set_floatx("float64")
    try:
        x = RNG.standard_normal((8, 64))
        w = RNG.standard_normal((64, 8))
        error = np.abs(to_numpy(keras.ops.matmul(x, w)) - x @ w).max()
    finally:
        keras.config.set_floatx("float32")
    assert error > 1e-9  # float32-level error, although both operands are float64


def test_weight_files_move_between_linea_and_keras(tmp_path):
    ours, theirs = twin_models(mlp_layers, 5)
    ours.set_weights([RNG.standard_normal(w.shape).astype(np.float32) for w in ours.get_weights()])
    ours.save_weights(tmp_path / "ours.weights.h5")
    fresh = keras.Sequential([keras.Input(shape=(5,))] + mlp_layers(keras))
    fresh.load_weights(str(tmp_path / "ours.weights.h5"))
    for a, b in zip(fresh.get_weights(), ours.get_weights()):
        assert np.array_equal(a, b)
    theirs.save_weights(str(tmp_path / "theirs.weights.h5"))
    ours.load_weights(tmp_path / "theirs.weights.h5")
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert np.array_equal(a, b)


def test_keras_model_files_move_between_linea_and_keras(tmp_path):
    theirs = keras.Sequential([keras.Input(shape=(5,))] + mlp_layers(keras))
    theirs.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = RNG.standard_normal((32, 5)).astype(np.float32), RNG.integers(0, 3, 32)
    theirs.fit(x, y, epochs=1, verbose=0)
    theirs.save(str(tmp_path / "theirs.keras"))
    ours = lk.models.load_model(tmp_path / "theirs.keras")
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), 1e-6)
    ours.save(tmp_path / "ours.keras")
    back = keras.models.load_model(str(tmp_path / "ours.keras"))
    assert_close(back.predict(x, verbose=0), theirs.predict(x, verbose=0), 1e-6)


def test_bad_names_raise_value_errors_like_keras():
    with pytest.raises(ValueError):
        keras.layers.Dense(3, activation="relux")
    with pytest.raises(ValueError, match="Unknown activation 'relux'"):
        lk.layers.Dense(3, activation="relux")
    theirs = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(2)])
    theirs.compile(optimizer="adam", loss="msee")  # Keras defers the check to fit()
    with pytest.raises(ValueError):
        theirs.fit(np.ones((2, 2)), np.ones((2, 2)), verbose=0)
    ours = lk.Sequential([lk.Input(shape=(2,)), lk.layers.Dense(2)])
    with pytest.raises(ValueError, match="Unknown loss 'msee'"):  # linea checks at compile
        ours.compile(optimizer="adam", loss="msee")
    assert ours.optimizer is None and ours.compiled_loss is None


def test_one_dimensional_input_is_rejected_like_keras():
    theirs, ours = keras.layers.Dense(2), lk.layers.Dense(2)
    with pytest.raises(ValueError):
        theirs(np.ones(3, np.float32))
    with pytest.raises(linea.ShapeError, match="batch axis"):
        ours(np.ones(3, np.float32))
