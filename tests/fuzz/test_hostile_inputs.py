"""Hostile inputs aimed at the readers: special files, stride tricks, size bombs, malformed configs.

Each case runs in a fresh subprocess that loads the file and reports the exception's
class, the time the load took and the growth of its peak memory. Every case must be a
``linea.FormatError`` within 2 s and 200 MB.
"""
from __future__ import annotations

import copy
import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import linea
from linea import keras as lk
from _helpers import PEAK_SOURCE

LOADER = PEAK_SOURCE + textwrap.dedent("""
    import json, sys, time, warnings
    warnings.simplefilter("ignore")

    import linea
    from linea import io, keras
    import linea.io._torch, linea.io._onnx_read, linea.keras._saving  # imports outside the timing
    try:
        import torch, onnx, h5py
    except ImportError:
        pass
    baseline = peak() / 1024
    for line in sys.stdin:
        path, how = json.loads(line)
        start = time.perf_counter()
        try:
            if how == "state":
                io.load_state_dict(path)
            elif how == "model":
                io.load_model(path)
            elif how == "keras":
                keras.models.load_model(path)
            elif how == "checkpoint":
                linea.load(path)
            outcome = "loaded"
        except linea.FormatError as error:
            outcome = "FormatError: " + str(error)[:300]
        except BaseException as error:
            outcome = type(error).__name__ + ": " + str(error)[:300]
        seconds = time.perf_counter() - start
        # The peak so far above the baseline: a bound on every case up to this one.
        grown = (peak() / 1024 - baseline) / 1024
        print(json.dumps({"outcome": outcome, "seconds": seconds, "megabytes": grown}), flush=True)
""")


def load_in_subprocess(cases: list) -> list:
    """Load every (path, how) in one fresh process; one report per case, in order."""
    result = subprocess.run([sys.executable, "-c", LOADER], input="".join(
        json.dumps([str(path), how]) + "\n" for path, how in cases), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.strip().splitlines()]


def assert_refused(path, how: str, match: str = ""):
    report = load_in_subprocess([(path, how)])[0]
    check(report, match)


def check(report: dict, match: str = ""):
    assert report["outcome"].startswith("FormatError"), report
    assert match.lower() in report["outcome"].lower(), report
    assert report["seconds"] < 2, report
    assert report["megabytes"] < 200, report


# ---- special files -------------------------------------------------------------------------

EXTENSIONS = {".safetensors": "state", ".pt": "state", ".weights.h5": "state", ".onnx": "model",
              ".keras": "keras"}


def refuse_all(cases: dict, how_of, match_of=lambda name: ""):
    """Load every case in one subprocess; each must be a quick, small FormatError."""
    names = sorted(cases)
    reports = load_in_subprocess([(cases[name], how_of(name)) for name in names])
    failures = []
    for name, report in zip(names, reports):
        try:
            check(report, match_of(name))
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)


def test_a_device_behind_a_model_name_is_refused_before_it_is_read(tmp_path):
    cases = {}
    for device in ("/dev/zero", "/dev/urandom"):
        for extension in EXTENSIONS:
            link = tmp_path / f"{os.path.basename(device)}{extension}"
            link.symlink_to(device)
            cases[f"{device} as {extension}"] = link
    refuse_all(cases, lambda name: EXTENSIONS[name.split(" as ")[1]], lambda name: "character device")


def test_a_fifo_without_a_writer_is_refused_without_hanging(tmp_path):
    cases = {}
    for extension in EXTENSIONS:
        fifo = tmp_path / f"model{extension}"
        os.mkfifo(fifo)
        cases[extension] = fifo
    refuse_all(cases, lambda name: EXTENSIONS[name], lambda name: "FIFO")


def test_a_directory_is_refused(tmp_path):
    folder = tmp_path / "model.safetensors"
    folder.mkdir()
    assert_refused(folder, "state", "directory")


def test_a_checkpoint_that_is_a_device_is_refused(tmp_path):
    link = tmp_path / "ckpt.safetensors"
    link.symlink_to("/dev/zero")
    assert_refused(link, "checkpoint", "character device")


def test_a_shard_symlinked_to_a_device_is_refused(tmp_path):
    from safetensors.numpy import save_file

    save_file({"0.weight": np.ones((2, 2), np.float32)}, str(tmp_path / "a.safetensors"))
    (tmp_path / "b.safetensors").symlink_to("/dev/urandom")
    index = {"metadata": {}, "weight_map": {"0.weight": "a.safetensors", "0.bias": "b.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert_refused(tmp_path / "model.safetensors.index.json", "state")


# ---- PyTorch stride tricks and meta tensors ----------------------------------------------------

def test_a_stride_zero_view_is_not_expanded(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"0.weight": torch.zeros(1).as_strided((100000, 10000), (0, 0)),
                "0.bias": torch.zeros(100000)}, tmp_path / "m.pt")
    assert (tmp_path / "m.pt").stat().st_size < 500_000
    assert_refused(tmp_path / "m.pt", "state", "storage")


def test_a_meta_tensor_is_a_format_error(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"0.weight": torch.empty(10 ** 6, 10 ** 6, device="meta")}, tmp_path / "m.pt")
    assert_refused(tmp_path / "m.pt", "state", "meta")


