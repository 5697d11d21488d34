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
    return files


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


@pytest.mark.parametrize("extension", ["safetensors", "pt", "weights.h5", "keras", "onnx"])
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
