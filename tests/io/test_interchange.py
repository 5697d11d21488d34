"""Files moved between linea and the real frameworks give the same outputs (to 1e-6)."""
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

os.environ.setdefault("KERAS_BACKEND", "torch")
torch = pytest.importorskip("torch", reason="PyTorch is an oracle; install the test extra")
keras = pytest.importorskip("keras", reason="Keras 3 is an oracle; install the test extra")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is an oracle; install the test extra")

import linea  # noqa: E402
from linea import io, nn  # noqa: E402
from linea import keras as lk  # noqa: E402

R = np.random.default_rng(61)
X = R.standard_normal((7, 5)).astype(np.float32)


def close(a, b, tol=1e-6):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))


def ours_mlp():
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def torch_mlp():
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8),
                               torch.nn.ReLU(), torch.nn.Linear(8, 3))


def run(model, x=X):
    with linea.no_grad():
        return model(x).numpy()


@pytest.mark.parametrize("name", ["m.safetensors", "m.pt"])
def test_linea_files_load_strictly_into_torch(tmp_path, name):
    ours = ours_mlp()
    io.save_model(ours, tmp_path / name)
    theirs = torch_mlp()
    if name.endswith(".pt"):
        state = torch.load(tmp_path / name, weights_only=True)
    else:
        from safetensors.torch import load_file

        state = load_file(str(tmp_path / name))
    theirs.load_state_dict(state, strict=True)
    close(theirs(torch.from_numpy(X)).detach().numpy(), run(ours))


@pytest.mark.parametrize("name", ["t.pt", "t.safetensors"])
def test_torch_files_load_into_linea(tmp_path, name):
    theirs = torch_mlp()
    if name.endswith(".pt"):
        torch.save(theirs.state_dict(), tmp_path / name)
    else:
        from safetensors.torch import save_file

        save_file(theirs.state_dict(), str(tmp_path / name))
    expected = theirs(torch.from_numpy(X)).detach().numpy()
    close(run(io.load_model(tmp_path / name, activation="relu")), expected)
    close(run(io.load_model(tmp_path / name, model=ours_mlp())), expected)
    close(lk.Sequential.predict(io.load_model(tmp_path / name, flavour="keras", activation="relu"), X,
                                verbose=0), expected)


def test_pt_checkpoint_with_optimizer_and_wrapper_keys(tmp_path):
    theirs = torch_mlp()
    torch.save({"state_dict": theirs.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    close(run(io.load_model(tmp_path / "ckpt.pt", activation="relu")),
          theirs(torch.from_numpy(X)).detach().numpy())


def keras_mlp():
    return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.LayerNormalization(), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(3, activation="softmax")])


def test_real_keras_files_load_into_linea(tmp_path):
    theirs = keras_mlp()
    theirs.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    theirs.fit(X, np.array([0, 1, 2, 0, 1, 2, 0]), epochs=2, verbose=0)  # carries optimizer/ vars
    theirs.save(str(tmp_path / "k.keras"))
    theirs.save_weights(str(tmp_path / "k.weights.h5"))
    expected = theirs.predict(X, verbose=0)
    close(run(io.load_model(tmp_path / "k.keras")), expected)
    close(io.load_model(tmp_path / "k.keras", flavour="keras").predict(X, verbose=0), expected)
    keras_flavour = lk.Sequential([lk.Input(shape=(5,)), lk.layers.Dense(16, activation="relu"),
                                   lk.layers.LayerNormalization(), lk.layers.Dense(8, activation="tanh"),
                                   lk.layers.Dense(3, activation="softmax")])
    keras_flavour.load_weights(tmp_path / "k.weights.h5")
    close(keras_flavour.predict(X, verbose=0), expected)


