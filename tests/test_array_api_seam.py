"""The seam proved: the backend-agnostic tests run a second time on array_api_strict.

Tensors and parameters are created in the strict reference namespace
(LINEA_ARRAY_NAMESPACE=array_api_strict) and every op must stay in it; tests
about NumPy itself (float16, its memory model, its fused kernels) are marked
``numpy_only`` and skipped there.
"""
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("array_api_strict", reason="the strict namespace is a test extra")
pytest.importorskip("array_api_compat", reason="namespace lookup uses array-api-compat")

ROOT = pathlib.Path(__file__).resolve().parents[1]
AGNOSTIC = ["tests/test_tensor.py", "tests/test_autograd.py", "tests/nn"]


def test_agnostic_tests_pass_on_array_api_strict():
    environment = dict(os.environ, LINEA_ARRAY_NAMESPACE="array_api_strict")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-W", "ignore::UserWarning", *AGNOSTIC],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in summary and "failed" not in summary, summary
