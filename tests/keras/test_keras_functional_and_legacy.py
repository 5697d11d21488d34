"""Models as porters hold them, written by real Keras 3: Functional chains in .keras files, and
legacy HDF5 files (model.save("m.h5") and weights-only .h5) — Keras 3's and Keras 2's layouts."""
import json

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
h5py = pytest.importorskip("h5py")

import linea  # noqa: E402
from linea import keras as lk  # noqa: E402
from _helpers import assert_close  # noqa: E402

RNG = np.random.default_rng(47)
IMAGES = RNG.standard_normal((6, 8, 8, 1)).astype(np.float32)


def jitter(model):
    """Random weights everywhere (BatchNormalization's moving statistics included)."""
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w + RNG.random(w.shape).astype(w.dtype) for w in weights])
    return model


def functional_cnn():
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return jitter(keras.Model(inputs, outputs, name="digits_cnn"))


def sequential_cnn():
    return jitter(keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.AveragePooling2D(2), keras.layers.BatchNormalization(),
        keras.layers.Conv2D(2, 2), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("build", [functional_cnn, sequential_cnn], ids=["functional", "sequential"])
def test_models_written_by_keras_load_with_keras_predictions(tmp_path, build, suffix):
    theirs = build()
    path = tmp_path / f"model{suffix}"
    theirs.save(path)
    ours = lk.models.load_model(path)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers
                                                      if not isinstance(layer, keras.layers.InputLayer)]
    assert_close(ours.predict(IMAGES, verbose=0), theirs.predict(IMAGES, verbose=0), 1e-5)


def test_a_functional_mlp_reads_and_writes_back_as_a_sequential_keras_reads(tmp_path):
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(7, activation="tanh")(inputs)
    theirs = jitter(keras.Model(inputs, keras.layers.Dense(2)(hidden)))
    theirs.save(tmp_path / "f.keras")
    ours = lk.models.load_model(tmp_path / "f.keras")
    ours.save(tmp_path / "back.keras")
    back = keras.saving.load_model(tmp_path / "back.keras")
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    assert_close(back.predict(x, verbose=0), theirs.predict(x, verbose=0), 1e-6)


def branchy_models():
    a = keras.Input((4,))
    yield "add", keras.Model(a, keras.layers.Dense(2)(keras.layers.Add()([a, keras.layers.Dense(4)(a)])))
    a = keras.Input((4,))
    left, right = keras.layers.Dense(3, name="left")(a), keras.layers.Dense(3, name="right")(a)
    yield "concatenate", keras.Model(a, keras.layers.Concatenate()([left, right]))
    shared, a = keras.layers.Dense(4, name="shared"), keras.Input((4,))
    yield "shared", keras.Model(a, shared(shared(a)))
    a, b = keras.Input((4,)), keras.Input((4,))
    yield "two inputs", keras.Model([a, b], keras.layers.Add()([a, b]))
    a = keras.Input((4,))
    yield "two outputs", keras.Model(a, [keras.layers.Dense(2)(a), keras.layers.Dense(3)(a)])


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_models_linea_cannot_express_are_refused_naming_the_layer(tmp_path, suffix):
    for name, model in branchy_models():
        path = tmp_path / f"{name.replace(' ', '_')}{suffix}"
        model.save(path)
        with pytest.raises(linea.FormatError) as caught:
            lk.models.load_model(path)
        text = str(caught.value)
        assert any(word in text for word in ("branches", "chain", "called", "input", "output")), text
        if name in ("add", "concatenate"):
            assert name in text.lower(), text


def test_a_legacy_weights_file_loads_into_the_model_by_layer_order(tmp_path):
    from keras.src.legacy.saving import legacy_h5_format

    theirs = sequential_cnn()
    with h5py.File(tmp_path / "w.h5", "w") as handle:  # what tf.keras 2's save_weights("w.h5") wrote
        legacy_h5_format.save_weights_to_hdf5_group(handle, theirs)
    ours = lk.models.load_model(_saved(theirs, tmp_path / "again.keras"))
    ours.set_weights([np.zeros_like(w) for w in ours.get_weights()])
    ours.load_weights(tmp_path / "w.h5")
    assert_close(ours.predict(IMAGES, verbose=0), theirs.predict(IMAGES, verbose=0), 1e-5)
    wrong = lk.Sequential([lk.layers.Input((8, 8, 1)), lk.layers.Conv2D(4, 3, padding="same"),
                           lk.layers.Flatten(), lk.layers.Dense(3)])
    before = wrong.get_weights()
    with pytest.raises(linea.FormatError, match="layers with weights"):
        wrong.load_weights(tmp_path / "w.h5")
    assert all(np.array_equal(a, b) for a, b in zip(before, wrong.get_weights()))
    with pytest.raises(linea.FormatError, match="weights only"):
        lk.models.load_model(tmp_path / "w.h5")


def _saved(model, path):
    model.save(path)
    return path


