"""The Keras flavour on its own: Dense, layers, configs, training loop, callbacks, files, conversion."""
import numpy as np
import pytest

import linea
from linea import convert, nn
from linea import keras as lk
from linea.keras import callbacks, layers
from _helpers import assert_close

R = np.random.default_rng(41)


class TestDense:
    def test_kernel_layout_and_lazy_build(self):
        layer = layers.Dense(4)
        assert not layer.built and layer.kernel is None
        out = layer(np.ones((2, 3)))
        assert layer.built and layer.kernel.shape == (3, 4) and layer.bias.shape == (4,)
        assert out.shape == (2, 4) and out.dtype == linea.float32

    def test_formula_with_activation(self):
        layer = layers.Dense(3, activation="relu")
        x = R.standard_normal((5, 2)).astype(np.float32)
        layer.build((None, 2))
        kernel, bias = (R.standard_normal((2, 3)).astype(np.float32), R.standard_normal(3).astype(np.float32))
        layer.set_weights([kernel, bias])
        assert_close(layer(x), np.maximum(x @ kernel + bias, 0))

    def test_higher_rank_inputs_use_the_last_axis(self):
        assert layers.Dense(6)(np.ones((2, 3, 4, 5))).shape == (2, 3, 4, 6)

    def test_input_shape_builds_at_construction(self):
        layer = layers.Dense(30, input_shape=(3,))
        assert layer.built and layer.count_params() == 120

    def test_one_dimensional_input_is_rejected_with_advice(self):
        with pytest.raises(linea.ShapeError, match=r"min_ndim=2.*batch axis.*nn.Linear"):
            layers.Dense(2)(np.ones(3))

    def test_other_last_dimension_names_both_sizes(self):
        layer = layers.Dense(2)
        layer(np.ones((1, 3)))
        with pytest.raises(linea.ShapeError, match=r"last dimension 3.*last dimension 5"):
            layer(np.ones((1, 5)))

    def test_set_weights_checks_everything_first(self):
        layer = layers.Dense(2)
        layer.build((None, 3))
        before = layer.get_weights()
        with pytest.raises(linea.ShapeError, match=r"\(3, 2\).*\(2, 3\).*transpose"):
            layer.set_weights([np.zeros((2, 3)), np.zeros(2)])
        with pytest.raises(ValueError, match="expecting 2 weights"):
            layer.set_weights([np.zeros((3, 2))])
        for a, b in zip(before, layer.get_weights()):
            assert np.array_equal(a, b)

    def test_unknown_activation_and_bad_units(self):
        with pytest.raises(ValueError, match="Unknown activation 'relux'"):
            layers.Dense(2, activation="relux")
        with pytest.raises(ValueError, match="units"):
            layers.Dense(0)

    def test_any_input_dtype_is_cast_like_keras(self):
        layer = layers.Dense(2)
        for x in (np.ones((1, 3), np.int64), linea.ones(1, 3, dtype=linea.float64), [[1, 2, 3]]):
            assert layer(x).dtype == linea.float32

    def test_gradients_flow_to_the_kernel_in_its_layout(self):
        layer = layers.Dense(2)
        x = linea.tensor(R.standard_normal((4, 3)))
        layer(x).sum().backward()
        assert layer.kernel.grad.shape == (3, 2)
        assert_close(layer.kernel.grad, np.repeat(x.numpy().sum(0, keepdims=True).T, 2, axis=1))

    def test_trainable_flag_freezes_weights(self):
        layer = layers.Dense(2, input_shape=(3,))
        layer.trainable = False
        assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2

    def test_config_round_trip(self):
        layer = layers.Dense(5, activation="tanh", use_bias=False, kernel_initializer="he_normal",
                             kernel_regularizer=lk.regularizers.L2(0.1), name="proj")
        config = layer.get_config()
        assert config["units"] == 5 and config["activation"] == "tanh" and config["name"] == "proj"
        assert config["kernel_initializer"]["class_name"] == "HeNormal"
        clone = layers.Dense.from_config(config)
        assert clone.units == 5 and clone.kernel_regularizer.l2 == 0.1 and not clone.use_bias

    def test_automatic_names(self):
        lk.backend.clear_session()
        assert [layers.Dense(1).name for _ in range(3)] == ["dense", "dense_1", "dense_2"]
        assert layers.LayerNormalization().name == "layer_normalization"


