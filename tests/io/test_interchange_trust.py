"""Each silently-wrong reconstruction found in review is now exactly right or a FormatError.

Files are written by the real tools (safetensors, torch, Keras 3, torch.onnx,
onnx.helper) and their outputs computed by the real runtimes.
"""
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

os.environ.setdefault("KERAS_BACKEND", "torch")
torch = pytest.importorskip("torch", reason="PyTorch is an oracle; install the test extra")
keras = pytest.importorskip("keras", reason="Keras 3 is an oracle; install the test extra")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is an oracle; install the test extra")
onnx = pytest.importorskip("onnx", reason="onnx writes the test graphs; install the test extra")
from safetensors.torch import save_file, save_model  # noqa: E402

import linea  # noqa: E402
from linea import io, nn  # noqa: E402

R = np.random.default_rng(9)


def run(model, x):
    with linea.no_grad():
        return model(x).numpy() if hasattr(model, "parameters") else np.asarray(model.predict(x, verbose=0))


def close(got, expected, tol=1e-5):
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * max(1.0, float(np.abs(expected).max())))


def keras_out(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def torch_out(model, x):
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def square_chain(depth, width=6, activation=torch.nn.Tanh):
    torch.manual_seed(depth)
    modules = []
    for index in range(depth):
        modules.append(torch.nn.Linear(width, width))
        if index + 1 < depth:
            modules.append(activation())
    return torch.nn.Sequential(*modules).eval()


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "linea.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


# ---- 1. layer order from the file's structure, not string order -----------------------

class TestLayerOrder:
    def test_safetensors_with_twelve_square_layers(self, tmp_path):
        theirs = square_chain(12)
        save_file(theirs.state_dict(), tmp_path / "m.safetensors")
        x = R.standard_normal((5, 6)).astype(np.float32)
        ours = io.load_model(tmp_path / "m.safetensors", activation="tanh", layout="torch")
        close(run(ours, x), torch_out(theirs, x))

    def test_hf_sharded_checkpoint_with_twelve_layers(self, tmp_path):
        theirs = square_chain(12)
        state = theirs.state_dict()
        names = list(state)
        shards = {"a.safetensors": names[::2], "b.safetensors": names[1::2]}
        weight_map = {}
        for shard, keys in shards.items():
            save_file({k: state[k] for k in keys}, tmp_path / shard)
            weight_map.update({k: shard for k in keys})
        index = {"metadata": {}, "weight_map": dict(sorted(weight_map.items()))}
        (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
        x = R.standard_normal((5, 6)).astype(np.float32)
        ours = io.load_model(tmp_path / "model.safetensors.index.json", activation="tanh",
                             layout="torch")
        close(run(ours, x), torch_out(theirs, x))

    def test_keras_weights_file_with_twelve_dense_layers(self, tmp_path):
        layers = [keras.Input((6,))] + [keras.layers.Dense(6, activation="tanh") for _ in range(11)]
        theirs = keras.Sequential(layers + [keras.layers.Dense(6)])
        theirs.save_weights(tmp_path / "m.weights.h5")
        x = R.standard_normal((5, 6)).astype(np.float32)
        ours = io.load_model(tmp_path / "m.weights.h5", activation="tanh")
        close(run(ours, x), keras_out(theirs, x))

    def test_inspect_lists_layers_in_model_order(self, tmp_path):
        save_file(square_chain(12).state_dict(), tmp_path / "m.safetensors")
        rows, _ = __import__("linea._inspect", fromlist=["x"]).inspect_rows(tmp_path / "m.safetensors")
        assert [row["layer"] for row in rows] == [str(i) for i in range(0, 23, 2)]

    def test_inspect_says_when_the_file_does_not_record_the_order(self, tmp_path):
        theirs = keras.Sequential([keras.Input((4,)), keras.layers.LayerNormalization(),
                                   keras.layers.Dense(3)])
        theirs.save_weights(tmp_path / "m.weights.h5")
        result = cli("inspect", tmp_path / "m.weights.h5")
        assert result.returncode == 0 and "does not record the order" in result.stdout
        save_file(square_chain(3).state_dict(), tmp_path / "m.safetensors")
        assert "note:" not in cli("inspect", tmp_path / "m.safetensors").stdout

    def test_names_that_do_not_settle_order_are_refused(self, tmp_path):
        save_file({"encoder.weight": torch.ones(4, 4), "head.weight": torch.ones(4, 4)},
                  tmp_path / "m.safetensors")
        with pytest.raises(linea.FormatError, match="do not say which comes first"):
            io.load_model(tmp_path / "m.safetensors", activation="relu", layout="torch")

    def test_names_and_module_order_that_disagree_are_refused(self, tmp_path):
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc2, self.fc1 = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)

        torch.save(Net().state_dict(), tmp_path / "m.pt")
        with pytest.raises(linea.FormatError, match="stores them as"):
            io.load_model(tmp_path / "m.pt", activation="relu", layout="torch")

    def test_a_pt_state_dict_records_its_module_order(self, tmp_path):
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder, self.head = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)

            def forward(self, x):
                return self.head(torch.relu(self.encoder(x)))

        theirs = Net()
        torch.save(theirs.state_dict(), tmp_path / "m.pt")
        x = R.standard_normal((5, 4)).astype(np.float32)
        close(run(io.load_model(tmp_path / "m.pt", activation="relu"), x), torch_out(theirs, x))


