"""The interchange corpus: files written at test time by every tool a porter uses.

MLPs of 1–14 layers, square and not, with norms, dropout, bias=False and each
activation, are written with safetensors' ``save_file``/``save_model``,
``torch.save``, ``torch.onnx.export`` (TorchScript at opsets 13 and 17, dynamo at
18), Keras 3 ``save``/``save_weights``. Every file is read by linea three ways —
with the architecture a porter would give, with the short ``activation=`` form,
and with nothing — and each reading must give the source's outputs (to 1e-5) or
raise a clean FormatError. A wrong number is a failure; so is refusing a file
that the given architecture fully describes.
"""
import os
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

os.environ.setdefault("KERAS_BACKEND", "torch")
torch = pytest.importorskip("torch", reason="PyTorch is an oracle; install the test extra")
keras = pytest.importorskip("keras", reason="Keras 3 is an oracle; install the test extra")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is an oracle; install the test extra")
from safetensors.torch import save_file, save_model  # noqa: E402

import linea  # noqa: E402
from linea import io  # noqa: E402

ACTIVATIONS = {  # torch module → the layers= entry a porter writes
    "relu": (torch.nn.ReLU, "relu"), "tanh": (torch.nn.Tanh, "tanh"),
    "sigmoid": (torch.nn.Sigmoid, "sigmoid"), "gelu": (torch.nn.GELU, "gelu"),
    "gelu_tanh": (lambda: torch.nn.GELU(approximate="tanh"), "gelu_tanh"),
    "silu": (torch.nn.SiLU, "silu"),
    "leaky_relu": (torch.nn.LeakyReLU, "leaky_relu(negative_slope=0.01)"),
    "softplus": (torch.nn.Softplus, "softplus(threshold=20)"),
}

#: (name, depth, square, activation, norm, dropout, bias)
TORCH_CASES = [
    ("one-layer", 1, False, "relu", False, False, True),
    ("square-3-tanh", 3, True, "tanh", False, False, True),
    ("wide-5-gelu", 5, False, "gelu", False, False, True),
    ("square-12-relu", 12, True, "relu", False, False, True),
    ("square-14-sigmoid-nobias", 14, True, "sigmoid", False, False, False),
    ("norm-4-relu", 4, False, "relu", True, False, True),
    ("norm-3-silu-dropout", 3, True, "silu", True, True, True),
    ("dropout-6-leaky", 6, False, "leaky_relu", False, True, True),
    ("softplus-3", 3, False, "softplus", False, False, True),
    ("gelu-tanh-11-norm", 11, True, "gelu_tanh", True, False, False),
]
#: the dynamo exporter takes seconds a model: a subset covers its patterns
DYNAMO_CASES = {"wide-5-gelu", "norm-3-silu-dropout", "dropout-6-leaky", "softplus-3",
                "gelu-tanh-11-norm", "square-12-relu"}


def torch_model(depth, square, activation, norm, dropout, bias, seed):
    torch.manual_seed(seed)
    widths = [6] * (depth + 1) if square else [5 + (3 * i) % 7 for i in range(depth + 1)]
    modules, layers = [], []
    for index in range(depth):
        modules.append(torch.nn.Linear(widths[index], widths[index + 1], bias=bias))
        layers.append("linear")
        if index + 1 == depth:
            break
        if norm and index % 2 == 0:
            modules.append(torch.nn.LayerNorm(widths[index + 1]))
            layers.append("layernorm(eps=1e-05)")
        factory, entry = ACTIVATIONS[activation]
        modules.append(factory())
        layers.append(entry)
        if dropout:
            modules.append(torch.nn.Dropout(0.25))
            layers.append("dropout")
    model = torch.nn.Sequential(*modules).eval()
    with torch.no_grad():
        for module in model:
            if isinstance(module, torch.nn.LayerNorm):  # not the identity they start as
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model, layers, widths[0]


