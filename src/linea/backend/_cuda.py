"""Whether CUDA through CuPy is usable here, and exactly why not when it is not.

linea's CUDA backend will run the same ops on CuPy arrays (the array-API seam every op
already takes its namespace from). This file only answers the questions a user asks
first — is there a GPU, how many, and if not, which piece is missing — without
importing CuPy until asked.
"""
from __future__ import annotations

__all__ = ["is_available", "device_count", "unavailable_reason"]

INSTALL_HINT = "pip install -e '.[cuda]' from linea's checkout (CuPy for CUDA 12: cupy-cuda12x)"


def _probe() -> tuple[int, str]:
    """(device count, reason it is 0 — empty when devices exist)."""
    try:
        import cupy
    except ImportError:
        return 0, f"CuPy is not installed; {INSTALL_HINT}, on a machine with an NVIDIA GPU"
    except Exception as error:  # a broken CuPy install (missing CUDA libraries)
        return 0, f"CuPy is installed but failed to import ({type(error).__name__}: {error})"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as error:  # no driver, no device
        return 0, f"CuPy {cupy.__version__} is installed but finds no CUDA device ({error})"
    if count == 0:
        return 0, f"CuPy {cupy.__version__} is installed but this machine has no CUDA device"
    return count, ""


def is_available() -> bool:
    return _probe()[0] > 0


def device_count() -> int:
    return _probe()[0]


def unavailable_reason() -> str:
    """Why ``device="cuda"`` cannot be used here; empty when a device exists."""
    return _probe()[1]