# ---- 2 and 5. Keras weights files: classes interleave, weightless layers ----------------

class TestKerasWeightsFiles:
    def test_norm_before_the_first_dense_needs_layers(self, tmp_path):
        theirs = keras.Sequential([keras.Input((4,)), keras.layers.LayerNormalization(),
                                   keras.layers.Dense(4, activation="relu"), keras.layers.Dense(4)])
        theirs.save_weights(tmp_path / "m.weights.h5")
        with pytest.raises(linea.FormatError, match="layers="):
            io.load_model(tmp_path / "m.weights.h5", activation="relu")
        ours = io.load_model(tmp_path / "m.weights.h5",
                             layers=["layernorm(eps=1e-3)", "linear", "relu", "linear"])
        x = R.standard_normal((5, 4)).astype(np.float32)
        close(run(ours, x), keras_out(theirs, x))

    def test_a_layer_linea_cannot_rebuild_is_refused(self, tmp_path):
        theirs = keras.Sequential([keras.Input((4,)), keras.layers.Rescaling(2.0),
                                   keras.layers.Dense(3)])
        theirs.save_weights(tmp_path / "m.weights.h5")
        with pytest.raises(linea.FormatError, match="rescaling"):
            io.load_model(tmp_path / "m.weights.h5")
        with pytest.raises(linea.FormatError, match="rescaling"):
            io.load_model(tmp_path / "m.weights.h5", layers=["linear"])

    def test_weightless_activation_layers_need_layers(self, tmp_path):
        theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5),
                                   keras.layers.Activation("tanh"), keras.layers.Dropout(0.3),
                                   keras.layers.Dense(2)])
        theirs.save_weights(tmp_path / "m.weights.h5")
        with pytest.raises(linea.FormatError, match="activation"):
            io.load_model(tmp_path / "m.weights.h5", activation="tanh")
        ours = io.load_model(tmp_path / "m.weights.h5", layers="linear,tanh,dropout,linear")
        x = R.standard_normal((5, 4)).astype(np.float32)
        close(run(ours, x), keras_out(theirs, x))
        with pytest.raises(linea.FormatError, match="dropout"):
            io.load_model(tmp_path / "m.weights.h5", layers="linear,tanh,linear")

    def test_a_functional_models_input_layer_is_harmless(self, tmp_path):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(5, activation="relu")(inputs)
        theirs = keras.Model(inputs, keras.layers.Dense(2)(hidden))
        theirs.save_weights(tmp_path / "m.weights.h5")
        x = R.standard_normal((5, 4)).astype(np.float32)
        close(run(io.load_model(tmp_path / "m.weights.h5", activation="relu"), x), keras_out(theirs, x))

    def test_dropout_groups_alone_are_harmless(self, tmp_path):
        theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                                   keras.layers.Dropout(0.3), keras.layers.Dense(2)])
        theirs.save_weights(tmp_path / "m.weights.h5")
        x = R.standard_normal((5, 4)).astype(np.float32)
        close(run(io.load_model(tmp_path / "m.weights.h5", activation="relu"), x), keras_out(theirs, x))


# ---- 3. tied tensors; 4. norms placed by layers= ----------------------------------------

def test_tied_weights_from_save_model(tmp_path):
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
    theirs[2].weight = theirs[0].weight
    save_model(theirs, tmp_path / "m.safetensors")
    x = R.standard_normal((5, 4)).astype(np.float32)
    ours = io.load_model(tmp_path / "m.safetensors", activation="relu", layout="torch")
    close(run(ours, x), torch_out(theirs, x))


