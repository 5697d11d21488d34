"""linea's exception classes.

Each one also satisfies the ``except`` clause PyTorch users already write:
PyTorch raises ``RuntimeError`` for shape and dtype mismatches.
"""
from __future__ import annotations

__all__ = ["ShapeError", "DTypeError", "StateDictError", "FormatError", "install_hint", "require"]


def install_hint(extra: str, packages: str) -> str:
    """How to install an optional extra: the command that works from linea's checkout, then the bare packages."""
    return f"pip install -e '.[{extra}]' from linea's checkout (or pip install {packages})"


def require(module: str, extra: str, needed_by: str, packages: str | None = None):
    """The optional ``module``, imported; else an ImportError saying what needs it and the
    command that installs it: "``needed_by`` needs ``packages``: pip install -e '.[extra]' …"."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        packages = packages or module.split(".")[0]
        raise ImportError(f"{needed_by} needs {packages}: "
                          + install_hint(extra, packages)) from None


class ShapeError(ValueError, RuntimeError):
    """An input or weight has a shape the operation cannot use."""


class DTypeError(TypeError, RuntimeError):
    """An input has a dtype the operation cannot use."""


class StateDictError(ValueError, RuntimeError):
    """A state dict does not fit the module it is loaded into."""


class FormatError(ValueError):
    """A file cannot be read: truncated, corrupt, hostile or of another format."""