def keras2_file(path, functional: bool):
    """A model file laid out exactly as tf.keras 2.x wrote it (bytes attributes, ':0' names)."""
    kernel = RNG.standard_normal((3, 3, 1, 2)).astype(np.float32)
    bias = RNG.standard_normal(2).astype(np.float32)
    dense = RNG.standard_normal((18, 3)).astype(np.float32)
    layers = [
        {"class_name": "Conv2D", "config": {"name": "conv2d", "trainable": True, "dtype": "float32",
                                            "filters": 2, "kernel_size": [3, 3], "strides": [1, 1],
                                            "padding": "valid", "data_format": "channels_last",
                                            "dilation_rate": [1, 1], "groups": 1, "activation": "relu",
                                            "use_bias": True,
                                            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                                            "bias_initializer": {"class_name": "Zeros", "config": {}},
                                            "kernel_regularizer": None, "bias_regularizer": None,
                                            "activity_regularizer": None, "kernel_constraint": None,
                                            "bias_constraint": None}},
        {"class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "trainable": True,
                                                  "dtype": "float32", "pool_size": [2, 2],
                                                  "padding": "valid", "strides": [2, 2],
                                                  "data_format": "channels_last"}},
        {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True, "dtype": "float32",
                                             "data_format": "channels_last"}},
        {"class_name": "Dense", "config": {"name": "dense", "trainable": True, "dtype": "float32",
                                           "units": 3, "activation": "linear", "use_bias": False,
                                           "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                                           "bias_initializer": {"class_name": "Zeros", "config": {}},
                                           "kernel_regularizer": None, "bias_regularizer": None,
                                           "activity_regularizer": None, "kernel_constraint": None,
                                           "bias_constraint": None}},
    ]
    input_layer = {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 8, 1],
                                                          "dtype": "float32", "sparse": False,
                                                          "ragged": False, "name": "input_1"}}
    if functional:
        previous = "input_1"
        for layer in layers:
            layer["name"] = layer["config"]["name"]
            layer["inbound_nodes"] = [[[previous, 0, 0, {}]]]
            previous = layer["name"]
        input_layer["name"], input_layer["inbound_nodes"] = "input_1", []
        config = {"class_name": "Functional", "config": {
            "name": "model", "layers": [input_layer] + layers,
            "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}}
    else:
        config = {"class_name": "Sequential", "config": {"name": "sequential",
                                                         "layers": [input_layer] + layers}}
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = b"2.4.0"
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["model_config"] = json.dumps(config).encode()
        weights = handle.create_group("model_weights")
        names = (["input_1"] if functional else []) + ["conv2d", "max_pooling2d", "flatten", "dense"]
        weights.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            group = weights.create_group(name)
            group.attrs["weight_names"] = np.array([], dtype=np.float64)
        conv = weights["conv2d"]
        conv.attrs["weight_names"] = np.array([b"conv2d/kernel:0", b"conv2d/bias:0"])
        conv.create_dataset("conv2d/kernel:0", data=kernel)
        conv.create_dataset("conv2d/bias:0", data=bias)
        weights["dense"].attrs["weight_names"] = np.array([b"dense/kernel:0"])
        weights["dense"].create_dataset("dense/kernel:0", data=dense)


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_keras2_legacy_files_load_as_keras3_reads_them(tmp_path, functional):
    path = tmp_path / "keras2.h5"
    keras2_file(path, functional)
    theirs = keras.saving.load_model(path, compile=False)
    ours = lk.models.load_model(path)
    assert_close(ours.predict(IMAGES, verbose=0), theirs.predict(IMAGES, verbose=0), 1e-5)


def test_hostile_legacy_files_raise_format_errors(tmp_path):
    good = tmp_path / "good.h5"
    keras2_file(good, functional=False)
    data = good.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    cases = {"cut.h5": "cannot read"}
    with h5py.File(tmp_path / "link.h5", "w") as handle:
        handle.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
        weights = handle.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"dense"])
        weights["dense"] = h5py.ExternalLink("elsewhere.h5", "/dense")
    cases["link.h5"] = "link"
    with h5py.File(tmp_path / "big.h5", "w") as handle:
        weights = handle.create_group("model_weights")
        handle.attrs["model_config"] = "{}"
        weights.attrs["layer_names"] = np.array([b"dense"])
        group = weights.create_group("dense")
        group.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        group.create_dataset("dense/kernel:0", shape=(100_000, 100_000), dtype="f4")  # never written
    cases["big.h5"] = "more than the file"
    with h5py.File(tmp_path / "json.h5", "w") as handle:
        handle.attrs["model_config"] = "{not json"
        handle.create_group("model_weights").attrs["layer_names"] = np.array([], dtype="S1")
    cases["json.h5"] = "not JSON"
    with h5py.File(tmp_path / "none.h5", "w") as handle:
        handle.create_group("something")
    cases["none.h5"] = "legacy"
    for name, message in cases.items():
        with pytest.raises(linea.FormatError, match=message):
            lk.models.load_model(tmp_path / name)


def test_linea_io_and_convert_read_legacy_files(tmp_path):
    import subprocess
    import sys

    from keras.src.legacy.saving import legacy_h5_format

    from linea import io

    theirs = jitter(keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu", name="hidden"),
                                      keras.layers.Dense(2, name="out")]))
    theirs.save(tmp_path / "mlp.h5")
    with h5py.File(tmp_path / "weights.h5", "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, theirs)
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    expected = theirs.predict(x, verbose=0)
    assert_close(io.load_model(tmp_path / "mlp.h5")(linea.tensor(x)), expected, 1e-6)
    assert list(io.load_state_dict(tmp_path / "weights.h5")) == ["hidden/kernel", "hidden/bias",
                                                                 "out/kernel", "out/bias"]
    assert_close(io.load_model(tmp_path / "weights.h5", activation="relu")(linea.tensor(x)), expected, 1e-6)
    done = subprocess.run([sys.executable, "-m", "linea", "convert", str(tmp_path / "mlp.h5"),
                           str(tmp_path / "mlp.pt")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "verified against Keras" in done.stdout
