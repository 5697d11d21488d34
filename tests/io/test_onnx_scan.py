"""The ONNX initializer scan: what protobuf parses without the weights, plus where the weights lie,
must equal the whole file parsed by onnx itself."""
import os

import numpy as np
import pytest

from linea import io, nn
from linea.io._onnx_scan import strip_initializer_data

onnx = pytest.importorskip("onnx")
numpy_helper = pytest.importorskip("onnx.numpy_helper")


def check_against_onnx(path):
    whole = onnx.load(str(path))
    descriptor = os.open(path, os.O_RDONLY)
    try:
        stripped, spans = strip_initializer_data(descriptor)
        light = onnx.load_model_from_string(stripped)
        assert len(stripped) < 0.05 * os.path.getsize(path) + 4096
        assert [t.name for t in light.graph.initializer] == [t.name for t in whole.graph.initializer]
        for tensor, light_tensor, span in zip(whole.graph.initializer, light.graph.initializer, spans):
            expected = numpy_helper.to_array(tensor)
            if span is None:
                np.testing.assert_array_equal(numpy_helper.to_array(light_tensor), expected)
                continue
            offset, length = span
            raw = os.pread(descriptor, length, offset)
            assert raw == tensor.raw_data
        light_graph = onnx.helper.make_graph(light.graph.node, "g", light.graph.input, light.graph.output)
        whole_graph = onnx.helper.make_graph(whole.graph.node, "g", whole.graph.input, whole.graph.output)
        assert light_graph == whole_graph
    finally:
        os.close(descriptor)


def test_a_linea_written_file_is_located_exactly(tmp_path):
    model = nn.Sequential(nn.Linear(30, 20), nn.Tanh(), nn.LayerNorm(20), nn.Linear(20, 3))
    io.save_model(model, tmp_path / "m.onnx")
    check_against_onnx(tmp_path / "m.onnx")
    state = io.load_state_dict(tmp_path / "m.onnx")
    np.testing.assert_array_equal(state["0.weight"], model[0].weight.numpy())


def test_a_torch_exported_file_is_located_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(12, 7), torch.nn.ReLU(), torch.nn.Linear(7, 2))
    torch.onnx.export(model, (torch.randn(1, 12),), str(tmp_path / "t.onnx"), dynamo=False)
    check_against_onnx(tmp_path / "t.onnx")
    state = io.load_state_dict(tmp_path / "t.onnx")
    np.testing.assert_allclose(state["2.weight"], model[2].weight.detach().numpy())


def test_an_unusual_layout_falls_back_to_a_whole_parse(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    io.save_model(model, tmp_path / "m.onnx")
    data = (tmp_path / "m.onnx").read_bytes()
    (tmp_path / "twice.onnx").write_bytes(data + b"\x3a\x00")  # field 7 again: an empty second graph
    descriptor = os.open(tmp_path / "twice.onnx", os.O_RDONLY)
    try:
        assert strip_initializer_data(descriptor) is None
    finally:
        os.close(descriptor)
    state = io.load_state_dict(tmp_path / "twice.onnx")  # protobuf merges the two graph fields
    np.testing.assert_array_equal(state["0.weight"], model[0].weight.numpy())