class TestNormsNeedTheArchitecture:
    def model(self):
        torch.manual_seed(0)
        theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.LayerNorm(5), torch.nn.ReLU(),
                                     torch.nn.Linear(5, 2))
        with torch.no_grad():
            theirs[1].weight.uniform_(0.5, 2.0)
            theirs[1].bias.uniform_(-1.0, 1.0)
        return theirs.eval()

    def test_activation_cannot_place_a_norm(self, tmp_path):
        torch.save(self.model().state_dict(), tmp_path / "m.pt")
        with pytest.raises(linea.FormatError, match="layers="):
            io.load_model(tmp_path / "m.pt", activation="relu")

    def test_layers_place_it_exactly(self, tmp_path):
        theirs = self.model()
        torch.save(theirs.state_dict(), tmp_path / "m.pt")
        x = R.standard_normal((5, 4)).astype(np.float32)
        ours = io.load_model(tmp_path / "m.pt", layers=["linear", "layernorm", "relu", "linear"])
        close(run(ours, x), torch_out(theirs, x))

    def test_layers_that_contradict_the_numbering_are_refused(self, tmp_path):
        torch.save(self.model().state_dict(), tmp_path / "m.pt")
        with pytest.raises(linea.FormatError, match="nn.Sequential numbering"):
            io.load_model(tmp_path / "m.pt", layers=["linear", "relu", "layernorm", "linear"])

    def test_activation_between_neighbouring_modules_is_refused(self, tmp_path):
        theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2))
        torch.save(theirs.state_dict(), tmp_path / "m.pt")
        with pytest.raises(linea.FormatError, match="neighbours"):
            io.load_model(tmp_path / "m.pt", activation="relu")


# ---- 6. the CLI: repeated flags, --layers, what "verified" means ------------------------

