"""linea's exception classes.

Each one also satisfies the ``except`` clause PyTorch users already write:
PyTorch raises ``RuntimeError`` for shape and dtype mismatches.
"""
from __future__ import annotations

__all__ = ["ShapeError", "DTypeError", "StateDictError", "FormatError", "install_hint"]


def install_hint(extra: str, packages: str) -> str:
    """How to install an optional extra: the command that works from linea's checkout, then the bare packages."""
    return f"pip install -e '.[{extra}]' from linea's checkout (or pip install {packages})"


class ShapeError(ValueError, RuntimeError):
    """An input or weight has a shape the operation cannot use."""


class DTypeError(TypeError, RuntimeError):
    """An input has a dtype the operation cannot use."""


class StateDictError(ValueError, RuntimeError):
    """A state dict does not fit the module it is loaded into."""


class FormatError(ValueError):
    """A file cannot be read: truncated, corrupt, hostile or of another format."""
