"""ONNX CNNs: files torch's exporters write read with torch's predictions and convert to Keras
verified by onnxruntime; linea's own exports (Conv, BatchNormalization, MaxPool, AveragePool,
GlobalAveragePool) run in onnxruntime with linea's outputs; what the layer list cannot express
is refused naming the node."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

onnx = pytest.importorskip("onnx", reason="ONNX files are made with the onnx package")
onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle")
torch = pytest.importorskip("torch", reason="PyTorch writes the files")

import linea  # noqa: E402
from linea import io, nn  # noqa: E402
from _helpers import assert_close  # noqa: E402

RNG = np.random.default_rng(61)


def torch_cnn(padded_average: bool):
    average = torch.nn.AvgPool2d(2, padding=1) if padded_average else torch.nn.AvgPool2d(2)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 4, 3, stride=2), torch.nn.ReLU(),
        average, torch.nn.Flatten(), torch.nn.Linear(16 if padded_average else 4, 5))
    model(torch.randn(16, 3, 10, 12))
    return model.eval()


@pytest.mark.parametrize("padded_average", [False, True], ids=["plain", "padded-average"])
@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_cnns_torch_exports_read_with_torch_predictions(tmp_path, dynamo, padded_average):
    theirs = torch_cnn(padded_average)
    x = torch.from_numpy(RNG.standard_normal((4, 3, 10, 12)).astype(np.float32))
    path = tmp_path / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(theirs, (x,), str(path), dynamo=dynamo, input_names=["x"])
    with torch.no_grad():
        expected = theirs(x).numpy()
    assert_close(io.load_model(path)(linea.tensor(x.numpy())), expected, 1e-5)
    done = subprocess.run([sys.executable, "-m", "linea", "convert", str(path), str(tmp_path / "cnn.keras")],
                          capture_output=True, text=True, timeout=300)
    if padded_average:  # PyTorch counts the padding in the average; Keras never does
        assert done.returncode != 0 and "count_include_pad" in done.stderr
        assert not (tmp_path / "cnn.keras").exists()
        return
    assert done.returncode == 0, done.stderr
    assert "verified against onnxruntime" in done.stdout


def test_linea_exports_of_image_layers_run_in_onnxruntime(tmp_path):
    ours = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                         nn.Conv2d(4, 3, 2, dilation=2), nn.MaxPool2d(2, stride=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    ours(linea.tensor(RNG.standard_normal((8, 2, 9, 9)).astype(np.float32)))  # running statistics
    ours.eval()
    for module in ours:
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data = linea.tensor(RNG.random(4).astype(np.float32) + 0.5)
    with pytest.raises(ValueError, match=r"input_shape=\(C, H, W\)"):
        io.save_model(ours, tmp_path / "ours.onnx")
    io.save_model(ours, tmp_path / "ours.onnx", input_shape=(2, 9, 9))
    ops = [node.op_type for node in onnx.load(str(tmp_path / "ours.onnx")).graph.node]
    for op in ("Conv", "BatchNormalization", "AveragePool", "MaxPool", "GlobalAveragePool"):
        assert op in ops, ops
    x = RNG.standard_normal((5, 2, 9, 9)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "ours.onnx"), providers=["CPUExecutionProvider"])
    with linea.no_grad():
        expected = ours(linea.tensor(x)).numpy()
    assert_close(session.run(None, {session.get_inputs()[0].name: x})[0], expected, 1e-5)
    back = io.load_model(tmp_path / "ours.onnx")
    assert_close(back(linea.tensor(x)), expected, 1e-5)


def _graph(tmp_path, node, weights=(), shape=(1, 2, 6, 6)):
    helper = onnx.helper
    initializers = [onnx.numpy_helper.from_array(array, name) for name, array in weights]
    graph = helper.make_graph(
        [node, helper.make_node("Flatten", [node.output[0]], ["flat"]),
         helper.make_node("Gemm", ["flat", "w", "b"], ["y"], transB=1)], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializers + [onnx.numpy_helper.from_array(np.zeros((1, 8), np.float32), "w"),
                        onnx.numpy_helper.from_array(np.zeros(1, np.float32), "b")])
    path = tmp_path / f"{node.name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_image_ops_linea_cannot_express_are_refused_naming_the_node(tmp_path):
    helper = onnx.helper
    cases = {
        "ceil": (helper.make_node("MaxPool", ["x"], ["p"], name="ceil", kernel_shape=[2, 2], ceil_mode=1), ()),
        "lower": (helper.make_node("AveragePool", ["x"], ["p"], name="lower", kernel_shape=[3, 3],
                                   auto_pad="SAME_LOWER", strides=[2, 2]), ()),
        "train": (helper.make_node("BatchNormalization", ["x", "s", "bb", "m", "v"], ["p"], name="train",
                                   training_mode=1),
                  [(n, np.ones(2, np.float32)) for n in ("s", "bb", "m", "v")]),
        "conv1d": (helper.make_node("Conv", ["x", "k"], ["p"], name="conv1d"),
                   [("k", np.ones((2, 2, 3), np.float32))]),
    }
    for name, (node, weights) in cases.items():
        path = _graph(tmp_path, node, weights)
        with pytest.raises(linea.FormatError, match=repr(name)):
            io.load_model(path)
