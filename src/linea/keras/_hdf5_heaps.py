"""HDF5 global heaps checked before a variable-length attribute is read.

Keras keeps text attributes (a legacy file's ``model_config``, ``layer_names``,
``weight_names``; the ``dtype`` mark of a bfloat16 dataset) as variable-length
strings, whose bytes HDF5 reads from "global heap" collections. A collection whose
objects do not add up — a free-space object of the wrong size, an object running
past its collection — can make the HDF5 library loop without end: a hostile 20 KB
file hung a read for good. So before any such attribute is read, every collection in
the file is walked here as the HDF5 file-format specification lays it out (the
"GCOL" signature, version 1, the collection size, then objects of a 16-byte header
and 8-byte aligned data, the free-space object last, filling the collection to its
end), and one that does not add up is a ``FormatError``.

Signatures inside datasets' stored data are not collections: the extents of every
dataset are found first (without reading any attribute) and skipped.
"""
from __future__ import annotations

from linea._errors import FormatError

__all__ = ["check_global_heaps", "searchable"]

_SIGNATURE = b"GCOL"
_MIN_COLLECTION = 4096  # H5HG_MINSIZE


def searchable(stream):
    """The file's bytes to scan, without a copy where it is a file on disk (a memory map)."""
    import io
    import mmap

    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)


def _dataset_extents(handle, h5py) -> list[tuple[int, int]]:
    extents = []

    def visit(name, node):
        if not isinstance(node, h5py.Dataset):
            return
        dsid = node.id
        offset = dsid.get_offset()
        if offset is not None:
            extents.append((offset, offset + dsid.get_storage_size()))
            return
        try:
            chunks = dsid.get_num_chunks()
        except Exception:  # not chunked (compact or empty): nothing stored apart
            return
        for index in range(min(chunks, 1_000_000)):
            info = dsid.get_chunk_info(index)
            extents.append((info.byte_offset, info.byte_offset + info.size))

    handle.visititems(visit)
    return sorted(extents)


def _inside(position: int, extents) -> bool:
    return any(start <= position < end for start, end in extents)


def check_global_heaps(data: bytes, handle, h5py, source: str) -> None:
    """FormatError unless every global heap collection in the file's ``data`` adds up."""
    extents = _dataset_extents(handle, h5py)
    position = data.find(_SIGNATURE)
    while position >= 0:
        if not _inside(position, extents):
            _check_collection(data, position, source)
        position = data.find(_SIGNATURE, position + 1)


def _check_collection(data: bytes, start: int, source: str) -> None:
    def bad(why: str):
        raise FormatError(f"{source}: the HDF5 global heap at byte {start} is corrupt ({why}); "
                          "its text attributes cannot be read safely")

    if start + 16 > len(data) or data[start + 4] != 1:
        bad("not a version-1 collection header")
    size = int.from_bytes(data[start + 8:start + 16], "little")
    end = start + size
    if size < _MIN_COLLECTION or end > len(data):
        bad(f"it claims {size} bytes")
    position, seen = start + 16, set()
    while position + 16 <= end:
        index = int.from_bytes(data[position:position + 2], "little")
        length = int.from_bytes(data[position + 8:position + 16], "little")
        if index == 0:  # the free space: the rest of the collection, header included
            if position + length != end:
                bad(f"its free space of {length} bytes at byte {position} does not reach its end")
            return
        if index in seen:
            bad(f"object {index} appears twice")
        seen.add(index)
        position += 16 + (length + 7) // 8 * 8
    if position > end:
        bad("its objects run past its end")


# A variable-length text attribute is read in a child process: even with its heaps whole,
# a corrupt reference inside the attribute itself made the HDF5 library crash (SIGSEGV).
_MARK_READER = r"""
import json, resource, sys
limit = int(sys.argv[3]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import h5py

def node(handle, path):
    current = handle
    for part in path.split("/"):
        if part not in current or not isinstance(current.get(part, getlink=True), h5py.HardLink):
            return None
        current = current[part]
    return current

marks = {}
with h5py.File(sys.argv[1], "r") as handle:
    for path in json.loads(sys.argv[2]):
        found = node(handle, path)
        value = found.attrs.get("dtype") if found is not None else None
        marks[path] = value.decode("utf-8", "replace") if isinstance(value, bytes) else \
            (value if isinstance(value, str) else None)
print(json.dumps(marks))
"""


def read_dtype_marks(stream, source: str, paths: list) -> dict:
    """{dataset path: its "dtype" text attribute or None}, read by a child process."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    import io

    temporary = None
    try:
        name = source  # a stream of the file at source, or the bytes of an archive's member
        if isinstance(stream, io.BytesIO):
            with tempfile.NamedTemporaryFile("wb", suffix=".h5", delete=False) as copy:
                copy.write(stream.getvalue())
                temporary = name = copy.name
        try:
            done = subprocess.run([sys.executable, "-c", _MARK_READER, name, json.dumps(paths), "2048"],
                                  capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise FormatError(f"{source}: reading its dtype attributes did not finish: the HDF5 "
                              "file is corrupt") from None
    finally:
        if temporary is not None:
            os.unlink(temporary)
    if done.returncode != 0:
        raise FormatError(f"{source}: reading its dtype attributes failed"
                          + (f" (the HDF5 library crashed, signal {-done.returncode})" if done.returncode < 0
                             else "") + ": the file is corrupt")
    try:
        marks = json.loads(done.stdout)
    except ValueError:
        raise FormatError(f"{source}: cannot read its dtype attributes") from None
    return marks if isinstance(marks, dict) else {}