def test_linea_keras_files_load_into_real_keras(tmp_path):
    ours = io.load_model  # noqa: F841 - readability
    source = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.LayerNorm(16, eps=1e-3), nn.Linear(16, 8),
                           nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=-1))
    io.save_model(source, tmp_path / "o.keras")
    io.save_model(source, tmp_path / "o.weights.h5")
    expected = run(source)
    close(keras.models.load_model(str(tmp_path / "o.keras")).predict(X, verbose=0), expected)
    fresh = keras_mlp()
    fresh.load_weights(str(tmp_path / "o.weights.h5"))
    close(fresh.predict(X, verbose=0), expected)


ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, lambda: nn.Softmax(dim=-1),
               lambda: nn.LogSoftmax(dim=-1), lambda: nn.LeakyReLU(0.2),
               lambda: nn.Softplus(threshold=float("inf"))]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: getattr(a, "__name__", "lambda"))
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnx_export_runs_in_onnxruntime(tmp_path, activation, rank, dtype):
    model = nn.Sequential(nn.Linear(5, 12), activation(), nn.LayerNorm(12), nn.Linear(12, 4)).to(dtype)
    path = tmp_path / "m.onnx"
    io.save_model(model, path, input_rank=rank)
    x = R.standard_normal((3, 7, 5) if rank == 3 else (7, 5)).astype(dtype)
    back = io.load_model(path)
    close(run(back, x), run(model, x), 1e-12)  # linea reads its own export exactly
    if dtype == "float64" and isinstance(model[1], (nn.Softplus, nn.GELU)):
        # ONNX Runtime's CPU provider has no float64 kernel for Softplus or Erf: the file is
        # valid ONNX (checked on export, read back above), the runtime refuses it.
        with pytest.raises(Exception, match="NOT_IMPLEMENTED"):
            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    # 1e-6, the bar; ORT's float64 kernels agree to ~1e-9, not to float64 round-off.
    close(got, run(model, x), 1e-6)


def test_keras_flavour_exports_to_onnx(tmp_path):
    model = lk.Sequential([lk.Input(shape=(5,)), lk.layers.Dense(6, activation="gelu"),
                           lk.layers.Dense(2, activation="sigmoid")])
    io.save_model(model, tmp_path / "k.onnx")
    session = ort.InferenceSession(str(tmp_path / "k.onnx"), providers=["CPUExecutionProvider"])
    close(session.run(None, {"input": X})[0], model.predict(X, verbose=0))


def test_torch_exported_onnx_imports_into_linea(tmp_path):
    pytest.importorskip("onnx")
    theirs = torch_mlp().eval()
    try:
        torch.onnx.export(theirs, (torch.from_numpy(X),), str(tmp_path / "t.onnx"), dynamo=False,
                          input_names=["input"], output_names=["output"], opset_version=17)
    except Exception as error:  # the exporter itself needs extra packages in some builds
        pytest.skip(f"torch.onnx.export is unavailable here: {error}")
    close(run(io.load_model(tmp_path / "t.onnx")), theirs(torch.from_numpy(X)).detach().numpy())


def test_cli_converts_a_keras_mlp_for_torch(tmp_path):
    theirs = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(16, activation="relu"),
                               keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    theirs.save(str(tmp_path / "mlp.keras"))
    result = subprocess.run([sys.executable, "-m", "linea", "convert", str(tmp_path / "mlp.keras"),
                             str(tmp_path / "mlp.safetensors")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "max |difference|" in result.stdout
    from safetensors.torch import load_file

    model = torch_mlp()
    model.load_state_dict(load_file(str(tmp_path / "mlp.safetensors")), strict=True)
    close(model(torch.from_numpy(X)).detach().numpy(), theirs.predict(X, verbose=0))


def test_keras_image_mlp_with_flatten_round_trips(tmp_path):
    theirs = keras.Sequential([keras.Input(shape=(8, 8)), keras.layers.Flatten(),
                               keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.2),
                               keras.layers.Dense(10, activation="softmax")])
    theirs.save(str(tmp_path / "img.keras"))
    images = R.standard_normal((4, 8, 8)).astype(np.float32)
    expected = theirs.predict(images, verbose=0)
    ours = io.load_model(tmp_path / "img.keras")
    close(run(ours, images), expected)
    close(io.load_model(tmp_path / "img.keras", flavour="keras").predict(images, verbose=0), expected)
    io.save_model(ours, tmp_path / "img.onnx")
    session = ort.InferenceSession(str(tmp_path / "img.onnx"), providers=["CPUExecutionProvider"])
    close(session.run(None, {"input": images.reshape(4, -1)})[0], expected)