class TestInitializers:
    def test_glorot_uniform_limit(self):
        values = lk.initializers.GlorotUniform(seed=1)((300, 200)).numpy()
        limit = np.sqrt(6 / 500)
        assert values.max() <= limit and values.max() > 0.99 * limit

    def test_truncated_normals_stay_within_two_sigma(self):
        values = lk.initializers.HeNormal(seed=2)((400, 300)).numpy()
        sigma = np.sqrt(2 / 400) / 0.87962566103423978
        assert np.abs(values).max() <= 2 * sigma + 1e-7
        assert np.isclose(values.std(), np.sqrt(2 / 400), rtol=0.02)

    def test_seeded_initializers_repeat(self):
        a = lk.initializers.RandomNormal(seed=3)((10,)).numpy()
        assert np.array_equal(a, lk.initializers.RandomNormal(seed=3)((10,)).numpy())

    def test_orthogonal_columns(self):
        values = lk.initializers.Orthogonal()((8, 5)).numpy()
        assert np.allclose(values.T @ values, np.eye(5), atol=1e-5)

    def test_lookup_by_name_and_errors(self):
        assert isinstance(lk.initializers.get("glorot_normal"), lk.initializers.GlorotNormal)
        with pytest.raises(ValueError, match="Unknown initializer"):
            lk.initializers.get("glorot")


def small_model(**dense_kwargs):
    return lk.Sequential([lk.Input(shape=(4,)), layers.Dense(8, activation="relu", **dense_kwargs),
                          layers.Dense(3, activation="softmax")])


def classification_data(n=60):
    x = R.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


class TestSequential:
    def test_builds_from_input_and_predicts(self):
        model = small_model()
        assert model.built and model.predict(np.ones((5, 4)), verbose=0).shape == (5, 3)
        assert model.count_params() == 4 * 8 + 8 + 8 * 3 + 3

    def test_lazy_model_builds_at_first_call(self):
        model = lk.Sequential([layers.Dense(2)])
        assert not model.built
        model(np.ones((1, 7)))
        assert model.layers[0].kernel.shape == (7, 2)

    def test_only_layers_can_be_added(self):
        with pytest.raises(TypeError, match="linea.nn.Sequential"):
            lk.Sequential([nn.Linear(2, 2)])
        with pytest.raises(ValueError, match="unique names"):
            lk.Sequential([layers.Dense(2, name="a"), layers.Dense(2, name="a")])

    def test_fit_learns_and_returns_history(self, capsys):
        model = small_model()
        model.compile(optimizer=lk.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        x, y = classification_data()
        history = model.fit(x, y, epochs=15, batch_size=16, validation_split=0.25, verbose=2)
        assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert history.history["loss"][-1] < history.history["loss"][0]
        assert history.epoch == list(range(15)) and model.history is history
        out = capsys.readouterr().out
        assert "Epoch 15/15" in out and " - loss: " in out and "val_accuracy" in out

    def test_verbose_one_prints_a_keras_bar(self, capsys):
        model = small_model()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(*classification_data(), epochs=1, verbose=1)
        assert "2/2 ━━━━━━━━━━━━━━━━━━━━" in capsys.readouterr().out

    def test_evaluate_forms(self):
        model = small_model()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        x, y = classification_data()
        loss, accuracy = model.evaluate(x, y, verbose=0)
        assert 0 <= accuracy <= 1 and loss > 0
        assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "accuracy"}

    def test_fit_without_compile_explains(self):
        with pytest.raises(RuntimeError, match="compile"):
            small_model().fit(np.ones((2, 4)), np.ones(2))

    def test_bad_compile_changes_nothing(self):
        model = small_model()
        model.compile(optimizer="sgd", loss="mse")
        with pytest.raises(ValueError, match="Unknown loss"):
            model.compile(optimizer="adam", loss="mean_squared_errr")
        with pytest.raises(ValueError, match="Unknown optimizer"):
            model.compile(optimizer="adamx", loss="mse")
        with pytest.raises(ValueError, match="Unknown metric"):
            model.compile(optimizer="adam", loss="mse", metrics=["precisionn"])
        assert isinstance(model.optimizer, lk.optimizers.SGD)
        with pytest.raises(TypeError, match="update rules"):
            model.compile(optimizer=linea.optim.SGD(model.parameters(), lr=0.1), loss="mse")

    def test_summary_table(self):
        lines = []
        small_model().summary(print_fn=lines.append)
        text = "\n".join(lines)
        assert "Layer (type)" in text and "(None, 8)" in text and "Total params: 67" in text

    def test_regularization_losses_join_the_training_loss(self):
        model = small_model(kernel_regularizer=lk.regularizers.L2(1.0))
        kernel = model.layers[0].kernel
        assert np.isclose(sum(p.item() for p in model.losses), (kernel.numpy() ** 2).sum(), rtol=1e-5)

    def test_model_set_weights_is_all_or_nothing(self):
        model = small_model()
        before = model.get_weights()
        bad = [w.copy() for w in before]
        bad[2] = np.zeros((3, 8))
        with pytest.raises(linea.ShapeError):
            model.set_weights(bad)
        for a, b in zip(before, model.get_weights()):
            assert np.array_equal(a, b)


