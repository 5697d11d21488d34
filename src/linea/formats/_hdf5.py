"""Keras 3 weights files (``.weights.h5``, and the member of a ``.keras`` archive) as bytes ⇄
arrays: ``layers/<path>/vars/<index>`` datasets, bfloat16 as 2-byte opaque values with
Keras's ``dtype`` mark (read in a child process after the heap walk, see ``_hdf5_heaps``).

Every dataset's declared size is checked against the file's own size before it is read,
links to other files are not followed, and h5py's own errors become ``FormatError``.
Which variable of which layer is which is the Keras flavour's business, not this module's.
"""
from __future__ import annotations

import io
import os

from linea._errors import FormatError, require
from linea._files import open_regular
from linea.backend import xp
from linea.formats._hdf5_heaps import (check_global_heaps, hard_child, read_dtype_marks,
                                       searchable)

__all__ = ["h5py_module", "read_weights_file", "read_weights_h5", "weights_h5_bytes"]


def h5py_module():
    return require("h5py", "formats", "Reading or writing Keras .weights.h5 and .keras files")


def _bfloat16():
    from linea import bfloat16

    return bfloat16.numpy


def weights_h5_bytes(layers, model_name: str) -> bytes:
    """The bytes of a Keras 3 ``.weights.h5`` file: ``layers`` is a list of (path, layer name,
    [arrays in Keras's variable order]); the layers' creation order is recorded."""
    h5py = h5py_module()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as handle:
        groups = handle.create_group("layers", track_order=True)
        for path, name, arrays in layers:
            group = groups.create_group(path).create_group("vars")
            group.attrs["name"] = name
            for index, array in enumerate(arrays):
                dataset = group.create_dataset(str(index), data=array)
                if array.dtype.name == "bfloat16":  # HDF5 has no bfloat16: Keras's mark
                    dataset.attrs["dtype"] = "bfloat16"
        handle.create_group("vars").attrs["name"] = model_name
    return buffer.getvalue()


def _opaque_marks(layers, h5py, stream, source: str) -> dict:
    """The "dtype" marks of every 2-byte opaque dataset under layers/ (Keras writes bfloat16 as
    such values with dtype="bfloat16"), read in one child process (see _hdf5_heaps)."""
    paths = []
    for name in layers:
        group = layers.get(name, getlink=True)
        if not isinstance(group, h5py.HardLink) or "vars" not in layers[name]:
            continue
        variables = layers[name]["vars"]
        if not isinstance(variables, h5py.Group):
            continue
        for key in variables:
            if isinstance(variables.get(key, getlink=True), h5py.HardLink):
                dataset = variables[key]
                if isinstance(dataset, h5py.Dataset) and dataset.dtype.kind == "V" and dataset.dtype.itemsize == 2:
                    paths.append(f"layers/{name}/vars/{key}")
    return read_dtype_marks(stream, source, paths[:100_000])


def read_weights_file(filepath, report_order: bool = False, shapes_only: bool = False):
    """``read_weights_h5`` of a ``.weights.h5`` file, read from the file as needed (not all at once)."""
    source = os.fspath(filepath)
    with os.fdopen(open_regular(source), "rb") as stream:
        return read_weights_h5(stream, source, report_order, shapes_only)


def read_weights_h5(data, source: str, report_order: bool = False, shapes_only: bool = False):
    """{layer path: [arrays in order]} from a Keras 3 weights file; FormatError if it is bad.

    With ``report_order``, also whether the file records its layers' creation order
    (linea writes it; Keras's own files list layers alphabetically).

    Every dataset's declared size is checked against the file's own size before
    it is read, so a hostile file cannot make linea allocate without bound.
    """
    h5py = h5py_module()
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if stream.read(8) != b"\x89HDF\r\n\x1a\n":
        raise FormatError(f"{source}: not an HDF5 file (Keras .weights.h5 files are HDF5)")
    stream.seek(0)
    try:
        with h5py.File(stream, "r") as handle:
            heaps_checked = []

            def child(group, name, where):
                return hard_child(group, name, where, h5py, source)

            if "layers" not in handle:
                raise FormatError(f"{source}: no 'layers' group: not a Keras 3 weights file")
            layers = child(handle, "layers", "layers")
            if not isinstance(layers, h5py.Group):
                raise FormatError(f"{source}: no 'layers' group: not a Keras 3 weights file")
            result = {}
            ordered = bool(layers.id.get_create_plist().get_link_creation_order())
            for name in layers:
                group = child(layers, name, f"layers/{name}")
                if not isinstance(group, h5py.Group) or "vars" not in group:
                    result[name] = []
                    continue
                variables = child(group, "vars", f"layers/{name}/vars")
                if not isinstance(variables, h5py.Group):
                    raise FormatError(f"{source}: layers/{name}/vars is not a group")
                keys = sorted(variables, key=lambda k: int(k) if k.isdigit() else -1)
                if any(not key.isdigit() for key in keys):
                    raise FormatError(f"{source}: layer {name!r} has a weight named {keys[0]!r}, "
                                      "expected 0, 1, …")
                arrays = []
                for key in keys:
                    dataset = child(variables, key, f"{name}/vars/{key}")
                    bfloat16 = False
                    if isinstance(dataset, h5py.Dataset) and dataset.dtype.kind == "V" and \
                            dataset.dtype.itemsize == 2:
                        if not heaps_checked:  # its dtype mark is text: heaps, then a child reads it
                            check_global_heaps(searchable(stream), handle, h5py, source)
                            heaps_checked.append(_opaque_marks(layers, h5py, stream, source))
                        bfloat16 = heaps_checked[0].get(f"layers/{name}/vars/{key}") == "bfloat16"
                    if not isinstance(dataset, h5py.Dataset) or \
                            (dataset.dtype.kind not in "fiub" and not bfloat16):
                        raise FormatError(f"{source}: {name}/vars/{key} is not a numeric array")
                    if dataset.is_virtual or dataset.external:
                        raise FormatError(f"{source}: {name}/vars/{key} keeps its data in other "
                                          "files, which linea does not read")
                    if dataset.size * dataset.dtype.itemsize > size:
                        raise FormatError(
                            f"{source}: {name}/vars/{key} declares {dataset.shape} of "
                            f"{dataset.dtype}, more than the file's {size} bytes hold")
                    dtype = _bfloat16() if bfloat16 else dataset.dtype
                    if shapes_only:
                        arrays.append(xp.broadcast_to(xp.zeros((), dtype), dataset.shape))
                    else:  # read once; bfloat16 arrives as 2-byte opaque values
                        data = xp.asarray(dataset[()])
                        arrays.append(data.view(dtype) if bfloat16 else data)
                result[name] = arrays
            return (result, ordered) if report_order else result
    except FormatError:
        raise
    except Exception as error:  # h5py's and HDF5's own errors, whatever their class
        raise FormatError(f"{source}: cannot read the HDF5 file: {error}") from None
