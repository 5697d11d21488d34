"""Every Keras 3 activation with an exact PyTorch twin, in both flavours, against both frameworks:
values and gradients against torch, Keras's own function, files Keras writes read and converted;
the ones without a twin refused by name."""
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import io, nn
from linea import keras as lk
import linea.nn.functional as F
from _helpers import gradcheck

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")
keras = pytest.importorskip("keras", reason="Keras is the oracle; install the test extra")

#: Keras name → (torch module, linea module) with the same settings.
TWINS = {
    "elu": (lambda: torch.nn.ELU(), lambda: nn.ELU()),
    "selu": (lambda: torch.nn.SELU(), lambda: nn.SELU()),
    "celu": (lambda: torch.nn.CELU(), lambda: nn.CELU()),
    "softsign": (lambda: torch.nn.Softsign(), lambda: nn.Softsign()),
    "relu6": (lambda: torch.nn.ReLU6(), lambda: nn.ReLU6()),
    "log_sigmoid": (lambda: torch.nn.LogSigmoid(), lambda: nn.LogSigmoid()),
    "hard_silu": (lambda: torch.nn.Hardswish(), lambda: nn.Hardswish()),
    "hard_swish": (lambda: torch.nn.Hardswish(), lambda: nn.Hardswish()),
    "hard_sigmoid": (lambda: torch.nn.Hardsigmoid(), lambda: nn.Hardsigmoid()),
    "mish": (lambda: torch.nn.Mish(), lambda: nn.Mish()),
    "hard_tanh": (lambda: torch.nn.Hardtanh(), lambda: nn.Hardtanh()),
    "tanh_shrink": (lambda: torch.nn.Tanhshrink(), lambda: nn.Tanhshrink()),
    "soft_shrink": (lambda: torch.nn.Softshrink(), lambda: nn.Softshrink()),
    "hard_shrink": (lambda: torch.nn.Hardshrink(), lambda: nn.Hardshrink()),
    "exponential": (lambda: torch.exp, lambda: nn.Exp()),
}
#: Settings other than the defaults, against torch.
SET = [(torch.nn.ELU, nn.ELU, {"alpha": 0.3}), (torch.nn.CELU, nn.CELU, {"alpha": 0.7}),
       (torch.nn.Hardtanh, nn.Hardtanh, {"min_val": -2.0, "max_val": 0.5}),
       (torch.nn.Softshrink, nn.Softshrink, {"lambd": 1.5}),
       (torch.nn.Hardshrink, nn.Hardshrink, {"lambd": 0.2})]
# Random values, the kinks (±3, 0, 6, ±0.5, ±1) and tails.
INPUT = np.concatenate([np.random.default_rng(3).standard_normal(40) * 4,
                        [-3.0, 3.0, 0.0, 6.0, 0.5, -0.5, 1.0, -1.0, 25.0, -25.0, -2.0, 1.5, 0.2, -0.2]])
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}


def compare(theirs, ours, dtype):
    values = INPUT.astype(dtype)
    if theirs is torch.exp:
        values = values / 8  # no overflow
    x_torch = torch.tensor(values, requires_grad=True)
    x_ours = linea.tensor(values, requires_grad=True)
    weights = np.random.default_rng(4).standard_normal(values.shape).astype(dtype)
    out_torch, out_ours = theirs(x_torch), ours(x_ours)
    (out_torch * torch.tensor(weights)).sum().backward()
    (out_ours * linea.tensor(weights)).sum().backward()
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(out_ours.numpy(), out_torch.detach().numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(x_ours.grad.numpy(), x_torch.grad.numpy(), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(TWINS))
def test_values_and_gradients_equal_torch_including_at_the_kinks(name, dtype):
    theirs, ours = TWINS[name]
    compare(theirs(), ours(), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("theirs, ours, settings", SET, ids=lambda v: getattr(v, "__name__", str(v)))
def test_settings_equal_torch(theirs, ours, settings, dtype):
    compare(theirs(**settings), ours(**settings), dtype)
    assert repr(ours(**settings)) == repr(theirs(**settings))


@pytest.mark.parametrize("function", [F.elu, F.selu, F.celu, F.softsign, F.logsigmoid, F.mish,
                                      F.tanhshrink, F.hardswish, F.hardsigmoid, F.relu6,
                                      F.hardtanh, F.softshrink, F.hardshrink])
def test_gradcheck_away_from_the_kinks(function):
    values = np.array([-4.2, -2.5, -1.3, -0.7, -0.1, 0.1, 0.8, 1.3, 2.4, 4.1, 7.3])
    gradcheck(function, values)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_keras_flavour_equals_keras(name):
    values = (INPUT / 8 if name == "exponential" else INPUT).astype(np.float32)
    theirs = np.asarray(keras.activations.get(name)(keras.ops.convert_to_tensor(values)))
    ours = lk.activations.get(name)(linea.tensor(values)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    assert lk.activations.serialize(lk.activations.get(name)) == \
        keras.layers.Dense(2, activation=name).get_config()["activation"]


@pytest.mark.parametrize("name", sorted(TWINS))
def test_keras_files_using_it_are_read_and_converted(name, tmp_path):
    keras.utils.set_random_seed(0)
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation=name),
                               keras.layers.Dense(3), keras.layers.Activation(name)])
    theirs.save(tmp_path / "m.keras")
    x = (np.random.default_rng(5).standard_normal((8, 4)) / (8 if name == "exponential" else 1)).astype(np.float32)
    expected = theirs.predict(x, verbose=0)
    ours = io.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ours(linea.tensor(x)).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    again = io.load_model(tmp_path / "m.keras", flavour="keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    io.save_model(ours, tmp_path / "back.keras")  # nn → Keras: the same activation string
    reread = keras.models.load_model(tmp_path / "back.keras")
    np.testing.assert_allclose(reread.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_onnx_round_trip_through_onnxruntime(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    _, ours = TWINS[name]
    model = nn.Sequential(nn.Linear(4, 6), ours(), nn.Linear(6, 2)).eval()
    io.save_model(model, tmp_path / "m.onnx")
    x = np.random.default_rng(6).standard_normal((5, 4)).astype(np.float32)
    expected = model(linea.tensor(x)).detach().numpy()
    run = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(run, expected, rtol=1e-5, atol=1e-6)
    reread = io.load_model(tmp_path / "m.onnx")
    assert type(reread[1]) is type(model[1])
    np.testing.assert_allclose(reread(linea.tensor(x)).detach().numpy(), expected, rtol=1e-6, atol=1e-6)


def test_an_onnx_hard_sigmoid_of_keras_2s_slope_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "w", "b"], ["h"], transB=1),
         helper.make_node("HardSigmoid", ["h"], ["output"], name="slope_0_2", alpha=0.2, beta=0.5)],
        "g", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", 2])],
        [onnx.numpy_helper.from_array(np.ones((2, 3), np.float32), "w"),
         onnx.numpy_helper.from_array(np.zeros(2, np.float32), "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "h.onnx")
    with pytest.raises(linea.FormatError, match="HardSigmoid node 'slope_0_2'.*alpha"):
        io.load_model(tmp_path / "h.onnx")


@pytest.mark.parametrize("name", ["squareplus", "sparse_plus", "sparsemax"])
def test_a_keras_activation_without_a_twin_is_refused_naming_the_layer(name, tmp_path):
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation=name, name="head")])
    theirs.save(tmp_path / "m.keras")
    with pytest.raises(linea.FormatError, match=f"layer 'head' \\(Dense\\) uses the activation '{name}'"):
        io.load_model(tmp_path / "m.keras")
    result = subprocess.run([sys.executable, "-m", "linea", "convert", str(tmp_path / "m.keras"),
                             str(tmp_path / "m.pt")], capture_output=True, text=True)
    assert result.returncode != 0 and "'head'" in result.stderr and not (tmp_path / "m.pt").exists()