class TestCallbacks:
    def test_early_stopping_restores_best(self):
        model = small_model()
        model.compile(optimizer=lk.optimizers.SGD(5.0), loss="sparse_categorical_crossentropy")
        stopper = callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
        history = model.fit(*classification_data(), epochs=50, verbose=0, callbacks=[stopper])
        assert len(history.history["loss"]) < 50 and stopper.stopped_epoch > 0

    def test_lambda_callback_sees_every_epoch_and_batch(self):
        seen = {"epochs": [], "batches": 0}
        hook = callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: seen["epochs"].append((epoch, round(logs["loss"], 6))),
            on_train_batch_end=lambda batch, logs: seen.__setitem__("batches", seen["batches"] + 1))
        model = small_model()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(*classification_data(), epochs=3, batch_size=20, verbose=0, callbacks=[hook])
        assert [e for e, _ in seen["epochs"]] == [0, 1, 2] and seen["batches"] == 9

    def test_model_checkpoint_saves_best_weights(self, tmp_path):
        model = small_model()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        saver = callbacks.ModelCheckpoint(str(tmp_path / "best-{epoch:02d}.weights.h5"), monitor="loss",
                                          save_best_only=True, save_weights_only=True)
        model.fit(*classification_data(), epochs=3, verbose=0, callbacks=[saver])
        assert sorted(p.name for p in tmp_path.iterdir())[0] == "best-01.weights.h5"
        with pytest.raises(ValueError, match=".weights.h5"):
            callbacks.ModelCheckpoint(str(tmp_path / "x.h5"), save_weights_only=True)


class TestFilesAndConversion:
    def test_weights_and_model_files_round_trip(self, tmp_path):
        pytest.importorskip("h5py")
        model = small_model()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        x, y = classification_data()
        model.fit(x, y, epochs=2, verbose=0)
        model.save_weights(tmp_path / "m.weights.h5")
        model.save(tmp_path / "m.keras")
        other = small_model()
        other.load_weights(tmp_path / "m.weights.h5")
        assert_close(other.predict(x, verbose=0), model.predict(x, verbose=0))
        loaded = lk.models.load_model(tmp_path / "m.keras")
        assert_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
        assert isinstance(loaded.optimizer, lk.optimizers.Adam)

    def test_failed_weight_load_changes_nothing(self, tmp_path):
        pytest.importorskip("h5py")
        small = lk.Sequential([lk.Input(shape=(4,)), layers.Dense(2)])
        small.save_weights(tmp_path / "small.weights.h5")
        model = small_model()
        before = model.get_weights()
        with pytest.raises(linea.FormatError, match="expects weights of shapes"):
            model.load_weights(tmp_path / "small.weights.h5")
        for a, b in zip(before, model.get_weights()):
            assert np.array_equal(a, b)

    def test_file_names_follow_keras_rules(self, tmp_path):
        with pytest.raises(ValueError, match=r"\.weights\.h5"):
            small_model().save_weights(tmp_path / "m.h5")
        with pytest.raises(ValueError, match=r"\.keras"):
            small_model().save(tmp_path / "m.h5")

    def test_linear_from_dense_and_back(self):
        dense = layers.Dense(4, input_shape=(3,))
        linear = nn.Linear.from_dense(dense)
        assert np.array_equal(linear.weight.numpy(), dense.kernel.numpy().T)
        x = R.standard_normal((2, 3)).astype(np.float32)
        assert_close(linear(x), dense(x).numpy())
        again = layers.Dense.from_linear(linear, activation="relu")
        assert np.array_equal(again.kernel.numpy(), dense.kernel.numpy())
        assert_close(again(x), np.maximum(dense(x).numpy(), 0))

    def test_from_dense_needs_a_built_layer(self):
        with pytest.raises(ValueError, match="built"):
            nn.Linear.from_dense(layers.Dense(3))

    def test_to_nn_splits_activations_and_uses_torch_keys(self):
        model = lk.Sequential([lk.Input(shape=(3,)), layers.Dense(5, activation="relu"),
                               layers.Dense(2)])
        torch_flavour = convert.to_nn(model)
        assert [type(m).__name__ for m in torch_flavour] == ["Linear", "ReLU", "Linear"]
        assert list(torch_flavour.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
        x = R.standard_normal((4, 3)).astype(np.float32)
        assert_close(torch_flavour(x), model.predict(x, verbose=0))
        back = convert.to_keras(torch_flavour)
        assert [layer.get_config()["activation"] for layer in back.layers] == ["relu", "linear"]
        assert_close(back.predict(x, verbose=0), model.predict(x, verbose=0))

    def test_conversion_rejects_what_it_cannot_express(self):
        with pytest.raises(TypeError, match="ceil_mode"):
            convert.to_keras(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2, ceil_mode=True)))
        with pytest.raises(ValueError, match="input_shape=\\(C, H, W\\)"):  # missing, not wrong
            convert.to_keras(nn.Sequential(nn.Conv2d(2, 1, 3), nn.Flatten(), nn.Linear(4, 2)))
        with pytest.raises(ValueError, match="not built"):
            convert.to_nn(lk.Sequential([layers.Dense(2)]))
        def doubled(x):  # a custom activation: no module computes it
            return x * 2

        with pytest.raises(ValueError, match="'doubled' has no linea.nn module"):
            convert.to_nn(lk.Sequential([lk.Input(shape=(2,)), layers.Dense(2, activation=doubled)]))


