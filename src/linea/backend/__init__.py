"""The backend seam: array namespaces, and the kernels the array API standard lacks.

linea computes on whatever array library its tensors hold. ``namespace_of(*arrays)``
gives the namespace an op works in — NumPy itself for NumPy arrays (the fast path),
else the Python array API namespace of the inputs (through ``array-api-compat``);
arrays of two libraries or devices in one op are refused, naming both. Operations
the standard does not define (scatter-add, put-along-axis, padding, erf, BLAS
``ger``, copying into an existing array) are named functions here, each with a
NumPy implementation and a portable fallback written in the standard.

``xp`` remains the default namespace (NumPy) for code that creates arrays from
nothing (zeros, random draws); code that receives arrays takes their namespace.
"""
from __future__ import annotations

import os

import numpy as np

from linea.backend._numpy import (blas_ready, get_num_threads, new_bit_generator, outer, owner,
                                  set_num_threads)
from linea.backend._quiet import quiet, quietly

xp = np
ndarray = np.ndarray

__all__ = ["xp", "ndarray", "namespace_of", "space_of", "set_default_namespace", "default_namespace",
           "from_host", "to_host", "host_dtype", "register_namespace", "namespaces", "device_of",
           "scatter_add", "take_along_axis", "put_along_axis", "pad", "erf", "copy_into",
           "is_writeable", "kind_of", "copy_of", "outer", "owner", "blas_ready", "new_bit_generator",
           "set_num_threads", "get_num_threads", "quiet", "quietly"]

#: Registered namespaces by name: "numpy" always; "array_api_strict", "cupy" once used.
_NAMESPACES: dict = {"numpy": np}
#: Where arrays made from nothing (creation, parameters) live; LINEA_ARRAY_NAMESPACE sets it.
_DEFAULT = [np]


def set_default_namespace(name: str) -> None:
    """Create new arrays in the array API namespace ``name`` ("numpy", "array_api_strict", …)."""
    import importlib

    module = np if name == "numpy" else importlib.import_module(name)
    _NAMESPACES[name] = module
    _DEFAULT[0] = module


def default_namespace():
    return _DEFAULT[0]


def from_host(array):
    """A NumPy array made by linea's creation code, moved into the default namespace."""
    space = _DEFAULT[0]
    if space is np or not isinstance(array, (np.ndarray, np.generic)):
        return array
    return space.asarray(array)


def to_host(array):
    """A NumPy array for an array of any CPU library (for .numpy(), printing, files)."""
    return array if isinstance(array, np.ndarray) else np.asarray(array)


def host_dtype(dtype):
    """The NumPy dtype of the same name as another library's ``dtype``."""
    if isinstance(dtype, np.dtype):
        return dtype
    return np.dtype(str(dtype).rsplit(".", 1)[-1])


def register_namespace(name: str, module) -> None:
    """Make ``module`` (an array API namespace) known to linea under ``name``."""
    _NAMESPACES[name] = module


def namespaces() -> dict:
    """{name: namespace} of the array libraries linea has seen."""
    return dict(_NAMESPACES)


def _library(array) -> str:
    if isinstance(array, (np.ndarray, np.generic)):
        return "numpy"
    return type(array).__module__.split(".")[0]


def device_of(array) -> str:
    """"cpu" for NumPy arrays; the array's own device string otherwise."""
    if isinstance(array, (np.ndarray, np.generic)):
        return "cpu"
    return str(getattr(array, "device", "cpu"))


def namespace_of(*arrays):
    """The array namespace of ``arrays`` (None entries and Python scalars ignored).

    NumPy arrays give ``numpy`` itself. Arrays from two libraries, or on two devices,
    raise a ``RuntimeError`` naming both, as PyTorch does for tensors on two devices.
    """
    first = None
    for array in arrays:
        if array is None or isinstance(array, (int, float, bool, complex)):
            continue
        if first is None:
            first = array
        elif type(array) is not type(first) or device_of(array) != device_of(first):
            raise RuntimeError(
                f"Expected all tensors to be on the same device and array library, but found "
                f"{_library(first)} on {device_of(first)} and {_library(array)} on "
                f"{device_of(array)}; move them together first (tensor.to(...))")
    if first is None or isinstance(first, (np.ndarray, np.generic)):
        return np
    from array_api_compat import array_namespace

    namespace = array_namespace(first)
    _NAMESPACES.setdefault(_library(first), namespace)
    return namespace


