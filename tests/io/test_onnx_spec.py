"""ONNX import follows the operator spec: graphs built with onnx.helper, run by onnxruntime.

Every graph either gives onnxruntime's outputs through linea or is refused with
a FormatError naming the node; none may come back as a different model.
"""
import math
import os

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is an oracle; install the test extra")
onnx = pytest.importorskip("onnx", reason="onnx writes the test graphs; install the test extra")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import linea  # noqa: E402
from linea import io  # noqa: E402

R = np.random.default_rng(17)
F32 = TensorProto.FLOAT


def const(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def model(nodes, initializers, input_shape, opset=17, inputs=(), output="y", domain_opsets=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", F32, input_shape), *inputs],
        [helper.make_tensor_value_info(output, F32, None)], initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *domain_opsets])
    proto.ir_version = 8
    return proto


def save(proto, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(proto, str(path))
    return path


def ort_out(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def linea_out(path, x):
    with linea.no_grad():
        return io.load_model(path)(x).numpy()


def same(proto, tmp_path, x):
    path = save(proto, tmp_path)
    expected = ort_out(path, x)
    got = linea_out(path, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def refused(proto, tmp_path, match):
    path = save(proto, tmp_path)
    with pytest.raises(linea.FormatError, match=match):
        io.load_model(path)


def gemm(bias_shape, M=4, K=3, N=5, **attributes):
    W, b = R.standard_normal((N, K)), R.standard_normal(bias_shape)
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="gemm", transB=1, **attributes)]
    return model(nodes, [const("W", W), const("b", b)], [M, K])


class TestGemm:
    @pytest.mark.parametrize("bias_shape", [(), (1,), (5,), (1, 5), (1, 1)])
    def test_bias_broadcast_over_rows(self, tmp_path, bias_shape):
        same(gemm(bias_shape), tmp_path, R.standard_normal((4, 3)).astype(np.float32))

    @pytest.mark.parametrize("bias_shape", [(4, 1), (4, 5)])
    def test_bias_per_row_is_refused(self, tmp_path, bias_shape):
        refused(gemm(bias_shape), tmp_path, "per row")

    def test_column_bias_is_not_read_as_a_row_when_sizes_coincide(self, tmp_path):
        refused(gemm((5, 1), M=5), tmp_path, "per row")

    def test_alpha_beta_and_transb_0(self, tmp_path):
        W, b = R.standard_normal((3, 5)), R.standard_normal(5)
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["y"], alpha=0.5, beta=2.0)]
        same(model(nodes, [const("W", W), const("b", b)], ["batch", 3]), tmp_path,
             R.standard_normal((4, 3)).astype(np.float32))

    def test_trans_a_is_refused(self, tmp_path):
        nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], name="g", transA=1)]
        refused(model(nodes, [const("W", np.ones((4, 2)))], [4, 3]), tmp_path, "transA=1")

    def test_bias_as_a_graph_input_is_refused(self, tmp_path):
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="g", transB=1)]
        b = helper.make_tensor_value_info("b", F32, [2])
        refused(model(nodes, [const("W", np.ones((2, 3)))], ["n", 3], inputs=[b]), tmp_path,
                "graph input")

    def test_custom_domain_gemm_is_refused(self, tmp_path):
        nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], name="g", domain="com.example")]
        refused(model(nodes, [const("W", np.ones((3, 2)))], ["n", 3],
                      domain_opsets=[helper.make_opsetid("com.example", 1)]), tmp_path, "domain")


class TestMatMulAdd:
    @pytest.mark.parametrize("bias_shape", [(5,), (1, 5), (1, 1, 5), ()])
    def test_row_biases(self, tmp_path, bias_shape):
        nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["b", "h"], ["y"])]
        proto = model(nodes, [const("W", R.standard_normal((3, 5))),
                              const("b", R.standard_normal(bias_shape))], ["n", 7, 3])
        same(proto, tmp_path, R.standard_normal((2, 7, 3)).astype(np.float32))

    def test_bias_per_time_step_is_refused(self, tmp_path):
        nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
                 helper.make_node("Add", ["h", "b"], ["y"], name="add")]
        proto = model(nodes, [const("W", np.ones((3, 5))), const("b", np.ones((7, 1)))], ["n", 7, 3])
        refused(proto, tmp_path, "per\\s+row")

    def test_weight_times_data_is_refused(self, tmp_path):
        nodes = [helper.make_node("MatMul", ["W", "x"], ["y"], name="mm")]
        refused(model(nodes, [const("W", np.ones((2, 4)))], [4, 3]), tmp_path, "W·x")


