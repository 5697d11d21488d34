"""Loading takes the memory the data needs: peak RSS growth of a fresh process, per format.

A 256 MiB model is written once in every format; each load runs in its own subprocess
(imports done before the measurement) and reports its peak resident memory growth as a
multiple of the file's size. Bounds: safetensors ≤ 1.1×, .pt, .weights.h5 and ONNX ≤ 1.5×
(ONNX initializers are located in the file and read into their arrays, protobuf parsing
only the rest), ``linea inspect`` ≤ 64 MB, and building a Linear of 256 MiB ≤ 1.5× its
parameter bytes. Saving adds at most 0.1× the model's bytes (the tensors are written from
their own memory, after a header).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import linea
from linea import io, nn
from _helpers import PEAK_SOURCE

SIZE = 8192  # Linear(8192, 8192) in float32: 256 MiB

MEASURE = PEAK_SOURCE + textwrap.dedent("""
    import json, os, sys, warnings
    warnings.simplefilter("ignore")

    import linea
    from linea import io, nn
    import linea._inspect, linea.io._torch, linea.io._onnx_read, linea.keras._saving
    for optional in ("torch", "onnx", "h5py", "safetensors.numpy"):
        try:
            __import__(optional)
        except ImportError:
            pass
    path, how = sys.argv[1], sys.argv[2]
    before = peak()
    if how == "state":
        kept = io.load_state_dict(path)
    elif how == "checkpoint":
        kept = linea.load(path)
    elif how == "inspect":
        kept = linea._inspect.inspect_rows(path)
    elif how == "linear":
        kept = nn.Linear(int(path), int(path))
    elif how in ("save", "save_checkpoint", "save_state_dict"):
        model = nn.Linear(8192, 8192)
        before = peak()
        if how == "save":
            linea.save(model.state_dict(), path)
        elif how == "save_checkpoint":
            linea.save({"model": model.state_dict(), "epoch": 3}, path)
        else:
            io.save_state_dict(model.state_dict(), path)
    grown = peak() - before
    print(json.dumps({"grown": grown}))
""")


def peak_growth(path, how) -> int:
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path), how], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["grown"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("memory")
    model = nn.Sequential(nn.Linear(SIZE, SIZE), nn.ReLU(), nn.Linear(SIZE, 4))
    written = {}
    for extension, needs in ((".safetensors", None), (".pt", "torch"), (".weights.h5", "h5py"),
                             (".onnx", "onnx")):
        try:
            if needs:
                __import__(needs)
        except ImportError:
            continue
        io.save_model(model, folder / f"m{extension}")
        written[extension] = folder / f"m{extension}"
    linea.save({"model": model.state_dict(), "epoch": 3}, folder / "checkpoint.safetensors")
    written["checkpoint"] = folder / "checkpoint.safetensors"
    return written


BOUNDS = {".safetensors": 1.1, ".pt": 1.5, ".weights.h5": 1.5, ".onnx": 1.5}


@pytest.mark.parametrize("extension", sorted(BOUNDS))
def test_loading_takes_about_the_memory_of_the_tensors(files, extension):
    if extension not in files:
        pytest.skip(f"the {extension} writer's library is not installed")
    path = files[extension]
    ratio = peak_growth(path, "state") / os.path.getsize(path)
    assert ratio <= BOUNDS[extension], f"{extension}: {ratio:.2f}x the file's size"


def test_a_checkpoint_loads_in_about_its_size(files):
    path = files["checkpoint"]
    assert peak_growth(path, "checkpoint") / os.path.getsize(path) <= 1.1


@pytest.mark.parametrize("extension", [".safetensors", ".weights.h5"])
def test_inspect_reads_the_header_only(files, extension):
    if extension not in files:
        pytest.skip(f"the {extension} writer's library is not installed")
    assert peak_growth(files[extension], "inspect") < 64 * 1024 ** 2


def test_inspect_of_a_sparse_file_whose_header_claims_nothing_is_quick_and_small(tmp_path):
    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as stream:
        stream.write((0).to_bytes(8, "little"))
        stream.truncate(2 * 1024 ** 3)  # 2 GiB of holes after a zero header length
    import time

    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "linea", "inspect", str(path)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1 and "not valid JSON" in result.stderr, result.stderr
    assert time.perf_counter() - start < 10  # the interpreter's start-up, not 2 GiB of reading


@pytest.mark.parametrize("how", ["save", "save_checkpoint", "save_state_dict"])
def test_saving_writes_tensor_by_tensor(tmp_path, how):
    """linea.save streams the header, then each tensor's memory: no copy of the file in memory."""
    path = tmp_path / "m.safetensors"
    grown = peak_growth(path, how)
    assert grown <= 0.1 * SIZE * SIZE * 4, f"saving 256 MiB grew peak memory by {grown / 2**20:.0f} MiB"
    state = linea.load(path) if how != "save_checkpoint" else linea.load(path)["model"]
    assert tuple(state["weight"].shape) == (SIZE, SIZE)


def test_building_a_linear_takes_its_parameter_bytes():
    assert peak_growth(SIZE, "linear") / (SIZE * SIZE * 4) <= 1.5
