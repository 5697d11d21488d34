"""Files written as a careful tool writes them, and save refusing what load cannot read back."""
import os
import signal
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import linea
from linea import io, nn
from linea._files import atomic_write


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_0666_minus_the_umask_as_open_gives_it(tmp_path):
    old = os.umask(0o022)
    try:
        linea.save({"a": linea.ones(2)}, tmp_path / "new.safetensors")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "new.safetensors") == mode_of(tmp_path / "plain") == 0o644


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_an_overwritten_file_keeps_its_mode(tmp_path, mode):
    path = tmp_path / "c.safetensors"
    linea.save({"a": linea.ones(2)}, path)
    os.chmod(path, mode)
    linea.save({"a": linea.zeros(3)}, path)
    assert mode_of(path) == mode
    assert linea.load(path)["a"].shape == (3,)


@pytest.mark.parametrize("writer", ["checkpoint", "safetensors", "torch", "keras", "onnx"])
def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path, writer):
    if writer == "torch":
        pytest.importorskip("torch")
    if writer == "keras":
        pytest.importorskip("h5py")
    if writer == "onnx":
        pytest.importorskip("onnx")
    extension = {"checkpoint": ".safetensors", "safetensors": ".safetensors", "torch": ".pt",
                 "keras": ".weights.h5", "onnx": ".onnx"}[writer]
    real = tmp_path / "store" / f"real{extension}"
    real.parent.mkdir()
    link = tmp_path / f"link{extension}"
    link.symlink_to(real)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    if writer == "checkpoint":
        linea.save(model.state_dict(), link)
    else:
        io.save_model(model, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.is_file() and real.stat().st_size > 0
    assert sorted(p.name for p in real.parent.iterdir()) == [real.name]


def test_the_folder_is_flushed_after_the_rename(tmp_path, monkeypatch):
    flushed = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        flushed.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    linea.save({"a": linea.ones(2)}, tmp_path / "c.safetensors")
    assert flushed == [False, True]  # the file's data, then the folder holding the new name


def test_writing_to_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        atomic_write(tmp_path, b"x")


KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import linea
    from linea import _files
    real_replace = os.replace
    def killed_before_rename(source, target):
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace = killed_before_rename
    linea.save({"w": linea.zeros(256, 1024)}, sys.argv[1])
""")


def test_saves_killed_before_the_rename_leave_at_most_one_temporary_behind(tmp_path):
    target = tmp_path / "c.safetensors"
    linea.save({"w": linea.ones(2)}, target)
    for _ in range(4):
        killed = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)], capture_output=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        left = [p.name for p in tmp_path.iterdir() if p.name != "c.safetensors"]
        assert len(left) == 1, left  # each new save first removed the dead one's file
    assert linea.load(target)["w"].shape == (2,)  # the good file was never touched
    linea.save({"w": linea.ones(3)}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]


def test_a_temporary_of_a_live_process_is_left_alone(tmp_path):
    target = tmp_path / "c.safetensors"
    sibling = tmp_path / f".c.safetensors.{os.getppid()}-1.linea-tmp"
    sibling.write_bytes(b"being written by someone alive")
    linea.save({"w": linea.ones(2)}, target)
    assert sibling.exists()


@pytest.mark.parametrize("dtype", ["complex64", "complex128", "float8_e4m3fn", "float8_e5m2", "str"])
def test_save_refuses_a_dtype_load_cannot_read_and_leaves_the_old_file(tmp_path, dtype):
    path = tmp_path / "c.safetensors"
    linea.save({"a": linea.ones(2)}, path)
    before = path.read_bytes()
    if dtype.startswith("float8"):
        import ml_dtypes

        array = np.ones(4, dtype=getattr(ml_dtypes, dtype))
    elif dtype == "str":
        array = np.array(["a", "b"])
    else:
        array = np.ones(4, dtype=dtype)
    with pytest.raises(TypeError, match="nothing was written"):
        linea.save({"a": linea.Tensor._make(array)}, path)
    with pytest.raises(TypeError, match="nothing was written"):
        linea.save({"state": {"a": array}, "epoch": 3}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int16,
                                   np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.bool_,
                                   "bfloat16"])
def test_every_dtype_save_accepts_loads_back_bit_for_bit(tmp_path, dtype):
    if dtype == "bfloat16":
        dtype = linea.bfloat16.numpy
    array = (np.arange(12) % 5).astype(dtype).reshape(3, 4)
    linea.save({"a": linea.Tensor._make(array), "nested": {"b": array.T.copy()}}, tmp_path / "c.safetensors")
    back = linea.load(tmp_path / "c.safetensors")
    assert back["a"].numpy().dtype == array.dtype
    assert back["a"].numpy().tobytes() == array.tobytes()
    assert np.asarray(back["nested"]["b"]).tobytes() == array.T.copy().tobytes()


def test_a_checkpoint_whose_tree_is_huge_is_refused_on_both_sides(tmp_path):
    from safetensors.numpy import save_file

    from linea._serialization import _MAX_TREE

    with pytest.raises(ValueError, match="nothing was written"):
        linea.save({"steps": list(range(_MAX_TREE // 4))}, tmp_path / "big.safetensors")
    assert not (tmp_path / "big.safetensors").exists()
    tree = '{"list": [' + ", ".join(['{"value": 1}'] * (_MAX_TREE // 12)) + "]}"
    save_file({"t": np.zeros(1, np.float32)}, str(tmp_path / "bomb.safetensors"),
              metadata={"format": "linea", "linea.tree": tree})
    with pytest.raises(linea.FormatError, match="metadata tree"):
        linea.load(tmp_path / "bomb.safetensors")


@pytest.mark.parametrize("dtype", ["complex64", "bfloat16", "int64"])
def test_convert_of_a_pt_with_weights_linea_cannot_hold_writes_nothing_and_exits_1(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    torch.save({"0.weight": torch.ones(3, 4, dtype=getattr(torch, dtype)),
                "0.bias": torch.ones(3, dtype=getattr(torch, dtype))}, tmp_path / "m.pt")
    for target in ("out.safetensors", "out.weights.h5"):
        result = subprocess.run([sys.executable, "-m", "linea", "convert", str(tmp_path / "m.pt"),
                                 str(tmp_path / target)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result.stderr
        assert f"dtype {dtype}" in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / target).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_save_state_dict_refuses_what_it_could_not_read_back(tmp_path):
    for extension in (".safetensors", ".pt"):
        with pytest.raises(TypeError, match="nothing was written"):
            io.save_state_dict({"w": np.ones(3, np.complex64)}, tmp_path / f"s{extension}")
    assert list(tmp_path.iterdir()) == []
