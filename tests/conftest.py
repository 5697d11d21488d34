"""Shared fixtures: seeded generators (helpers live in _helpers.py).

Tests mirror the package (tests/nn for linea.nn, tests/io for linea.io, …); those that run
the real framework as the reference (torch, Keras, onnxruntime, peft) are marked ``oracle``.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3, the oracle, on PyTorch

import numpy as np
import pytest

import linea


@pytest.fixture
def generator():
    """A linea Generator with a fixed seed."""
    return linea.Generator().manual_seed(1234)


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, for test data."""
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    """Under LINEA_ARRAY_NAMESPACE=<another namespace>, skip what is NumPy's by nature."""
    from linea import backend

    if backend.default_namespace() is np:
        return
    for item in items:
        mark = item.get_closest_marker("numpy_only")
        if mark is not None:
            item.add_marker(pytest.mark.skip(reason="NumPy only: " + mark.kwargs.get("reason", "")))
        elif item.get_closest_marker("oracle") is not None:
            item.add_marker(pytest.mark.skip(reason="an oracle test compares with a framework on "
                                                    "NumPy arrays"))