def test_weights_files_with_external_links_are_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle.create_dataset("secret", data=np.arange(4.0))
    hostile = tmp_path / "hostile.weights.h5"
    with h5py.File(hostile, "w") as handle:
        variables = handle.create_group("layers").create_group("dense").create_group("vars")
        variables["0"] = h5py.ExternalLink(str(other), "/secret")
    with pytest.raises(linea.FormatError, match="link"):
        linea.io.load_state_dict(hostile)
    virtual = tmp_path / "virtual.weights.h5"
    layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(other), "secret", shape=(4,))
    with h5py.File(virtual, "w") as handle:
        vars_group = handle.create_group("layers").create_group("dense").create_group("vars")
        vars_group.create_virtual_dataset("0", layout)
    with pytest.raises(linea.FormatError, match="other files"):
        linea.io.load_state_dict(virtual)


def test_dense_config_lists_activity_regularizer_only_when_set():
    assert "activity_regularizer" not in layers.Dense(2).get_config()
    config = layers.Dense(2, activity_regularizer="l2").get_config()
    assert config["activity_regularizer"]["class_name"] == "L2"
    assert layers.Dense.from_config(config).activity_regularizer.l2 == 0.01


def test_missing_monitored_metric_warns_like_keras():
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="val_loss"):
        history = model.fit(*classification_data(), epochs=2, verbose=0,
                            callbacks=[callbacks.EarlyStopping()])
    assert len(history.history["loss"]) == 2


def test_leaky_relu_layer_keeps_its_slope_and_config():
    layer = lk.layers.LeakyReLU(negative_slope=0.05)
    x = np.array([[-2.0, 3.0]], np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), [[-0.1, 3.0]], rtol=1e-6)
    assert layer.get_config()["negative_slope"] == 0.05
    assert lk.layers.LeakyReLU().negative_slope == 0.3  # Keras's layer default
    with pytest.raises(ValueError, match="negative_slope"):
        lk.layers.LeakyReLU(negative_slope=-1)


def test_predict_takes_numpy_object_arrays_of_numbers():
    """As linea.tensor does: numbers kept as objects convert; anything else is named."""
    model = lk.Sequential([lk.Input((2,)), layers.Dense(1)])
    numbers = np.array([[1, 2.5], [3, 4]], dtype=object)
    np.testing.assert_allclose(model.predict(numbers, verbose=0),
                               model.predict(numbers.astype(np.float32), verbose=0))
    with pytest.raises(TypeError, match="element \\[1, 0\\] is 'x'"):
        model.predict(np.array([[1, 2], ["x", 4]], dtype=object), verbose=0)
