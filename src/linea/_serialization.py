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
import math
import os
import struct

from linea.backend import to_host, xp
from linea._errors import FormatError
from linea._files import atomic_write, open_regular, read_at
from linea._tensor import Tensor

__all__ = ["save", "load", "read_safetensors", "check_safetensors_header", "check_savable",
           "read_safetensors_header", "safetensors_parts"]

_TREE_KEY = "linea.tree"
_KEYS_KEY = "linea.keys"
_MAX_HEADER = 100 * 1024 * 1024
#: The JSON tree of a checkpoint (numbers, strings, the structure of an optimizer's state)
#: is small; a bigger one would cost ~20× its size in Python objects to decode.
_MAX_TREE = 4 * 1024 * 1024
#: safetensors dtype names and their item sizes.
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
#: The safetensors dtypes linea reads, by NumPy dtype name: what it writes is exactly these.
_READABLE = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
             "float16": "F16", "bfloat16": "BF16", "int32": "I32", "uint32": "U32",
             "float32": "F32", "int64": "I64", "uint64": "U64", "float64": "F64"}


def _numpy_dtype(code: str):
    name = next(name for name, known in _READABLE.items() if known == code)
    if name == "bfloat16":
        from linea import bfloat16

        return bfloat16.numpy
    return xp.dtype(name)


def check_savable(arrays: dict, writer: str) -> None:
    """Refuse, before anything is written, a tensor whose dtype the readers cannot read back."""
    for name, array in arrays.items():
        dtype_name = getattr(array.dtype, "name", str(array.dtype))
        if dtype_name not in _READABLE:
            raise TypeError(
                f"{writer} cannot store {name!r} of dtype {dtype_name}: linea reads back only "
                f"{', '.join(sorted(_READABLE))}; convert it first (e.g. .to(linea.float32)); "
                "nothing was written"
            )


# ---- writing ---------------------------------------------------------------------

def _contiguous(array):
    # Not xp.ascontiguousarray: it turns a 0-d array (a step counter) into shape (1,).
    return array if array.flags.c_contiguous else array.copy(order="C")


#: The order tensors are laid out in: widest item first, as the safetensors library does,
#: so every tensor's data starts aligned to its item size.
_LAYOUT_ORDER = ("U64", "I64", "F64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16",
                 "F8_E4M3", "F8_E5M2", "I8", "U8", "BOOL")


def _code(array) -> str:
    return _READABLE[getattr(array.dtype, "name", str(array.dtype))]


_WRITE_BLOCK = 4 * 1024 ** 2


