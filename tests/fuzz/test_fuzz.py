"""Hostile files against every reader: each case must end in linea.FormatError (or load, if the
mutation happened to leave a valid file), within a time and memory bound, changing nothing.

Every format gets LINEA_FUZZ_CASES seeded files (1,000 by default; CI runs the default). Cases
run in worker subprocesses under an address-space limit and a per-file timeout, so a crash or
hang in a C parser fails its case (the file is saved) instead of killing the test run.
"""
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from linea import io, nn

HERE = pathlib.Path(__file__).resolve().parent
CASES = int(os.environ.get("LINEA_FUZZ_CASES", "1000"))
SEED = int(os.environ.get("LINEA_FUZZ_SEED", "1000"))
PER_FILE_SECONDS = 10.0
MEMORY_MB = 4096


def valid_files(folder: pathlib.Path) -> dict:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 3))
    files = {}
    for name, needs in (("safetensors", None), ("pt", "torch"), ("weights.h5", "h5py"),
                        ("keras", "h5py"), ("onnx", "onnx")):
        if needs:
            pytest.importorskip(needs)
        path = folder / f"valid.{name}"
        io.save_model(model, path)
        files[name] = path.read_bytes()
    pytest.importorskip("h5py")
    legacy_cnn_h5(folder / "valid.h5")  # Keras 2's model.save("m.h5"), a CNN with BatchNorm
    files["h5"] = (folder / "valid.h5").read_bytes()
    return files


def legacy_cnn_h5(path) -> None:
    """A legacy HDF5 model file as Keras 2 wrote it: Conv2D → BatchNormalization → MaxPooling2D
    → Flatten → Dense, bytes attributes and ':0' weight names."""
    import h5py

    rng = np.random.default_rng(3)
    conv = {"name": "conv2d", "filters": 2, "kernel_size": [3, 3], "strides": [1, 1],
            "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1],
            "groups": 1, "activation": "relu", "use_bias": True}
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 6, 6, 1],
                                                      "dtype": "float32", "name": "input_1"}},
              {"class_name": "Conv2D", "config": conv},
              {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": [3],
                                                             "momentum": 0.99, "epsilon": 0.001}},
              {"class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": [2, 2],
                                                       "strides": [2, 2], "padding": "valid"}},
              {"class_name": "Flatten", "config": {"name": "flatten"}},
              {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "softmax"}}]
    weights = {"conv2d": [("conv2d/kernel:0", (3, 3, 1, 2)), ("conv2d/bias:0", (2,))],
               "bn": [(f"bn/{n}:0", (2,)) for n in ("gamma", "beta", "moving_mean", "moving_variance")],
               "pool": [], "flatten": [], "dense": [("dense/kernel:0", (8, 3)), ("dense/bias:0", (3,))]}
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = b"2.4.0"
        handle.attrs["model_config"] = json.dumps(
            {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}).encode()
        group = handle.create_group("model_weights")
        group.attrs["layer_names"] = np.array([name.encode() for name in weights])
        for name, entries in weights.items():
            layer = group.create_group(name)
            layer.attrs["weight_names"] = np.array([n.encode() for n, _ in entries]) if entries \
                else np.array([], dtype=np.float64)
            for weight_name, shape in entries:
                layer.create_dataset(weight_name, data=np.abs(rng.standard_normal(shape)).astype(np.float32))


def generate(folder: pathlib.Path, extension: str, valid: bytes, count: int, seed: int, marker: str):
    """(path, must_fail) for ``count`` hostile files of one format."""
    from _mutations import byte_mutation, keras_attack, onnx_attack, safetensors_attack, torch_attack

    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        attack = index % 3 == 0
        if not attack:
            data, must_fail = byte_mutation(valid, rng), False
        elif extension == "safetensors":
            data, must_fail = safetensors_attack(rng), True
        elif extension == "keras":
            data, must_fail = keras_attack(valid, rng), False
        elif extension == "pt":
            data, must_fail = torch_attack(valid, rng, marker), False
        elif extension == "onnx":
            data, must_fail = onnx_attack(valid, rng), False
        else:
            data, must_fail = byte_mutation(valid, rng), False
        path = folder / f"case{index:05d}.{extension}"
        path.write_bytes(data)
        cases.append((str(path), must_fail))
    return cases


