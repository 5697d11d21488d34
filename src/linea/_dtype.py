"""linea's dtypes: thin named wrappers over the array library's dtypes.

``linea.float32`` prints like ``torch.float32`` and compares equal to the
matching NumPy dtype, so ``t.dtype == numpy.float32`` works too.
"""
from __future__ import annotations

from linea.backend import xp

__all__ = [
    "DType", "float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16",
    "int32", "int64", "bool", "as_dtype", "from_numpy_dtype", "get_default_dtype", "is_floating",
]

_builtin_bool = bool


def is_floating(numpy_dtype) -> _builtin_bool:
    """True for a floating-point dtype, bfloat16 (ml_dtypes' kind "V") included; dtypes of
    other array libraries are judged by name."""
    kind = getattr(numpy_dtype, "kind", None)
    if kind is None:
        return str(numpy_dtype).rsplit(".", 1)[-1] in ("float16", "float32", "float64", "bfloat16")
    return kind == "f" or numpy_dtype.name == "bfloat16"


class DType:
    """A tensor element type (``linea.float32`` …), keyed by name; ``.numpy`` is the NumPy dtype.

    bfloat16's NumPy dtype comes from ``ml_dtypes``, imported the first time it is needed,
    so ``import linea`` does not load it.
    """

    __slots__ = ("name", "_numpy", "is_floating_point", "itemsize")

    def __init__(self, name: str, numpy_dtype=None, *, floating: _builtin_bool | None = None,
                 itemsize: int | None = None) -> None:
        self.name = name
        self._numpy = None if numpy_dtype is None else xp.dtype(numpy_dtype)
        self.is_floating_point = is_floating(self._numpy) if floating is None else floating
        self.itemsize = self._numpy.itemsize if itemsize is None else itemsize

    @property
    def numpy(self):
        if self._numpy is None:  # bfloat16: load ml_dtypes now
            from linea._errors import require

            ml_dtypes = require("ml_dtypes", "formats", f"linea.{self.name}")
            self._numpy = xp.dtype(getattr(ml_dtypes, self.name))
            _BY_NUMPY[self._numpy] = self
        return self._numpy

    def in_namespace(self, namespace):
        """This dtype in an array namespace (NumPy: ``.numpy``), looked up by name."""
        if namespace is xp:
            return self.numpy
        return getattr(namespace, self.name)

    def __repr__(self) -> str:
        return f"linea.{self.name}"

    def __eq__(self, other) -> _builtin_bool:
        if isinstance(other, DType):
            return self.name == other.name
        try:
            return self.name == from_numpy_dtype(xp.dtype(other)).name
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self):
        raise TypeError("linea dtypes are not pickled; store dtype.name instead")


float16 = DType("float16", "float16")
float32 = DType("float32", "float32")
float64 = DType("float64", "float64")
int8 = DType("int8", "int8")
uint8 = DType("uint8", "uint8")
int16 = DType("int16", "int16")
int32 = DType("int32", "int32")
int64 = DType("int64", "int64")
bool = DType("bool", "bool")  # noqa: A001 - mirrors torch.bool
bfloat16 = DType("bfloat16", floating=True, itemsize=2)  # ml_dtypes' bfloat16, loaded on use

_BY_NUMPY = {d.numpy: d for d in (float16, float32, float64, int8, uint8, int16, int32, int64, bool)}
_BY_NAME = {d.name: d for d in list(_BY_NUMPY.values()) + [bfloat16]}
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64, "int": int32})


def _library_dtype_name(dtype) -> str | None:
    """The standard name of another array library's dtype (array API dtypes print as
    ``array_api_strict.float32``, CuPy's are NumPy's), or None for a NumPy one."""
    if isinstance(dtype, (xp.dtype, type, str)):
        return None
    name = str(dtype).rsplit(".", 1)[-1]
    return name if name in _BY_NAME else None


def from_numpy_dtype(numpy_dtype) -> DType:
    """The linea dtype for a NumPy dtype — or, by name, another array library's dtype."""
    other = _library_dtype_name(numpy_dtype)
    if other is not None:
        return _BY_NAME[other]
    found = _BY_NUMPY.get(numpy_dtype)
    if found is None:
        numpy_dtype = xp.dtype(numpy_dtype)
        found = _BY_NUMPY.get(numpy_dtype)
        if found is None:
            found = _BY_NAME.get(numpy_dtype.name)
            if found is None or (found._numpy is not None and found._numpy != numpy_dtype):
                found = DType(numpy_dtype.name, numpy_dtype)
            _BY_NUMPY[numpy_dtype] = found
    return found


def as_dtype(dtype) -> DType:
    """Accept ``linea.float32``, ``numpy.float32``, ``"float32"`` or a NumPy dtype."""
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str) and dtype in _BY_NAME:
        return _BY_NAME[dtype]
    try:
        return from_numpy_dtype(xp.dtype(dtype))
    except TypeError:
        raise TypeError(
            f"expected a dtype such as linea.float32 or 'float64', got {dtype!r}"
        ) from None


def get_default_dtype() -> DType:
    """The dtype of floating tensors made from Python numbers (float32, as in PyTorch)."""
    return float32