def _little_endian_parts(array):
    """The C-order, little-endian bytes of one array as flat uint8 views: the array's own
    memory where it is C-contiguous, else blocks of its leading axis copied ~4 MiB at a
    time (a column-major Linear weight is written without a copy of itself)."""
    swap = array.dtype.byteorder == ">"
    if array.flags.c_contiguous or array.ndim == 0:
        whole = _contiguous(array)
        if swap:
            whole = whole.astype(whole.dtype.newbyteorder("<"))
        yield whole.reshape(-1).view(xp.uint8)
        return
    row_bytes = max(1, math.prod(array.shape[1:]) * array.dtype.itemsize)
    rows = max(1, _WRITE_BLOCK // row_bytes)
    for start in range(0, array.shape[0], rows):
        block = xp.ascontiguousarray(array[start:start + rows])
        if swap:
            block = block.astype(block.dtype.newbyteorder("<"))
        yield block.reshape(-1).view(xp.uint8)


def safetensors_parts(tensors: dict, metadata: dict | None = None):
    """A safetensors file as parts to write in turn: the length field and header, then
    each tensor's bytes straight from its array, so writing needs no copy of the file.

    ``tensors`` maps names to NumPy arrays of the dtypes ``check_savable`` allows.
    """
    names = sorted(tensors, key=lambda name: (_LAYOUT_ORDER.index(_code(tensors[name])), name))
    header: dict = {} if not metadata else {"__metadata__": dict(metadata)}
    offset = 0
    for name in names:
        array = tensors[name]
        size = math.prod(array.shape) * array.dtype.itemsize
        header[name] = {"dtype": _code(array), "shape": [int(d) for d in array.shape],
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors pads it
    yield struct.pack("<Q", len(text)) + text
    for name in names:
        yield from _little_endian_parts(tensors[name])


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
        metadata = {"format": "pt", _KEYS_KEY: json.dumps(list(obj))}
    else:
        tree = json.dumps(_encode(obj, "", tensors))
        if len(tree) > _MAX_TREE:
            raise ValueError(f"linea.save: the structure around the tensors takes {len(tree)} "
                             f"characters of JSON, more than the {_MAX_TREE} linea.load accepts; "
                             "store large data as arrays (they go in the tensor section); nothing "
                             "was written")
        metadata = {"format": "linea", _TREE_KEY: tree}
    check_savable(tensors, "linea.save")
    tensors = {name: to_host(array) for name, array in tensors.items()}
    atomic_write(f, safetensors_parts(tensors, metadata))  # header, then tensor by tensor


# ---- reading -----------------------------------------------------------------------

def read_safetensors_header(descriptor: int, size: int, source: str) -> tuple[dict, int]:
    """The validated header of the safetensors file open on ``descriptor`` and its data start.

    Only the length field and the header are read: the header's length is checked
    against the file's size (and a 100 MiB cap) before a byte of it is read.
    """
    if size < 8:
        raise FormatError(f"{source}: not a safetensors file (only {size} bytes)")
    (header_length,) = struct.unpack("<Q", read_at(descriptor, 0, 8, source=source))
    if header_length > min(size - 8, _MAX_HEADER):
        raise FormatError(
            f"{source}: the header claims {header_length} bytes but the file has {size - 8} "
            "after the length field; the file is truncated or not safetensors"
        )
    prefix = struct.pack("<Q", header_length) + bytes(read_at(descriptor, 8, header_length,
                                                              source=source))
    return check_safetensors_header(prefix, source, size)


def check_safetensors_header(data: bytes, source: str, size: int | None = None) -> tuple[dict, int]:
    """Validate a safetensors header against the file's size before any parser sees it.

    ``data`` holds at least the length field and the header (the whole file if ``size``
    is not given). Returns (header, start of the data section); every problem is a FormatError.
    """
    size = len(data) if size is None else size
    if size < 8 or len(data) < 8:
        raise FormatError(f"{source}: not a safetensors file (only {size} bytes)")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > min(size - 8, _MAX_HEADER) or len(data) < 8 + header_length:
        raise FormatError(
            f"{source}: the header claims {header_length} bytes but the file has {size - 8} "
            "after the length field; the file is truncated or not safetensors"
        )
    try:
        header = json.loads(bytes(data[8:8 + header_length]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise FormatError(f"{source}: the safetensors header is not valid JSON: {error}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{source}: the safetensors header must be a JSON object")
    data_size = size - 8 - header_length
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in entry.items()):
                raise FormatError(f"{source}: __metadata__ must map strings to strings")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str) or \
                entry["dtype"] not in DTYPE_SIZES:
            raise FormatError(f"{source}: tensor {name!r} has no known dtype")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in shape):
            raise FormatError(f"{source}: tensor {name!r} has a bad shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise FormatError(f"{source}: tensor {name!r} has bad data_offsets {offsets!r}")
        start, end = offsets
        expected = math.prod(shape) * DTYPE_SIZES[entry["dtype"]]
        if not 0 <= start <= end <= data_size or end - start != expected:
            raise FormatError(
                f"{source}: tensor {name!r} of shape {shape} needs {expected} bytes at offsets "
                f"{offsets}, but the data section holds {data_size} bytes"
            )
        spans.append((start, end, name))
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise FormatError(f"{source}: tensors {first!r} and {second!r} overlap")
        if start > end:
            raise FormatError(f"{source}: a gap of {start - end} bytes lies before {second!r}")
    covered_from = spans[0][0] if spans else 0
    covered_to = spans[-1][1] if spans else 0
    if covered_from != 0 or covered_to != data_size:
        raise FormatError(
            f"{source}: the tensors cover bytes {covered_from}..{covered_to} of a data section "
            f"of {data_size} bytes; the file is truncated, padded or corrupt"
        )
    return header, 8 + header_length


def read_safetensors(path, shapes_only: bool = False) -> tuple[dict, dict]:
    """(tensors as NumPy arrays, metadata) of a safetensors file; FormatError if it is bad.

    The header is validated first; then each tensor is read straight into its own
    array, so loading takes the memory of the tensors and nothing more. The tensors
    come in the order a linea writer recorded, else in file order. With ``shapes_only``
    nothing but the header is read: each array is a zero-cost stand-in of the right
    shape and dtype (what ``linea inspect`` needs).
    """
    source = os.fspath(path)
    descriptor = open_regular(source)
    try:
        size = os.fstat(descriptor).st_size
        header, data_start = read_safetensors_header(descriptor, size, source)
        entries = sorted(((entry["data_offsets"][0], name, entry) for name, entry in header.items()
                          if name != "__metadata__"), key=lambda item: item[0])
        arrays = {}
        for start, name, entry in entries:
            code = entry["dtype"]
            if code not in _READABLE.values():
                raise FormatError(f"{source}: tensor {name!r} has dtype {code}, which linea cannot "
                                  f"hold; it reads {', '.join(sorted(_READABLE.values()))}")
            if shapes_only:
                arrays[name] = xp.broadcast_to(xp.zeros((), _numpy_dtype(code)), entry["shape"])
                continue
            array = xp.empty(entry["shape"], dtype=_numpy_dtype(code))
            if array.nbytes:
                read_at(descriptor, data_start + start, array.nbytes,
                        into=array.reshape(-1).view(xp.uint8), source=source)
            if not xp.little_endian:  # safetensors stores little-endian bytes
                array = array.byteswap()
            arrays[name] = array
    finally:
        os.close(descriptor)
    metadata = header.get("__metadata__", {})
    names = [name for _, name, _ in entries]
    try:
        recorded = json.loads(metadata.get(_KEYS_KEY, "null"))
    except (ValueError, RecursionError):
        recorded = None
    if isinstance(recorded, list) and sorted(map(str, recorded)) == sorted(names):
        names = [str(name) for name in recorded]
    result = {name: arrays[name] for name in names}
    # safetensors.torch.save_model stores tied tensors once and lists each dropped
    # name in the metadata as {dropped: kept}; give the dropped names back.
    for dropped, kept in metadata.items():
        if dropped not in result and kept in arrays and dropped not in (_TREE_KEY, _KEYS_KEY, "format"):
            result[dropped] = arrays[kept]
    return result, metadata


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
    tree = metadata.get(_TREE_KEY)
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