class TestConvertCli:
    def test_bare_linea_prints_its_usage(self):
        result = cli()
        assert result.returncode == 2 and result.stderr.startswith("usage: linea")

    def test_repeated_activation_flag_is_exit_2(self, tmp_path):
        torch.save(square_chain(3).state_dict(), tmp_path / "m.pt")
        result = cli("convert", tmp_path / "m.pt", tmp_path / "o.weights.h5", "--activation", "relu",
                     "--activation", "tanh")
        assert result.returncode == 2 and "given twice" in result.stderr
        assert not (tmp_path / "o.weights.h5").exists()

    def test_mixed_activations_with_layers_convert_right(self, tmp_path):
        theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6),
                                     torch.nn.Tanh(), torch.nn.Linear(6, 2)).eval()
        torch.save(theirs.state_dict(), tmp_path / "m.pt")
        result = cli("convert", tmp_path / "m.pt", tmp_path / "o.keras", "--layers",
                     "linear,relu,linear,tanh,linear")
        assert result.returncode == 0, result.stderr
        assert "verified against PyTorch on the source file" in result.stdout
        assert "architecture given by --layers linear,relu,linear,tanh,linear" in result.stdout
        x = R.standard_normal((5, 4)).astype(np.float32)
        back = keras.saving.load_model(tmp_path / "o.keras")
        close(keras_out(back, x), torch_out(theirs, x))

    def test_onnx_source_is_checked_by_onnxruntime(self, tmp_path):
        theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU(), torch.nn.Linear(6, 2))
        torch.onnx.export(theirs.eval(), (torch.zeros(2, 4),), str(tmp_path / "m.onnx"), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
        result = cli("convert", tmp_path / "m.onnx", tmp_path / "m.pt")
        assert result.returncode == 0, result.stderr
        assert "verified against onnxruntime on the source file" in result.stdout
        assert "over 64 inputs" in result.stdout

    def test_format_flags_name_formats(self, tmp_path):
        torch.save(square_chain(1).state_dict(), tmp_path / "m.bin")
        result = cli("convert", tmp_path / "m.bin", tmp_path / "o.dat", "--format", "torch",
                     "--to-format", "safetensors")
        assert result.returncode == 0, result.stderr
        assert io.load_state_dict(tmp_path / "o.dat", "safetensors")

    def test_a_layernorm_first_model_converts(self, tmp_path):
        theirs = torch.nn.Sequential(torch.nn.LayerNorm(4), torch.nn.Linear(4, 2)).eval()
        torch.save(theirs.state_dict(), tmp_path / "m.pt")
        result = cli("convert", tmp_path / "m.pt", tmp_path / "o.weights.h5", "--layers",
                     "layernorm,linear")
        assert result.returncode == 0, result.stderr
        assert "eps = 1e-05 (the framework's default" in result.stdout


def test_functional_ops_accept_raw_data():
    F = linea.nn.functional
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    for op in (F.relu, F.gelu, F.silu, F.tanh, F.sigmoid, F.softplus, F.leaky_relu):
        assert np.allclose(op(x).numpy(), op(linea.tensor(x)).numpy())
    assert np.allclose(F.softmax(x, -1).numpy().sum(), 1.0)
    assert np.allclose(F.layer_norm(x, 3).numpy().mean(), 0.0, atol=1e-6)
    assert F.layer_norm(x.tolist(), 3, linea.nn.LayerNorm(3).weight).dtype == linea.float32


def test_safetensors_header_with_a_list_dtype_is_a_format_error(tmp_path):
    header = json.dumps({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(linea.FormatError, match="no known dtype"):
        io.load_state_dict(tmp_path / "m.safetensors")


def test_keras_zip_bomb_is_refused_quickly(tmp_path):
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    theirs.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as source:
        config = source.read("config.json")
    with zipfile.ZipFile(tmp_path / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("config.json", config)
        with bomb.open("model.weights.h5", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 24)
            for _ in range(64):  # 1 GiB of zeros, about 1 MB deflated
                member.write(block)
    script = ("import resource, time, linea, h5py; from linea import io\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; t = time.perf_counter()\n"
              f"try: io.load_model({str(tmp_path / 'bomb.keras')!r})\n"
              "except linea.FormatError as e: print('refused', time.perf_counter() - t, "
              "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True).stdout.split()
    assert out and out[0] == "refused", out
    seconds, extra_kib = float(out[1]), int(out[2])
    assert seconds < 2.0 and extra_kib < 200 * 1024


def test_dynamo_export_with_external_data(tmp_path):
    """torch 2.13's default exporter keeps large initializers in model.onnx.data."""
    import warnings

    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(256, 300), torch.nn.GELU(), torch.nn.Linear(300, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(theirs.eval(), (torch.zeros(2, 256),), str(tmp_path / "m.onnx"), dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    assert (tmp_path / "m.onnx.data").stat().st_size > 300_000
    x = R.standard_normal((5, 256)).astype(np.float32)
    close(run(io.load_model(tmp_path / "m.onnx"), x), torch_out(theirs, x))
    result = cli("convert", tmp_path / "m.onnx", tmp_path / "m.safetensors")
    assert result.returncode == 0 and "verified against onnxruntime" in result.stdout, result.stderr


@pytest.mark.parametrize("target", ["m.safetensors", "m.pt", "m.onnx", "m2.keras", "m.weights.h5"])
def test_convert_keras_dense_batchnorm_activation_dense(tmp_path, target):
    """BatchNormalization over features (not images) needs no input_shape: every target verifies."""
    keras.utils.set_random_seed(1)
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                               keras.layers.Activation("relu"), keras.layers.Dense(3)])
    theirs.compile(optimizer="adam", loss="mse")
    theirs.fit(np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32),
               np.zeros((64, 3), np.float32), epochs=2, verbose=0)  # running statistics move
    theirs.save(tmp_path / "m.keras")
    result = subprocess.run([sys.executable, "-m", "linea", "convert", str(tmp_path / "m.keras"),
                             str(tmp_path / target)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "verified against Keras" in result.stdout
    x = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)
    if target.endswith(".keras"):
        np.testing.assert_allclose(keras.models.load_model(tmp_path / target).predict(x, verbose=0),
                                   theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_a_model_loaded_with_input_shape_remembers_it(tmp_path):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(36, 3)).eval()
    torch.save(theirs.state_dict(), tmp_path / "cnn.pt")
    ours = io.load_model(tmp_path / "cnn.pt", layers=["conv2d", "relu", "maxpool2d(kernel=2)", "flatten",
                                                      "linear"], input_shape=(1, 8, 8))
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    expected = theirs(torch.tensor(x)).detach().numpy()
    io.save_model(ours, tmp_path / "cnn.keras")  # no second input_shape=
    io.save_model(ours, tmp_path / "cnn.onnx")
    got = keras.models.load_model(tmp_path / "cnn.keras").predict(x.transpose(0, 2, 3, 1), verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    import onnxruntime

    run = onnxruntime.InferenceSession(str(tmp_path / "cnn.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(run, expected, rtol=1e-5, atol=1e-5)


def test_a_model_that_never_said_its_input_shape_gets_a_value_error():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 2))
    with pytest.raises(ValueError, match="pass input_shape=\\(C, H, W\\)"):
        linea.convert.to_keras(model)