def gelu_nodes(divisor=math.sqrt(2.0), half=0.5, x_in_product="h"):
    return [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.float32(divisor))),
            helper.make_node("Constant", [], ["one"], value_float=1.0),
            helper.make_node("Constant", [], ["half"], value_float=half),
            helper.make_node("Div", ["h", "c"], ["d"], name="div"), helper.make_node("Erf", ["d"], ["e"]),
            helper.make_node("Add", ["e", "one"], ["a"]),
            helper.make_node("Mul", [x_in_product, "a"], ["m"]),
            helper.make_node("Mul", ["m", "half"], ["y"])]


class TestActivations:
    def gelu_model(self, **kwargs):
        linear = helper.make_node("Gemm", ["x", "W"], ["h"], transB=1)
        return model([linear] + gelu_nodes(**kwargs), [const("W", R.standard_normal((4, 3)))], ["n", 3])

    def test_gelu_with_constant_nodes(self, tmp_path):
        same(self.gelu_model(), tmp_path, R.standard_normal((6, 3)).astype(np.float32))

    def test_gelu_with_other_constants_is_refused(self, tmp_path):
        refused(self.gelu_model(divisor=1.5), tmp_path, "Div")
        refused(self.gelu_model(half=0.25), tmp_path, "does not fit")

    def test_gelu_with_other_wiring_is_refused(self, tmp_path):
        refused(self.gelu_model(x_in_product="d"), tmp_path, "does not fit")

    def test_opset_20_gelu_op(self, tmp_path):
        nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1),
                 helper.make_node("Gelu", ["h"], ["y"], approximate="tanh")]
        same(model(nodes, [const("W", R.standard_normal((4, 3)))], ["n", 3], opset=20), tmp_path,
             R.standard_normal((6, 3)).astype(np.float32))

    @pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
    def test_softmax_before_opset_13_on_2d_uses_axis_1(self, tmp_path, op):
        nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1), helper.make_node(op, ["h"], ["y"])]
        same(model(nodes, [const("W", R.standard_normal((4, 3)))], ["n", 3], opset=11), tmp_path,
             R.standard_normal((6, 3)).astype(np.float32))

    def test_softmax_before_opset_13_on_3d_is_refused(self, tmp_path):
        nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
                 helper.make_node("Softmax", ["h"], ["y"], name="sm")]
        refused(model(nodes, [const("W", np.ones((3, 4)))], ["n", 2, 3], opset=11), tmp_path,
                "coerced to 2-D")

    def test_softmax_on_the_last_axis_given_as_positive_index(self, tmp_path):
        nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
                 helper.make_node("Softmax", ["h"], ["y"], axis=2)]
        same(model(nodes, [const("W", R.standard_normal((3, 4)))], ["n", 2, 3], opset=11), tmp_path,
             R.standard_normal((5, 2, 3)).astype(np.float32))

    def test_softmax_over_another_axis_is_refused(self, tmp_path):
        nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
                 helper.make_node("Softmax", ["h"], ["y"], axis=1, name="sm")]
        refused(model(nodes, [const("W", np.ones((3, 4)))], ["n", 2, 3]), tmp_path, "axis 1")

    def test_leaky_relu_keeps_its_slope(self, tmp_path):
        nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1),
                 helper.make_node("LeakyRelu", ["h"], ["y"], alpha=0.05)]
        same(model(nodes, [const("W", R.standard_normal((4, 3)))], ["n", 3]), tmp_path,
             R.standard_normal((6, 3)).astype(np.float32))