def space_of(array):
    """The namespace of one array: NumPy itself for a NumPy array (a type test, no lookup),
    else ``namespace_of(array)``. The form every op uses."""
    return np if type(array) is np.ndarray else namespace_of(array)


# ---- kernels the standard lacks ---------------------------------------------------------

def _is_numpy(*arrays) -> bool:
    return all(isinstance(a, np.ndarray) for a in arrays)


def scatter_add(target, index, values) -> None:
    """target[index] += values, accumulating where ``index`` repeats (NumPy's ``add.at``)."""
    if _is_numpy(target):
        np.add.at(target, index, values)
        return
    space = namespace_of(target)  # portable: one index at a time, in order
    if isinstance(index, tuple) and len(index) == 2 and index[1] is Ellipsis:
        index = index[0]
    if isinstance(index, tuple):
        raise NotImplementedError("scatter_add with a multi-axis index needs NumPy arrays")
    flat = np.asarray(index).reshape(-1)
    source = space.reshape(values, (flat.shape[0],) + tuple(target.shape[1:]))
    for position, row in enumerate(flat.tolist()):
        target[row, ...] = target[row, ...] + source[position, ...]


def take_along_axis(array, indices, axis: int):
    """The elements of ``array`` at ``indices`` along ``axis`` (NumPy's ``take_along_axis``)."""
    if _is_numpy(array):
        return np.take_along_axis(array, indices, axis=axis)
    space = namespace_of(array)
    return space.take_along_axis(array, indices, axis=axis)


def put_along_axis(target, indices, values, axis: int) -> None:
    """target at ``indices`` along ``axis`` ← values (NumPy's ``put_along_axis``), in place."""
    if _is_numpy(target):
        np.put_along_axis(target, indices, values, axis=axis)
        return
    space = namespace_of(target)  # portable: a one-hot mask along the axis
    positions = space.arange(target.shape[axis])
    shape = [1] * target.ndim
    shape[axis] = target.shape[axis]
    hits = space.reshape(positions, tuple(shape)) == indices
    target[...] = space.where(hits, values, target)


def pad(array, widths):
    """``array`` padded with zeros by ``widths`` ((before, after) per axis)."""
    if _is_numpy(array):
        return np.pad(array, widths)
    space = namespace_of(array)
    shape = tuple(size + before + after for size, (before, after) in zip(array.shape, widths))
    out = space.zeros(shape, dtype=array.dtype)
    out[tuple(slice(before, before + size) for size, (before, _) in zip(array.shape, widths))] = array
    return out


def erf(array):
    """The error function, elementwise, in ``array``'s dtype."""
    from scipy.special import erf as scipy_erf

    if _is_numpy(array):
        return scipy_erf(array).astype(array.dtype, copy=False)
    space = namespace_of(array)  # portable: through the host (CPU namespaces)
    host = np.asarray(array)
    return space.asarray(scipy_erf(host).astype(host.dtype))


def copy_into(target, source, casting: str = "unsafe") -> None:
    """target[...] = source, converting dtypes (NumPy's ``copyto`` with ``casting``)."""
    if _is_numpy(target) and isinstance(source, (np.ndarray, np.generic, int, float, bool)):
        np.copyto(target, source, casting=casting)
        return
    space = namespace_of(target)
    target[...] = space.astype(space.asarray(source), target.dtype)


def kind_of(array) -> str:
    """NumPy's dtype kind letter ("f", "i", "u", "b", "c") for an array of any library."""
    dtype = array.dtype
    if isinstance(dtype, np.dtype):
        return dtype.kind
    space = namespace_of(array)
    for kind, name in (("b", "bool"), ("f", "real floating"), ("i", "signed integer"),
                       ("u", "unsigned integer"), ("c", "complex floating")):
        if space.isdtype(dtype, name):
            return kind
    return "V"


def copy_of(array):
    """A copy of ``array`` in its own library."""
    if isinstance(array, np.ndarray):
        return array.copy()
    return namespace_of(array).asarray(array, copy=True)


def is_writeable(array) -> bool:
    """False for read-only NumPy arrays (memory another owner handed out)."""
    return array.flags.writeable if isinstance(array, np.ndarray) else True


if os.environ.get("LINEA_ARRAY_NAMESPACE", "numpy") != "numpy":
    set_default_namespace(os.environ["LINEA_ARRAY_NAMESPACE"])