def outcome(load, x, expected):
    """'right', or 'refused' for a FormatError; a wrong model fails the test."""
    try:
        model = load()
    except linea.FormatError:
        return "refused"
    with linea.no_grad():
        got = model(x).numpy()
    assert got.shape == expected.shape, f"shape {got.shape}, the source gives {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    return "right"


def torch_files(model, folder, name, x):
    """{file: (kind, exact)}: exact files record the architecture."""
    files = {}
    save_file(model.state_dict(), folder / f"{name}.file.safetensors")
    files[f"{name}.file.safetensors"] = "weights"
    save_model(model, folder / f"{name}.model.safetensors")
    files[f"{name}.model.safetensors"] = "weights"
    torch.save(model.state_dict(), folder / f"{name}.pt")
    files[f"{name}.pt"] = "weights"
    sample = (torch.from_numpy(x),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for opset in (13, 17):
            path = folder / f"{name}.ts{opset}.onnx"
            torch.onnx.export(model, sample, str(path), dynamo=False, opset_version=opset,
                              input_names=["x"], dynamic_axes={"x": {0: "batch"}})
            files[path.name] = f"onnx-ts{opset}"
        if name in DYNAMO_CASES:
            path = folder / f"{name}.dyn18.onnx"
            torch.onnx.export(model, sample, str(path), dynamo=True, opset_version=18,
                              dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
            files[path.name] = "onnx-dynamo18"
    return files


@pytest.mark.parametrize("case", TORCH_CASES, ids=[case[0] for case in TORCH_CASES])
def test_torch_written_files(tmp_path, case):
    name, depth, square, activation, norm, dropout, bias = case
    model, layers, width = torch_model(depth, square, activation, norm, dropout, bias,
                                       seed=len(name))
    x = np.random.default_rng(depth).standard_normal((9, width)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    plain_chain = not norm and activation in ("relu", "tanh", "sigmoid", "gelu", "silu")
    for file, kind in torch_files(model, tmp_path, name, x).items():
        path = tmp_path / file
        if kind.startswith("onnx"):
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0],
                                       expected, rtol=1e-5, atol=1e-5)
            # (TorchScript before opset 17 writes LayerNorm as ReduceMean, Sub, Pow, …, Div.)
            assert outcome(lambda: io.load_model(path), x, expected) == "right", file
            continue
        square_hint = {"layout": "torch"} if square else {}
        got = outcome(lambda: io.load_model(path, layers=layers, **square_hint), x, expected)
        assert got == "right", (file, "refused although layers= describes the model")
        short_form = ACTIVATIONS[activation][1]
        short = outcome(lambda: io.load_model(path, activation=short_form, **square_hint), x, expected)
        assert short == "right" or not plain_chain or dropout, (file, short)
        if activation == "leaky_relu":  # which default? PyTorch's 0.01 or Keras's 0.2: refused
            with pytest.raises(ValueError, match="say the slope"):
                io.load_model(path, activation="leaky_relu", **square_hint)
        outcome(lambda: io.load_model(path), x, expected)  # right or refused, never wrong


#: (name, layers of the Keras model, layers= a porter gives for the weights file)
KERAS_CASES = [
    ("dense-1", [("dense", 4, None)], ["linear"]),
    ("dense-3-relu", [("dense", 8, "relu"), ("dense", 8, "relu"), ("dense", 3, None)],
     ["linear", "relu", "linear", "relu", "linear"]),
    ("dense-12-tanh", [("dense", 6, "tanh")] * 11 + [("dense", 6, None)],
     ["linear", "tanh"] * 11 + ["linear"]),
    ("norm-first", [("norm",), ("dense", 5, "gelu"), ("dense", 2, "softmax")],
     ["layernorm(eps=0.001)", "linear", "gelu", "linear", "softmax"]),
    ("norm-dropout", [("dense", 7, "relu"), ("norm",), ("dropout",), ("dense", 7, "sigmoid"),
                      ("norm",), ("dense", 2, None)],
     ["linear", "relu", "layernorm(eps=0.001)", "dropout", "linear", "sigmoid",
      "layernorm(eps=0.001)", "linear"]),
    ("activation-layers", [("dense", 5, None), ("activation", "silu"), ("dense", 4, None),
                           ("activation", "tanh"), ("dense", 1, None)],
     ["linear", "silu", "linear", "tanh", "linear"]),
    ("dense-14-nobias", [("dense-nobias", 6, "relu")] * 13 + [("dense-nobias", 6, None)],
     ["linear", "relu"] * 13 + ["linear"]),
    ("leaky-layer", [("dense", 5, None), ("leaky", 0.01), ("dense", 2, "leaky_relu")],
     ["linear", "leaky_relu(negative_slope=0.01)", "linear", "leaky_relu(negative_slope=0.2)"]),
]


def keras_model(spec, width=6, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((width,))]
    for entry in spec:
        if entry[0] == "dense":
            layers.append(keras.layers.Dense(entry[1], activation=entry[2]))
        elif entry[0] == "dense-nobias":
            layers.append(keras.layers.Dense(entry[1], activation=entry[2], use_bias=False))
        elif entry[0] == "norm":
            layers.append(keras.layers.LayerNormalization(beta_initializer="random_normal",
                                                          gamma_initializer="random_uniform"))
        elif entry[0] == "dropout":
            layers.append(keras.layers.Dropout(0.3))
        elif entry[0] == "leaky":
            layers.append(keras.layers.LeakyReLU(negative_slope=entry[1]))
        else:
            layers.append(keras.layers.Activation(entry[1]))
    return keras.Sequential(layers)


@pytest.mark.parametrize("case", KERAS_CASES, ids=[case[0] for case in KERAS_CASES])
def test_keras_written_files(tmp_path, case):
    name, spec, layers = case
    theirs = keras_model(spec, seed=len(name))
    x = np.random.default_rng(len(name)).standard_normal((9, 6)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(theirs(x, training=False))
    theirs.save(tmp_path / "m.keras")
    theirs.save_weights(tmp_path / "m.weights.h5")
    for flavour in ("torch", "keras"):
        loaded = io.load_model(tmp_path / "m.keras", flavour=flavour)
        with linea.no_grad():
            got = loaded(x).numpy() if flavour == "torch" else loaded.predict(x, verbose=0)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    weights = tmp_path / "m.weights.h5"
    assert outcome(lambda: io.load_model(weights, layers=layers), x, expected) == "right"
    outcome(lambda: io.load_model(weights), x, expected)
    activations = {entry[2] for entry in spec if entry[0].startswith("dense")} - {None}
    if len(activations) == 1 and activations != {"leaky_relu"}:  # its slope must be given
        outcome(lambda: io.load_model(weights, activation=activations.pop()), x, expected)


@pytest.mark.parametrize("case", [c for c in TORCH_CASES if c[0] in ("norm-4-relu", "dropout-6-leaky",
                                                                   "softplus-3")],
                         ids=lambda case: case[0])
def test_convert_torch_files_for_keras(tmp_path, case):
    """linea convert .pt → .keras: checked against PyTorch, and real Keras gives torch's outputs."""
    from linea._inspect import convert_file

    name, depth, square, activation, norm, dropout, bias = case
    model, layers, width = torch_model(depth, square, activation, norm, dropout, bias, seed=3)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    report = convert_file(tmp_path / "m.pt", tmp_path / "m.keras", layers=layers)
    assert report.reference == "PyTorch" and report.candidate == "Keras"
    assert report.difference <= 1e-5
    x = np.random.default_rng(1).standard_normal((9, width)).astype(np.float32)
    back = keras.saving.load_model(tmp_path / "m.keras")
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(back(x)), expected, rtol=1e-5, atol=1e-5)
