"""linea.save / linea.load: safetensors checkpoints, atomic writes, resume, bad files."""
import json
import os
import pathlib
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

import linea
from linea import nn

HERE = pathlib.Path(__file__).resolve().parent


def test_round_trip_of_a_training_checkpoint(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    optimizer = linea.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(linea.ones(2, 3)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": linea.get_rng_state(), "epoch": 7, "loss": 0.25, "tags": ["a", None, True],
             "pair": (1, 2.5), "nan": float("nan"), "array": np.arange(3)}
    path = tmp_path / "checkpoint.safetensors"
    linea.save(state, path)
    loaded = linea.load(path)
    assert loaded["epoch"] == 7 and loaded["loss"] == 0.25 and loaded["tags"] == ["a", None, True]
    assert loaded["pair"] == (1, 2.5) and np.isnan(loaded["nan"])
    assert isinstance(loaded["array"], np.ndarray) and loaded["array"].tolist() == [0, 1, 2]
    assert list(loaded["model"]) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert np.array_equal(loaded["model"][key].numpy(), value.numpy())
    assert set(loaded["optimizer"]["state"]) == {0, 1, 2, 3}  # int keys survive
    assert loaded["optimizer"]["param_groups"][0]["params"] == [0, 1, 2, 3]
    fresh = linea.optim.SGD(model.parameters(), lr=0.5)
    fresh.load_state_dict(loaded["optimizer"])
    assert fresh.param_groups[0]["lr"] == 0.1


def test_a_state_dict_is_a_plain_safetensors_file(tmp_path):
    from safetensors.numpy import load_file

    model = nn.Linear(3, 2)
    linea.save(model.state_dict(), tmp_path / "m.safetensors")
    plain = load_file(str(tmp_path / "m.safetensors"))
    assert sorted(plain) == ["bias", "weight"]
    assert np.array_equal(plain["weight"], model.weight.numpy())


def test_save_rejects_objects_it_cannot_store_and_writes_nothing(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="cannot store a object"):
        linea.save({"bad": object()}, path)
    assert not path.exists()


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    linea.save({"a": linea.ones(2)}, path)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        linea.save({"a": linea.zeros(1000)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]


def run_training(*args):
    return subprocess.run([sys.executable, str(HERE / "_resumable_training.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_killed_and_resumed_training_equals_uninterrupted_training(tmp_path):
    straight = run_training(tmp_path / "a.ckpt", tmp_path / "a.result", 5)
    assert straight.returncode == 0, straight.stderr
    killed = run_training(tmp_path / "b.ckpt", tmp_path / "b.result", 5, 2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "b.result").exists()
    assert linea.load(tmp_path / "b.ckpt")["epoch"] == 2
    resumed = run_training(tmp_path / "b.ckpt", tmp_path / "b.result", 5)
    assert resumed.returncode == 0, resumed.stderr
    a, b = linea.load(tmp_path / "a.result"), linea.load(tmp_path / "b.result")
    assert list(a) == list(b)
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    linea.save({"model": nn.Linear(4, 3).state_dict(), "epoch": 1}, path)
    return path


def corrupt(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("cut", [0, 4, 8, 20, -1, -12])
def test_truncated_checkpoints_raise_format_error(good_file, cut):
    data = good_file.read_bytes()
    bad = corrupt(good_file.with_name("bad"), data[:cut] if cut >= 0 else data[:len(data) + cut])
    with pytest.raises(linea.FormatError):
        linea.load(bad)


def test_random_bytes_raise_format_error(tmp_path):
    bad = corrupt(tmp_path / "noise", np.random.default_rng(0).bytes(4096))
    with pytest.raises(linea.FormatError, match="header"):
        linea.load(bad)


def test_flipped_bytes_never_crash(good_file):
    data = bytearray(good_file.read_bytes())
    rng = np.random.default_rng(1)
    for trial in range(200):
        mutated = bytearray(data)
        for position in rng.integers(0, len(data), 3):
            mutated[position] ^= 1 << int(rng.integers(0, 8))
        bad = corrupt(good_file.with_name("flip"), bytes(mutated))
        try:
            linea.load(bad)
        except linea.FormatError:
            pass


def header_file(tmp_path, header: dict, payload: bytes = b""):
    raw = json.dumps(header).encode()
    return corrupt(tmp_path / "crafted", struct.pack("<Q", len(raw)) + raw + payload)


@pytest.mark.parametrize("entry,message", [
    ({"w": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 4]}}, "needs"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}}, "needs"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, "needs"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "v": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, "overlap"),
    ({"w": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}, "dtype"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "shape"),
    ({"__metadata__": {"linea.tree": "{\"tensor\": \"missing\"}"}}, "missing"),
    ({"__metadata__": {"linea.tree": "[" * 100000 + "]" * 100000}}, "JSON|deeply"),
    ({"__metadata__": {"linea.tree": "{\"evil\": 1}"}}, "unknown"),
    ({"__metadata__": {"x": 5}}, "strings"),
])
def test_hostile_headers_raise_format_error(tmp_path, entry, message):
    payload = b"\0" * 8 if any(k != "__metadata__" for k in entry) else b""
    bad = header_file(tmp_path, entry, payload)
    with pytest.raises(linea.FormatError, match=message):
        linea.load(bad)


def test_uncovered_bytes_raise_format_error(tmp_path):
    bad = header_file(tmp_path, {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 9)
    with pytest.raises(linea.FormatError, match="cover"):
        linea.load(bad)


def test_zero_dim_tensors_keep_their_shape(tmp_path):
    linea.save({"step": linea.tensor(3.0), "other": [1]}, tmp_path / "s")
    assert linea.load(tmp_path / "s")["step"].shape == ()


def test_header_length_past_the_end(tmp_path):
    bad = corrupt(tmp_path / "x", struct.pack("<Q", 2 ** 60) + b"{}")
    with pytest.raises(linea.FormatError, match="truncated"):
        linea.load(bad)


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(linea.FormatError, match="cannot read"):
        linea.load(tmp_path / "nope.safetensors")


def test_format_error_is_a_value_error():
    assert issubclass(linea.FormatError, ValueError)
