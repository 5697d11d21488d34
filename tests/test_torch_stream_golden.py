"""linea's seeded draws equal torch's recorded ones (tests/golden/torch_stream.npz), without torch."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import linea

GOLDEN = Path(__file__).parent / "golden"
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
