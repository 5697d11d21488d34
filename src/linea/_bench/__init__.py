"""``linea bench``: linea against PyTorch, ONNX Runtime, scikit-learn and raw NumPy, in one run.

Each competitor runs in its own subprocess (thread pools that share two cores
and are called alternately slow each other twentyfold), with the same BLAS
thread count, warm-up, and the median of repeated timings.
"""
from linea._bench._runner import main, run_benchmark

__all__ = ["main", "run_benchmark"]