def test_views_within_their_storage_still_load(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32)
    torch.save({"0.weight": base[:12].view(3, 4).t(), "0.bias": base[12:16]}, tmp_path / "m.pt")
    state = linea.io.load_state_dict(tmp_path / "m.pt")
    np.testing.assert_array_equal(np.asarray(state["0.weight"]), np.arange(12).reshape(3, 4).T)
    np.testing.assert_array_equal(np.asarray(state["0.bias"]), np.arange(12, 16))


# ---- .keras config bombs and malformed configs -------------------------------------------------

@pytest.fixture(scope="module")
def keras_parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras")
    model = lk.Sequential([lk.Input(shape=(4,)), lk.layers.Dense(8, activation="relu"),
                           lk.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.save(folder / "base.keras")
    with zipfile.ZipFile(folder / "base.keras") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_keras(path, parts: dict, config: dict, flag_bits: int = 0) -> pathlib.Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, json.dumps(config) if name == "config.json" else data)
    data = bytearray(buffer.getvalue())
    if flag_bits:  # set general-purpose flag bits in every local and central header
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            start = data.find(signature)
            while start != -1:
                data[start + offset] |= flag_bits
                start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))
    return path


def edited(parts, edit):
    config = copy.deepcopy(json.loads(parts["config.json"]))
    edit(config)
    return config


def first_dense(config):
    return config["config"]["layers"][1]


SIZE_BOMBS = {
    "input_dim": lambda c: first_dense(c)["config"].update(input_dim=60_000_000),
    "input_shape": lambda c: first_dense(c)["config"].update(input_shape=[60_000_000]),
    "batch_input_shape": lambda c: first_dense(c)["config"].update(batch_input_shape=[None, 60_000_000]),
    "input_dim-1e12": lambda c: first_dense(c)["config"].update(input_dim=10 ** 12),
    "units": lambda c: first_dense(c)["config"].update(units=60_000_000),
    "input_layer": lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 60_000_000]),
    "build_config": lambda c: first_dense(c).update(build_config={"input_shape": [None, 60_000_000]}),
}


def test_a_config_declaring_huge_layers_is_refused_before_anything_is_built(tmp_path, keras_parts):
    cases = {name: write_keras(tmp_path / f"{name}.keras", keras_parts, edited(keras_parts, edit))
             for name, edit in SIZE_BOMBS.items()}
    assert all(path.stat().st_size < 50_000 for path in cases.values())
    refuse_all(cases, lambda name: "keras")


MALFORMED = {
    "config-is-a-list": lambda c: c.update(config=[1, 2]),
    "layers-config-is-a-list": lambda c: first_dense(c).update(config=[1]),
    "build-config-is-an-int": lambda c: first_dense(c).update(build_config=5),
    "model-build-config-is-an-int": lambda c: c.update(build_config=5),
    "dtype-config-is-a-number": lambda c: first_dense(c)["config"].update(dtype={"config": 5}),
    "dtype-is-a-list": lambda c: first_dense(c)["config"].update(dtype=[1]),
    "units-is-a-string": lambda c: first_dense(c)["config"].update(units="eight"),
    "activation-is-a-number": lambda c: first_dense(c)["config"].update(activation=7),
    "optimizer-config-is-a-list": lambda c: c["compile_config"].update(
        optimizer={"class_name": "Adam", "config": [1]}),
    "learning-rate-is-a-string": lambda c: c["compile_config"].update(
        optimizer={"class_name": "Adam", "config": {"learning_rate": "fast"}}),
    "schedule-is-unknown": lambda c: c["compile_config"].update(
        optimizer={"class_name": "Adam", "config": {"learning_rate": {"class_name": "Nope", "config": {}}}}),
    "compile-config-is-a-list": lambda c: c.update(compile_config=[1]),
}


def test_a_malformed_config_is_a_format_error(tmp_path, keras_parts):
    cases = {name: write_keras(tmp_path / f"{name}.keras", keras_parts, edited(keras_parts, edit))
             for name, edit in MALFORMED.items()}
    refuse_all(cases, lambda name: "keras")


def test_an_encrypted_zip_member_is_a_format_error(tmp_path, keras_parts):
    config = json.loads(keras_parts["config.json"])
    assert_refused(write_keras(tmp_path / "m.keras", keras_parts, config, flag_bits=0x1), "keras")


# ---- convert on a tiny file declaring a huge input ---------------------------------------------

def test_convert_on_a_tiny_file_with_a_huge_declared_width_fails_cleanly(tmp_path):
    from safetensors.numpy import save_file

    save_file({"0.weight": np.zeros((0, 2 ** 26), np.float32), "0.bias": np.zeros(0, np.float32)},
              str(tmp_path / "m.safetensors"))
    assert (tmp_path / "m.safetensors").stat().st_size < 1000
    result = subprocess.run([sys.executable, "-m", "linea", "convert", str(tmp_path / "m.safetensors"),
                             str(tmp_path / "out.onnx")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 3, result.stderr
    assert not (tmp_path / "out.onnx").exists()
