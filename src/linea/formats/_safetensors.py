"""safetensors files: a little-endian u64 header length, a JSON header (dtype, shape,
data_offsets per tensor, optional ``__metadata__`` of strings), then the tensors' bytes.

Reading validates the header against the file's size before any parser sees it and reads
each tensor straight into its own array; writing yields the header, then each tensor from
its own memory (``safetensors_parts``), so neither direction holds a copy of the file.
"""
from __future__ import annotations

import json
import math
import os
import struct

from linea._errors import FormatError
from linea._files import open_regular, read_at
from linea.backend import xp

__all__ = ["DTYPE_SIZES", "ORDER_KEY", "TREE_KEY", "check_savable", "safetensors_parts",
           "read_safetensors_header", "check_safetensors_header", "read_safetensors"]

#: Metadata linea writes beside the tensors: their order (a JSON list; safetensors sorts the
#: header) and a checkpoint's structure around them (``linea.save``'s JSON tree).
ORDER_KEY = "linea.keys"
TREE_KEY = "linea.tree"

_MAX_HEADER = 100 * 1024 * 1024
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
        recorded = json.loads(metadata.get(ORDER_KEY, "null"))
    except (ValueError, RecursionError):
        recorded = None
    if isinstance(recorded, list) and sorted(map(str, recorded)) == sorted(names):
        names = [str(name) for name in recorded]
    result = {name: arrays[name] for name in names}
    # safetensors.torch.save_model stores tied tensors once and lists each dropped
    # name in the metadata as {dropped: kept}; give the dropped names back.
    for dropped, kept in metadata.items():
        if dropped not in result and kept in arrays and dropped not in (TREE_KEY, ORDER_KEY, "format"):
            result[dropped] = arrays[kept]
    return result, metadata