def _start_worker(queue: list[str]):
    """A worker over ``queue`` (given as a list file: a pipe could fill and deadlock)."""
    listing = pathlib.Path(queue[0]).with_name(f"queue-{os.getpid()}-{time.monotonic_ns()}.txt")
    listing.write_text("\n".join(queue) + "\n")
    environment = dict(os.environ, LINEA_FUZZ_MEMORY_MB=str(MEMORY_MB), PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, str(HERE / "_worker.py"), str(PER_FILE_SECONDS),
                             str(listing)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=environment, cwd=str(HERE))


def run_cases(paths: list[str], workers: int = 2) -> dict:
    """{path: outcome}, with crashes and hangs pinned on the file being read."""
    results: dict = {}
    queues = [paths[i::workers] for i in range(workers)]
    running = {}
    for queue in queues:
        if queue:
            process = _start_worker(queue)
            running[process.stdout.fileno()] = {"process": process, "queue": list(queue), "current": None,
                                                "last": time.monotonic()}
    while running:
        ready, _, _ = select.select(list(running), [], [], 1.0)
        for fd in ready:
            state = running[fd]
            line = state["process"].stdout.readline()
            state["last"] = time.monotonic()
            if line:
                message = json.loads(line)
                if "start" in message:
                    state["current"] = message["start"]
                else:
                    results[message["done"]] = message["outcome"]
                    state["queue"].remove(message["done"])
                    state["current"] = None
                continue
            code = state["process"].wait()
            del running[fd]
            if state["current"] is not None:  # the worker died reading this file
                results[state["current"]] = f"crash (exit {code})"
                state["queue"].remove(state["current"])
            if state["queue"]:
                process = _start_worker(state["queue"])
                running[process.stdout.fileno()] = {"process": process, "queue": state["queue"],
                                                    "current": None, "last": time.monotonic()}
        for fd, state in list(running.items()):
            if state["current"] is not None and time.monotonic() - state["last"] > PER_FILE_SECONDS + 20:
                state["process"].kill()  # a hang the in-worker alarm could not break
                state["last"] = time.monotonic()
                results[state["current"]] = "hang"
    return results


@pytest.fixture(scope="module")
def fuzz_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    marker = str(folder / "PWNED")
    valid = valid_files(folder)
    cases = {}
    for seed, (extension, data) in enumerate(sorted(valid.items())):
        subfolder = folder / extension.replace(".", "_")
        subfolder.mkdir()
        cases[extension] = generate(subfolder, extension, data, CASES, SEED + seed, marker)
    paths = [path for group in cases.values() for path, _ in group]
    results = run_cases(paths)
    return cases, results, marker, folder


@pytest.mark.parametrize("extension", ["safetensors", "pt", "weights.h5", "keras", "onnx", "h5"])
def test_every_hostile_file_is_a_clean_format_error(fuzz_results, extension):
    cases, results, marker, folder = fuzz_results
    assert len(cases[extension]) >= CASES
    failures = {}
    for path, must_fail in cases[extension]:
        outcome = results.get(path, "missing result")
        if outcome == "format_error" or (outcome == "loaded" and not must_fail):
            continue
        failures[path] = outcome
    if failures:
        keep = pathlib.Path(os.environ.get("LINEA_FUZZ_FAILURES", folder / "failures"))
        keep.mkdir(parents=True, exist_ok=True)
        for path in failures:
            shutil.copy(path, keep / pathlib.Path(path).name)
        summary = "\n".join(f"{pathlib.Path(p).name}: {o}" for p, o in list(failures.items())[:20])
        pytest.fail(f"{len(failures)} of {len(cases[extension])} {extension} cases failed (files "
                    f"saved in {keep}):\n{summary}")
    assert not os.path.exists(marker), "a hostile pickle ran code"
    outcomes = [results[p] for p, _ in cases[extension]]
    assert outcomes.count("format_error") > len(outcomes) // 3  # the suite really is hostile
