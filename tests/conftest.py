"""Shared fixtures: seeded generators (helpers live in _helpers.py)."""
from __future__ import annotations

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
