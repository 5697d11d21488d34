"""Small real data sets shipped inside linea, so examples and the demo need no download."""
from __future__ import annotations

import gzip
import pathlib

import numpy as np

__all__ = ["load_digits"]

_HERE = pathlib.Path(__file__).resolve().parent


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI handwritten digits: images (1797, 64) float32 in [0, 16], labels (1797,) int64.

    See ``data/README.md`` for the source and licence.
    """
    with gzip.open(_HERE / "digits.csv.gz", "rt") as stream:
        table = np.loadtxt(stream, delimiter=",", dtype=np.float32)
    return table[:, :-1].copy(), table[:, -1].astype(np.int64)