class TestFlattenAndReshape:
    @pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -2])
    def test_flatten_axis(self, tmp_path, axis):
        nodes = [helper.make_node("Flatten", ["x"], ["y"], axis=axis)]
        x = R.standard_normal((2, 3, 4, 5)).astype(np.float32)
        width = int(np.prod(x.shape[(axis % 4) if axis else 0:])) if axis else x.size
        nodes = [nodes[0], helper.make_node("MatMul", ["y", "W"], ["z"])]
        proto = model(nodes, [const("W", R.standard_normal((width, 2)))], [2, 3, 4, 5], output="z")
        same(proto, tmp_path, x)

    def test_flatten_of_a_1d_input_is_2d(self, tmp_path):
        nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["y"])]
        same(model(nodes, [const("W", R.standard_normal((1, 2)))], [3]), tmp_path,
             R.standard_normal(3).astype(np.float32))

    def test_reshape_that_flattens(self, tmp_path):
        shape = numpy_helper.from_array(np.array([-1, 12], np.int64), "s")
        nodes = [helper.make_node("Reshape", ["x", "s"], ["f"], allowzero=1),
                 helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
        same(model(nodes, [shape, const("W", R.standard_normal((2, 12)))], ["n", 3, 4]), tmp_path,
             R.standard_normal((5, 3, 4)).astype(np.float32))

    def test_reshape_that_does_not_flatten_is_refused(self, tmp_path):
        shape = numpy_helper.from_array(np.array([-1, 4], np.int64), "s")
        nodes = [helper.make_node("Reshape", ["x", "s"], ["f"], name="r"),
                 helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
        refused(model(nodes, [shape, const("W", np.ones((2, 4)))], ["n", 3, 4]), tmp_path,
                "not a flatten")


class TestLayerNormalization:
    def test_over_two_trailing_axes(self, tmp_path):
        nodes = [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-2, epsilon=1e-3)]
        proto = model(nodes, [const("s", R.standard_normal((3, 4))), const("b", R.standard_normal((3, 4)))],
                      ["n", 3, 4])
        proto.graph.node.append(helper.make_node("MatMul", ["y", "W"], ["z"]))
        proto.graph.initializer.append(const("W", R.standard_normal((4, 2))))
        proto.graph.output[0].name = "z"
        same(proto, tmp_path, R.standard_normal((5, 3, 4)).astype(np.float32))

    def test_without_bias(self, tmp_path):
        nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1),
                 helper.make_node("LayerNormalization", ["h", "s"], ["y"])]
        same(model(nodes, [const("W", R.standard_normal((4, 3))), const("s", R.standard_normal(4))],
                   ["n", 3]), tmp_path, R.standard_normal((6, 3)).astype(np.float32))

    def test_bias_as_a_graph_input_is_refused(self, tmp_path):
        nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1),
                 helper.make_node("LayerNormalization", ["h", "s", "b"], ["y"], name="ln")]
        b = helper.make_tensor_value_info("b", F32, [4])
        refused(model(nodes, [const("W", np.ones((4, 3))), const("s", np.ones(4))], ["n", 3],
                      inputs=[b]), tmp_path, "graph input")


class TestExternalData:
    def export(self, tmp_path, location="m.onnx.data"):
        from onnx.external_data_helper import convert_model_to_external_data

        proto = gemm((5,))
        convert_model_to_external_data(proto, all_tensors_to_one_file=True, location=location,
                                       size_threshold=0)
        onnx.save(proto, str(tmp_path / "m.onnx"))
        return tmp_path / "m.onnx"

    def test_external_data_beside_the_model(self, tmp_path):
        path = self.export(tmp_path)
        x = R.standard_normal((4, 3)).astype(np.float32)
        np.testing.assert_allclose(linea_out(path, x), ort_out(path, x), rtol=1e-6, atol=1e-6)

    def test_data_file_shorter_than_its_offsets_is_refused(self, tmp_path):
        path = self.export(tmp_path)
        data = tmp_path / "m.onnx.data"
        data.write_bytes(data.read_bytes()[:-8])
        with pytest.raises(linea.FormatError, match="external data claims"):
            io.load_model(path)

    def test_data_outside_the_model_folder_is_refused(self, tmp_path):
        inner = tmp_path / "inner"
        inner.mkdir()
        (tmp_path / "secret.data").write_bytes(b"\0" * 64)
        proto = gemm((5,))
        weight = proto.graph.initializer[0]
        weight.ClearField("raw_data")
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "../secret.data"), ("offset", "0"), ("length", "60")):
            weight.external_data.add(key=key, value=value)
        (inner / "m.onnx").write_bytes(proto.SerializeToString())  # onnx.save would refuse it
        with pytest.raises(linea.FormatError, match="outside the model's folder"):
            io.load_model(inner / "m.onnx")

    def test_data_that_is_not_a_regular_file_is_refused(self, tmp_path):
        path = self.export(tmp_path)
        os.unlink(tmp_path / "m.onnx.data")
        os.mkfifo(tmp_path / "m.onnx.data")
        with pytest.raises(linea.FormatError, match="not a regular file"):
            io.load_model(path)
