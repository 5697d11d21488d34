"""CNN files across frameworks through `linea convert` and linea.io, checked by the real tools:
a Keras .keras CNN becomes a .pt that real PyTorch loads strictly with Keras's predictions, a
PyTorch state dict becomes a .keras file and an .onnx file that Keras and onnxruntime run with
PyTorch's predictions, and a weights-only file without the architecture is refused."""
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

import linea  # noqa: E402
from linea import io  # noqa: E402
from _helpers import assert_close  # noqa: E402

RNG = np.random.default_rng(59)
LAYERS = "conv2d(padding=1),batchnorm,relu,maxpool2d(kernel=2),conv2d(stride=2),relu,flatten,linear"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "linea", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def torch_cnn():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 4, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 2 * 2, 5))
    model(torch.randn(16, 3, 10, 12))  # running statistics that are not the defaults
    return model.eval()


def keras_cnn():
    model = keras.Sequential([keras.Input((10, 12, 3)), keras.layers.Conv2D(6, 3, padding="same"),
                              keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(5)])
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w + 0.2 * RNG.random(w.shape).astype(w.dtype) for w in weights])
    return model


def images(n=6):
    return RNG.standard_normal((n, 3, 10, 12)).astype(np.float32)


def test_keras_cnn_to_pt_loads_strictly_into_torch_with_keras_predictions(tmp_path):
    theirs = keras_cnn()
    theirs.save(tmp_path / "cnn.keras")
    result = run_cli("convert", tmp_path / "cnn.keras", tmp_path / "cnn.pt")
    assert result.returncode == 0, result.stderr
    assert "Flatten permutation applied" in result.stdout
    assert "verified against Keras" in result.stdout and "run by PyTorch" in result.stdout
    twin = torch_cnn()
    twin[1].eps, twin[1].momentum = 1e-3, 0.01
    state = torch.load(tmp_path / "cnn.pt", weights_only=True)
    twin.load_state_dict(state, strict=True)
    x = images()
    with torch.no_grad():
        got = twin(torch.from_numpy(x)).numpy()
    assert_close(got, theirs.predict(x.transpose(0, 2, 3, 1), verbose=0), 1e-5)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_torch_state_dict_to_keras_and_onnx_with_torch_predictions(tmp_path, suffix):
    theirs = torch_cnn()
    source = tmp_path / f"cnn{suffix}"
    if suffix == ".pt":
        torch.save(theirs.state_dict(), source)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, source)
    x = images()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    result = run_cli("convert", source, tmp_path / "cnn.keras", "--layers", LAYERS, "--input-shape", "3,10,12")
    assert result.returncode == 0, result.stderr
    assert "Flatten permutation applied" in result.stdout and "verified against PyTorch" in result.stdout
    real = keras.saving.load_model(tmp_path / "cnn.keras")
    assert_close(real.predict(x.transpose(0, 2, 3, 1), verbose=0), expected, 1e-5)
    onnxruntime = pytest.importorskip("onnxruntime")
    result = run_cli("convert", source, tmp_path / "cnn.onnx", "--layers", LAYERS, "--input-shape", "3,10,12")
    assert result.returncode == 0, result.stderr
    session = onnxruntime.InferenceSession(str(tmp_path / "cnn.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert_close(got, expected, 1e-5)


def test_a_keras_weights_file_reads_with_the_architecture_and_image_size(tmp_path):
    theirs = keras_cnn()
    theirs.save_weights(tmp_path / "cnn.weights.h5")
    layers = ["conv2d(padding=same)", "batchnorm", "relu", "maxpool2d(kernel=2)", "conv2d(stride=2)",
              "relu", "flatten", "linear"]
    net = io.load_model(tmp_path / "cnn.weights.h5", layers=layers, input_shape=(3, 10, 12))
    x = images()
    assert_close(net(linea.tensor(x)), theirs.predict(x.transpose(0, 2, 3, 1), verbose=0), 1e-5)
    ours = io.load_model(tmp_path / "cnn.weights.h5", layers=layers, input_shape=(3, 10, 12),
                         flavour="keras")
    assert_close(ours.predict(x.transpose(0, 2, 3, 1), verbose=0),
                 theirs.predict(x.transpose(0, 2, 3, 1), verbose=0), 1e-5)


def test_a_cnn_state_dict_without_its_architecture_is_refused(tmp_path):
    torch.save(torch_cnn().state_dict(), tmp_path / "cnn.pt")
    with pytest.raises(linea.FormatError, match="layers="):
        io.load_model(tmp_path / "cnn.pt")
    with pytest.raises(linea.FormatError, match=r"input_shape=\(C, H, W\)"):
        io.load_model(tmp_path / "cnn.pt", layers=LAYERS)
    with pytest.raises(linea.FormatError, match="nn.Sequential numbering"):
        io.load_model(tmp_path / "cnn.pt", layers=LAYERS.replace("batchnorm,relu", "relu,batchnorm"),
                      input_shape=(3, 10, 12))
    with pytest.raises(linea.FormatError, match="takes 16 inputs"):
        io.load_model(tmp_path / "cnn.pt", layers=LAYERS, input_shape=(3, 14, 14))
    result = run_cli("convert", tmp_path / "cnn.pt", tmp_path / "out.keras", "--layers", LAYERS)
    assert result.returncode != 0 and "--input-shape" in result.stderr
    assert not (tmp_path / "out.keras").exists()


def test_inspect_lists_conv_pool_and_norm_layers(tmp_path):
    keras_cnn().save(tmp_path / "cnn.keras")
    result = run_cli("inspect", tmp_path / "cnn.keras")
    assert result.returncode == 0, result.stderr
    for needle in ("Conv2D(filters=6, kernel=(3, 3)", "kernel (3, 3, 3, 6)", "BatchNormalization",
                   "MaxPooling2D", "→ (4, 2, 2)", "→ (16,)"):
        assert needle in result.stdout, result.stdout
    torch.save(torch_cnn().state_dict(), tmp_path / "cnn.pt")
    result = run_cli("inspect", tmp_path / "cnn.pt")
    assert "Conv2d(in/groups=3, out=6, kernel=(3, 3))" in result.stdout and "BatchNorm" in result.stdout
