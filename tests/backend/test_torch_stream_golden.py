"""linea's seeded draws equal torch's recorded ones (tests/golden/torch_stream.npz), without torch."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import linea

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
_spec = importlib.util.spec_from_file_location("torch_stream_cases", GOLDEN / "torch_stream_cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)


@pytest.fixture(scope="module")
def recorded():
    with np.load(GOLDEN / "torch_stream.npz", allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize("kernel", ["c", "numpy"])
@pytest.mark.parametrize("seed", cases.SEEDS)
def test_every_recorded_draw_is_reproduced_bit_for_bit(recorded, seed, kernel, monkeypatch):
    if kernel == "numpy":
        monkeypatch.setenv("LINEA_RANDOM_KERNEL", "numpy")
    ours = cases.run(linea, seed)
    expected = {name: value for name, value in recorded.items() if name.startswith(f"{seed}/")}
    assert sorted(ours) == sorted(expected)
    for name, value in expected.items():
        assert ours[name].dtype == value.dtype and ours[name].shape == value.shape, name
        assert ours[name].tobytes() == value.tobytes(), name


def test_the_kernel_reports_its_path():
    from linea.backend._box_muller import kernel_info

    info = kernel_info()
    assert info["path"] in ("c", "numpy") and (info["path"] == "c") == (info["reason"] == "")



@pytest.mark.parametrize("size", [5, 17])
def test_threads_sharing_a_generator_each_get_whole_draws(size):
    """Each draw holds the stream (torch's generator mutex): four threads drawing from one
    generator get, between them, exactly the draws of the same calls made one after another
    (5 values use the scalar path and its cached normal, 17 the vectorised one)."""
    import threading

    calls_per_thread, threads = 200, 4
    sequential = linea.Generator().manual_seed(3)
    expected = sorted(linea.randn(size, generator=sequential).numpy().tobytes()
                      for _ in range(calls_per_thread * threads))
    shared, results = linea.Generator().manual_seed(3), []
    start = threading.Barrier(threads)

    def draw():
        start.wait()
        mine = [linea.randn(size, generator=shared).numpy().tobytes() for _ in range(calls_per_thread)]
        results.extend(mine)

    workers = [threading.Thread(target=draw) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(results) == expected
