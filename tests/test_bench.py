"""The benchmark runs and reports (speed itself is never asserted in a test)."""
import json
import subprocess
import sys

from linea._bench._runner import format_report


def test_quick_benchmark_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "linea", "bench", "--quick", "--rounds", "1",
                             "--only", "mlp", "--json", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    row = data["mlp"][0]
    assert row["batch"] == 32 and row["linea"]["no_grad"] > 0 and row["linea"]["compiled"] > 0
    assert "MLP 64→128→128→10 inference" in result.stdout


def test_report_marks_skipped_competitors():
    results = {"train": {"linea": {"epoch": 0.02}, "numpy": {"epoch": 0.01},
                         "torch": {"skipped": "not installed (torch)"}, "sklearn": {"epoch": 0.03}}}
    text = format_report(results)
    assert "not installed (torch)" in text and "1.50×" in text


def test_quick_runs_the_few_cheap_sections_unless_told_otherwise():
    from linea._bench._runner import QUICK_SECTIONS, SECTIONS

    assert set(QUICK_SECTIONS) < set(SECTIONS)
    assert not {"dask", "memory", "environment"} & set(QUICK_SECTIONS)  # each starts processes or GEMMs


def test_random_report_gives_ratios_to_torch_and_numpy():
    results = {"random": {"linea": {"normal_1e6": 0.02, "normal_64": 2e-5, "randperm_60000": 2e-3,
                                    "linear_init": 1e-3, "kernel": "c"},
                          "numpy": {"normal_1e6": 0.01, "randperm_60000": 1e-3},
                          "torch": {"normal_1e6": 0.005, "normal_64": 1e-5, "randperm_60000": 1e-3,
                                    "linear_init": 1e-3}}}
    text = format_report(results)
    assert "linea kernel: c" in text and "linea/NumPy 2.00×" in text and "linea/PyTorch 4.00×" in text
