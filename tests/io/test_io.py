"""linea.io: every format both ways, layout detection, sharded files, loading into models, the CLI."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import linea
from linea import io, nn
from linea import keras as lk
from _helpers import assert_close

R = np.random.default_rng(51)
X = R.standard_normal((6, 4)).astype(np.float32)


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))


def outputs(model, x=X):
    if isinstance(model, lk.Sequential):
        return model.predict(x, verbose=0)
    with linea.no_grad():
        return model(x).numpy()


FILES = ["m.safetensors", "m.pt", "m.weights.h5", "m.keras", "m.onnx"]


@pytest.mark.parametrize("name", FILES)
def test_nn_model_round_trips_through_every_format(tmp_path, name):
    if name == "m.pt":
        pytest.importorskip("torch")
    if name.endswith((".h5", ".keras")):
        pytest.importorskip("h5py")
    if name.endswith(".onnx"):
        pytest.importorskip("onnx")
    model = mlp()
    io.save_model(model, tmp_path / name)
    for flavour in ("torch", "keras"):
        back = io.load_model(tmp_path / name, flavour=flavour, activation="tanh")
        assert_close(outputs(back), outputs(model))


@pytest.mark.parametrize("name", ["m.safetensors", "m.weights.h5", "m.keras"])
def test_keras_model_round_trips(tmp_path, name):
    pytest.importorskip("h5py")
    model = lk.Sequential([lk.Input(shape=(4,)), lk.layers.Dense(8, activation="relu"),
                           lk.layers.LayerNormalization(), lk.layers.Dense(3, activation="relu")])
    io.save_model(model, tmp_path / name)
    state = io.load_state_dict(tmp_path / name)
    assert any(k.endswith("/kernel") for k in state)
    if name == "m.keras":
        back = io.load_model(tmp_path / name, flavour="keras")
    else:  # a bare state dict with a norm needs the whole architecture
        with pytest.raises(linea.FormatError, match="layers="):
            io.load_model(tmp_path / name, flavour="keras", activation="relu")
        back = io.load_model(tmp_path / name, flavour="keras",
                             layers=["linear", "relu", "layernorm(eps=0.001)", "linear", "relu"])
    assert_close(outputs(back), outputs(model))


class TestLayoutDetection:
    def test_names_settle_the_layout(self):
        from linea.io._layout import specs_from_state

        torch_state = {"fc1.weight": np.ones((5, 3)), "fc2.weight": np.ones((2, 5))}
        keras_state = {"dense/kernel": np.ones((3, 5)), "dense_1/kernel": np.ones((5, 2))}
        for state in (torch_state, keras_state):
            specs = specs_from_state(state, "relu")
            assert [s.weight.shape for s in specs if s.kind == "linear"] == [(5, 3), (2, 5)]

    def test_shapes_alone_settle_a_non_square_chain(self):
        from linea.io._layout import specs_from_state

        state = {"l1.w": np.ones((3, 5)), "l1.b": np.ones(5), "l2.w": np.ones((5, 2))}
        specs = specs_from_state(state, "relu")
        assert specs[0].weight.shape == (5, 3)  # read as Keras (in, out) and transposed

    def test_square_layers_need_a_layout(self):
        from linea.io._layout import specs_from_state

        state = {"l1.w": np.ones((4, 4)), "l2.w": np.ones((4, 4))}
        with pytest.raises(linea.FormatError, match="layout='torch' or layout='keras'"):
            specs_from_state(state, "relu")
        assert specs_from_state(state, "relu", layout="keras")[0].weight.shape == (4, 4)

    def test_activation_is_required_between_layers(self):
        from linea.io._layout import specs_from_state

        with pytest.raises(linea.FormatError, match="activation="):
            specs_from_state({"0.weight": np.ones((5, 3)), "2.weight": np.ones((2, 5))})
        assert len(specs_from_state({"0.weight": np.ones((5, 3))})) == 1

    def test_conflicts_and_broken_chains(self):
        from linea.io._layout import specs_from_state

        with pytest.raises(linea.FormatError, match="say torch layout"):
            specs_from_state({"0.weight": np.ones((5, 3))}, layout="keras")
        with pytest.raises(linea.FormatError, match="takes 4 inputs"):
            specs_from_state({"0.weight": np.ones((5, 3)), "1.weight": np.ones((2, 4))}, "relu")
        with pytest.raises(linea.FormatError, match="mixes"):
            specs_from_state({"0.weight": np.ones((5, 3)), "d/kernel": np.ones((5, 2))}, "relu")

    def test_torch_layout_keys_give_activations_their_own_index(self):
        from linea.io._layout import state_from_specs

        specs = io.specs_of(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
        assert list(state_from_specs(specs, "torch")) == ["0.weight", "0.bias", "2.weight", "2.bias"]
        assert list(state_from_specs(specs, "keras")) == ["dense/kernel", "dense/bias",
                                                          "dense_1/kernel", "dense_1/bias"]


def test_sharded_safetensors(tmp_path):
    model = mlp()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    keys = list(state)
    io.save_state_dict({k: state[k] for k in keys[:3]}, tmp_path / "model-00001-of-00002.safetensors")
    io.save_state_dict({k: state[k] for k in keys[3:]}, tmp_path / "model-00002-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {k: ("model-00001-of-00002.safetensors" if i < 3 else
                                                "model-00002-of-00002.safetensors")
                                            for i, k in enumerate(keys)}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    loaded = io.load_state_dict(tmp_path / "model.safetensors.index.json")
    assert list(loaded) == keys and all(np.array_equal(loaded[k], state[k]) for k in keys)
    index["weight_map"][keys[0]] = "../escape.safetensors"
    (tmp_path / "bad.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(linea.FormatError, match="own folder"):
        io.load_state_dict(tmp_path / "bad.safetensors.index.json")


def test_load_into_an_existing_model_changes_nothing_on_failure(tmp_path):
    io.save_model(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), tmp_path / "small.safetensors")
    model = mlp()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(linea.StateDictError):
        io.load_model(tmp_path / "small.safetensors", model=model)
    for key, value in model.state_dict().items():
        assert np.array_equal(value.numpy(), before[key])


def test_load_keras_layout_into_an_nn_model(tmp_path):
    source = mlp()
    io.save_model(source, tmp_path / "k.safetensors", layout="keras")
    assert "dense/kernel" in io.load_state_dict(tmp_path / "k.safetensors")
    target = io.load_model(tmp_path / "k.safetensors", model=mlp(), activation="tanh")
    assert_close(outputs(target), outputs(source))


def test_unknown_extension_and_format():
    with pytest.raises(ValueError, match="extension"):
        io.load_state_dict("weights.bin")
    with pytest.raises(ValueError, match="format must be"):
        io.load_state_dict("w.safetensors", format="pickle")


def test_onnx_export_uses_gemm_for_2d_and_matmul_add_for_nd(tmp_path):
    onnx = pytest.importorskip("onnx")
    io.save_model(mlp(), tmp_path / "a.onnx")
    io.save_model(mlp(), tmp_path / "b.onnx", input_rank=3)
    ops_2d = [n.op_type for n in onnx.load(str(tmp_path / "a.onnx")).graph.node]
    ops_3d = [n.op_type for n in onnx.load(str(tmp_path / "b.onnx")).graph.node]
    assert ops_2d.count("Gemm") == 3 and "MatMul" not in ops_2d
    assert ops_3d.count("MatMul") == 3 and ops_3d.count("Add") == 3
    gemm = next(n for n in onnx.load(str(tmp_path / "a.onnx")).graph.node if n.op_type == "Gemm")
    assert {a.name: a.i for a in gemm.attribute}["transB"] == 1
    assert onnx.load(str(tmp_path / "a.onnx")).opset_import[0].version == 17


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "linea", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


class TestCli:
    def test_inspect_prints_a_table(self, tmp_path):
        io.save_model(mlp(), tmp_path / "m.safetensors")
        result = run_cli("inspect", tmp_path / "m.safetensors")
        assert result.returncode == 0, result.stderr
        assert "Linear(in=4, out=8)" in result.stdout and "torch" in result.stdout
        assert "total parameters: 139" in result.stdout

    def test_convert_verifies_and_reports_the_difference(self, tmp_path):
        pytest.importorskip("h5py")
        io.save_model(mlp(), tmp_path / "m.safetensors")
        result = run_cli("convert", tmp_path / "m.safetensors", tmp_path / "m.weights.h5",
                         "--activation", "tanh")
        assert result.returncode == 0, result.stderr
        # Keras runs the written file through torch, whose vectorised tanh may differ from
        # NumPy's by one float32 ulp (5.96e-08 for outputs near 1) depending on the CPU.
        reported = re.search(r"max \|difference\| = (\S+) over", result.stdout)
        assert reported and float(reported.group(1)) <= 2.4e-7, result.stdout
        assert result.stderr == ""
        back = io.load_model(tmp_path / "m.weights.h5", activation="tanh")
        assert_close(outputs(back), outputs(io.load_model(tmp_path / "m.safetensors", activation="tanh")))

    def test_convert_to_safetensors_flips_the_layout(self, tmp_path):
        io.save_model(mlp(), tmp_path / "t.safetensors")
        result = run_cli("convert", tmp_path / "t.safetensors", tmp_path / "k.safetensors",
                         "--activation", "tanh")
        assert result.returncode == 0 and "keras layout" in result.stdout
        assert "dense/kernel" in io.load_state_dict(tmp_path / "k.safetensors")

    @pytest.mark.parametrize("args,code,needle", [
        (["convert", "only-one"], 2, "required"),
        (["inspect", "missing.safetensors"], 1, "cannot read"),
        (["inspect", "file.bin"], 2, "extension"),
        (["convert", "m.safetensors", "out.safetensors"], 1, "activation"),
        (["convert", "m.safetensors", "out.safetensors", "--activation", "swishy"], 2, "activation must be"),
        (["frobnicate"], 2, "invalid choice"),
    ])
    def test_failures_are_one_line_without_traceback(self, tmp_path, args, code, needle):
        io.save_model(mlp(), tmp_path / "m.safetensors")
        (tmp_path / "file.bin").write_bytes(b"x")
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == code, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr

    def test_corrupt_file_is_exit_1(self, tmp_path):
        (tmp_path / "bad.onnx").write_bytes(b"\x00\x01garbage" * 10)
        result = run_cli("inspect", tmp_path / "bad.onnx")
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1


class TestNaturalOrderOfUnorderedFiles:
    """Files that store names sorted as text come back in natural order (dense_2 before dense_10)."""

    def test_keras_weights_file_written_without_creation_order(self, tmp_path):
        h5py = pytest.importorskip("h5py")
        path = tmp_path / "m.weights.h5"
        with h5py.File(path, "w") as handle:  # as Keras writes it: layers listed by name
            for index in range(12):
                group = handle.create_group(f"layers/{'dense' if index == 0 else f'dense_{index}'}/vars")
                group["0"] = np.full((2, 2), index, np.float32)
                group["1"] = np.full((2,), index, np.float32)
        state = io.load_state_dict(path)
        expected = [f"{name}/{leaf}" for name in ["dense"] + [f"dense_{i}" for i in range(1, 12)]
                    for leaf in ("kernel", "bias")]
        assert list(state) == expected
        assert [float(array.flat[0]) for array in state.values()] == [i for i in range(12) for _ in "kb"]

    def test_safetensors_written_by_another_tool(self, tmp_path):
        from safetensors.numpy import save_file

        tensors = {f"{i}.{leaf}": np.full((1,), i, np.float32) for i in range(12) for leaf in ("weight", "bias")}
        save_file(tensors, str(tmp_path / "m.safetensors"))
        layers = [key.split(".")[0] for key in io.load_state_dict(tmp_path / "m.safetensors")]
        assert layers == [str(i) for i in range(12) for _ in "wb"]

    @pytest.mark.oracle
    def test_real_keras_files(self, tmp_path):
        keras = pytest.importorskip("keras")
        theirs = keras.Sequential([keras.Input((3,))] + [keras.layers.Dense(3) for _ in range(11)])
        theirs.save_weights(tmp_path / "k.weights.h5")
        state = io.load_state_dict(tmp_path / "k.weights.h5")
        kernels = [array for key, array in state.items() if key.endswith("/kernel")]
        for ours, layer in zip(kernels, theirs.layers):
            np.testing.assert_array_equal(ours, layer.kernel.numpy())
