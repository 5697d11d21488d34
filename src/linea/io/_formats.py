"""Which format a path holds: by ``format=`` or by its extension."""
from __future__ import annotations

import os

FORMATS = ("safetensors", "torch", "keras", "onnx")
_EXTENSIONS = ((".safetensors.index.json", "safetensors"), (".safetensors", "safetensors"),
               (".weights.h5", "keras"), (".keras", "keras"), (".h5", "keras"), (".pt", "torch"),
               (".pth", "torch"), (".onnx", "onnx"))


def detect_format(path, format: str | None = None) -> str:
    """``format`` if given (checked), else the format named by the path's extension."""
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        return format
    name = os.fspath(path).lower()
    for extension, found in _EXTENSIONS:
        if name.endswith(extension):
            return found
    raise ValueError(
        f"cannot tell the format of {os.fspath(path)!r} from its extension; use .safetensors, "
        f".pt/.pth, .weights.h5/.keras or .onnx, or pass format= one of {FORMATS}"
    )
