"""``linea.save`` / ``linea.load``: checkpoints in the safetensors format, never pickle.

Tensors are stored as safetensors tensors; everything else (numbers, strings,
lists, nested dicts with int or str keys — an optimizer's state dict, an epoch
counter) is a JSON tree in the file's metadata that refers to tensors by key.
A flat dict of tensors is stored under its own keys, so a saved
``model.state_dict()`` is a plain safetensors file other tools can read.

Writes are atomic: the bytes go to a temporary file in the same folder, are
flushed to disk, then renamed over the target, so a crash or a full disk
never leaves a half-written checkpoint where a good one was.
"""
from __future__ import annotations

import json
import os

from linea.backend import to_host, xp
from linea._errors import FormatError
from linea._files import atomic_write, open_regular
from linea._tensor import Tensor
from linea.formats import (ORDER_KEY, TREE_KEY, check_savable, read_safetensors,
                           safetensors_parts)

__all__ = ["save", "load"]

#: The JSON tree of a checkpoint (numbers, strings, the structure of an optimizer's state)
#: is small; a bigger one would cost ~20× its size in Python objects to decode.
_MAX_TREE = 4 * 1024 * 1024


# ---- writing ---------------------------------------------------------------------

def _encode(value, path: str, tensors: dict):
    """A JSON-able tree for ``value``; tensors go into ``tensors`` under fresh keys."""
    if isinstance(value, Tensor) or isinstance(value, xp.ndarray):
        array = value._data if isinstance(value, Tensor) else value
        key = path or "tensor"
        while key in tensors:
            key += "'"
        tensors[key] = array  # written as it is, made contiguous one tensor at a time
        return {"tensor" if isinstance(value, Tensor) else "array": key}
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"linea.save supports dict keys of type str or int, got {k!r}")
            items.append([k, _encode(v, f"{path}/{k}" if path else str(k), tensors)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{path}/{i}" if path else str(i), tensors) for i, v in enumerate(value)]
        return {"list" if isinstance(value, list) else "tuple": items}
    if value is None or isinstance(value, (bool, int, str)):
        return {"value": value}
    if isinstance(value, float):
        return {"float": repr(float(value))}  # keeps inf, nan and every bit (np.float64 too)
    if isinstance(value, xp.generic):
        return _encode(value.item(), path, tensors)
    raise TypeError(
        f"linea.save cannot store a {type(value).__name__} at {path or 'the top level'}: it "
        "stores tensors, arrays, numbers, strings, None and lists/tuples/dicts of them"
    )


def save(obj, f) -> None:
    """Save tensors, state dicts and plain data to the safetensors file ``f``, atomically.

    A ``.pt``/``.pth`` name is refused: such a file would be safetensors under a name
    that promises PyTorch's pickle format. ``linea.io.save_state_dict(state, "model.pt")``
    writes a real PyTorch file.
    """
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else ""
    if str(name).lower().endswith((".pt", ".pth")):
        raise ValueError(f"linea.save writes safetensors, not PyTorch's format, so it will not write "
                         f"{name!r} (a name PyTorch users would torch.load): name it .safetensors, or "
                         "write a PyTorch file with linea.io.save_state_dict(model.state_dict(), "
                         f"{name!r}); nothing was written")

    tensors: dict = {}
    is_flat_state = isinstance(obj, dict) and obj and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    if is_flat_state:
        tensors = {k: v._data for k, v in obj.items()}
        # safetensors sorts tensors in the file; the key order goes in the metadata.
        metadata = {"format": "pt", ORDER_KEY: json.dumps(list(obj))}
    else:
        tree = json.dumps(_encode(obj, "", tensors))
        if len(tree) > _MAX_TREE:
            raise ValueError(f"linea.save: the structure around the tensors takes {len(tree)} "
                             f"characters of JSON, more than the {_MAX_TREE} linea.load accepts; "
                             "store large data as arrays (they go in the tensor section); nothing "
                             "was written")
        metadata = {"format": "linea", TREE_KEY: tree}
    check_savable(tensors, "linea.save")
    tensors = {name: to_host(array) for name, array in tensors.items()}
    atomic_write(f, safetensors_parts(tensors, metadata))  # header, then tensor by tensor


# ---- reading -----------------------------------------------------------------------

def _decode(node, arrays: dict, source: str):
    if not isinstance(node, dict) or len(node) != 1:
        raise FormatError(f"{source}: the linea metadata tree is malformed")
    (kind, payload), = node.items()
    if kind in ("tensor", "array"):
        if payload not in arrays:
            raise FormatError(f"{source}: the metadata refers to a missing tensor {payload!r}")
        return Tensor._make(arrays[payload]) if kind == "tensor" else arrays[payload]
    if kind == "dict" and isinstance(payload, list):
        result = {}
        for item in payload:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))):
                raise FormatError(f"{source}: the linea metadata tree has a bad dict entry")
            result[item[0]] = _decode(item[1], arrays, source)
        return result
    if kind in ("list", "tuple") and isinstance(payload, list):
        items = [_decode(item, arrays, source) for item in payload]
        return items if kind == "list" else tuple(items)
    if kind == "value" and (payload is None or isinstance(payload, (bool, int, str))):
        return payload
    if kind == "float" and isinstance(payload, str):
        try:
            return float(payload)
        except ValueError:
            raise FormatError(f"{source}: bad float {payload[:40]!r} in the metadata") from None
    raise FormatError(f"{source}: unknown entry {kind!r} in the linea metadata tree")


def _refuse_pytorch_file(source: str) -> None:
    """A FormatError pointing to linea.io for a PyTorch file (a zip or a pickle)."""
    descriptor = open_regular(source)
    try:
        start = os.pread(descriptor, 8, 0)
    finally:
        os.close(descriptor)
    # torch.save's zip, or its legacy pickle (protocol 2, then the long magic number)
    if start.startswith((b"PK\x03\x04", b"\x80\x02\x8a\x0a")):
        raise FormatError(f"{source}: a PyTorch file (torch.save's zip or pickle), not a linea "
                          "checkpoint; read its state dict with linea.io.load_state_dict(path) "
                          "(through torch.load(weights_only=True); linea.load never unpickles)")


def load(f):
    """Load what ``linea.save`` wrote (or any safetensors file, as a dict of tensors).

    Never unpickles: a file can hold only tensors and JSON data. A truncated,
    corrupt or hostile file raises ``linea.FormatError``.
    """
    source = os.fspath(f)
    _refuse_pytorch_file(source)
    arrays, metadata = read_safetensors(source)
    tree = metadata.get(TREE_KEY)
    if tree is None:
        return {name: Tensor._make(array) for name, array in arrays.items()}
    if len(tree) > _MAX_TREE:
        raise FormatError(f"{source}: the linea metadata tree is {len(tree)} characters, more than "
                          f"the {_MAX_TREE} a checkpoint's structure takes; refusing to decode it")
    try:
        parsed = json.loads(tree)
    except (ValueError, RecursionError) as error:
        raise FormatError(f"{source}: the linea metadata is not valid JSON: {error}") from None
    try:
        return _decode(parsed, arrays, source)
    except RecursionError:
        raise FormatError(f"{source}: the linea metadata tree is nested too deeply") from None
