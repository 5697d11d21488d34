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

__all__ = ["check_global_heaps", "searchable", "run_reader", "read_dtype_marks", "hard_child"]

_SIGNATURE = b"GCOL"
_MIN_COLLECTION = 4096  # H5HG_MINSIZE


def searchable(stream):
    """The file's bytes to scan, without a copy where it is a file on disk (a memory map)."""
    import io
    import mmap

    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)


def hard_child(group, name: str, where: str, h5py, source: str):
    """``group[name]`` when it is a hard link; FormatError when it is missing or links elsewhere
    (an external or soft link would make HDF5 open other files)."""
    if name not in group:
        raise FormatError(f"{source}: {where} is missing")
    if not isinstance(group.get(name, getlink=True), h5py.HardLink):
        raise FormatError(f"{source}: {where} is a link to elsewhere, which linea does not follow")
    return group[name]


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


# Variable-length text attributes are read in a child process: even with its heaps whole,
# a corrupt reference inside an attribute made the HDF5 library crash (SIGSEGV) or loop.
# Each reader script runs after this prelude: a memory limit, h5py, and ``node``, which
# follows hard links only (an external or soft link would make HDF5 open other files).
_CHILD_PRELUDE = r"""
import json, resource, sys
limit = int(sys.argv[1]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import h5py, numpy

def node(group, path):
    for part in path.split("/"):
        if part not in group or not isinstance(group.get(part, getlink=True), h5py.HardLink):
            return None
        group = group[part]
    return group
"""
_CHILD_SECONDS = 60
_CHILD_MEMORY_MB = 2048

_MARK_READER = r"""
marks = {}
with h5py.File(sys.argv[2], "r") as handle:
    for path in json.loads(sys.argv[3]):
        found = node(handle, path)
        value = found.attrs.get("dtype") if found is not None else None
        marks[path] = value.decode("utf-8", "replace") if isinstance(value, bytes) else \
            (value if isinstance(value, str) else None)
print(json.dumps(marks))
"""


def run_reader(script: str, path: str, arguments: list, source: str, what: str) -> dict:
    """The JSON object a reader script prints for the HDF5 file at ``path``, run in a child
    process; its crash, hang or failure is a FormatError about ``source``."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "-c", _CHILD_PRELUDE + script, str(_CHILD_MEMORY_MB), path, *arguments]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_CHILD_SECONDS,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FormatError(f"{source}: reading its {what} did not finish in {_CHILD_SECONDS} s: "
                          "the HDF5 file is corrupt") from None
    if done.returncode < 0:
        raise FormatError(f"{source}: reading its {what} crashed the HDF5 library "
                          f"(signal {-done.returncode}): the file is corrupt")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise FormatError(f"{source}: cannot read its {what}: {last[:300]}")
    try:
        found = json.loads(done.stdout)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise FormatError(f"{source}: cannot read its {what}")
    return found


def read_dtype_marks(stream, source: str, paths: list) -> dict:
    """{dataset path: its "dtype" text attribute or None}, read by a child process."""
    import io
    import json
    import os
    import tempfile

    if not isinstance(stream, io.BytesIO):  # a stream of the file at source
        return run_reader(_MARK_READER, source, [json.dumps(paths)], source, "dtype attributes")
    with tempfile.NamedTemporaryFile("wb", suffix=".h5", delete=False) as copy:  # an archive's member
        copy.write(stream.getvalue())
    try:
        return run_reader(_MARK_READER, copy.name, [json.dumps(paths)], source, "dtype attributes")
    finally:
        os.unlink(copy.name)