def test_settings_keras_cannot_name_are_refused_with_the_reason():
    with pytest.raises(TypeError, match="no Keras"):
        linea.convert.to_keras(nn.Sequential(nn.Linear(3, 2), nn.ELU(alpha=0.3)))


def test_layers_entries_take_the_registry_settings(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Softshrink(1.5), nn.Linear(4, 2))
    io.save_state_dict(model.state_dict(), tmp_path / "m.safetensors")
    loaded = io.load_model(tmp_path / "m.safetensors", layers=["linear", "soft_shrink(lambd=1.5)", "linear"])
    assert repr(loaded[1]) == "Softshrink(1.5)"
    x = linea.randn(4, 3)
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())


TORCH_EXPORTED = {"ReLU6": {}, "Hardtanh": {"min_val": -2.0, "max_val": 0.5}, "LogSigmoid": {},
                  "Mish": {}, "Tanhshrink": {}, "ELU": {"alpha": 0.3}, "SELU": {}, "CELU": {"alpha": 0.7},
                  "Hardsigmoid": {}, "Hardswish": {}, "Softsign": {}}


@pytest.mark.parametrize("exporter", [(False, 13), (False, 17), (True, 18)], ids=str)
@pytest.mark.parametrize("name", sorted(TORCH_EXPORTED))
def test_files_both_torch_exporters_write_are_read_exactly(name, exporter, tmp_path):
    import warnings

    dynamo, opset = exporter
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), getattr(torch.nn, name)(**TORCH_EXPORTED[name]),
                                 torch.nn.Linear(6, 2)).eval()
    x = torch.randn(5, 4) * 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(theirs, (x,), str(tmp_path / "m.onnx"), dynamo=True, opset_version=opset,
                              dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
        else:
            torch.onnx.export(theirs, (x,), str(tmp_path / "m.onnx"), dynamo=False, opset_version=opset,
                              input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    ours = io.load_model(tmp_path / "m.onnx")
    assert type(ours[1]) is getattr(nn, name)
    np.testing.assert_allclose(ours(linea.tensor(x.numpy())).detach().numpy(), theirs(x).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["Softshrink", "Hardshrink"])
def test_torch_decompositions_linea_does_not_match_are_refused_by_node(name, tmp_path):
    import warnings

    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), getattr(torch.nn, name)(0.4), torch.nn.Linear(6, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(theirs.eval(), (torch.randn(2, 4),), str(tmp_path / "m.onnx"), dynamo=False,
                          opset_version=17)
    with pytest.raises(linea.FormatError, match="does not fit"):
        io.load_model(tmp_path / "m.onnx")


def test_a_keras_activation_layer_linea_lacks_is_refused_naming_it(tmp_path):
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.ELU(name="my_elu")])
    theirs.save(tmp_path / "m.keras")
    with pytest.raises(linea.FormatError, match="layer 'my_elu' of type 'ELU' is not supported"):
        io.load_model(tmp_path / "m.keras")
