"""linea's dtypes: thin named wrappers over the array library's dtypes.

``linea.float32`` prints like ``torch.float32`` and compares equal to the
matching NumPy dtype, so ``t.dtype == numpy.float32`` works too.
"""
from __future__ import annotations

from linea._backend import xp

__all__ = [
    "DType", "float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16",
    "int32", "int64", "bool", "as_dtype", "from_numpy_dtype", "get_default_dtype",
]

_builtin_bool = bool


class DType:
    """A tensor element type (``linea.float32`` …); ``.numpy`` is the NumPy dtype."""

    __slots__ = ("name", "numpy", "is_floating_point", "itemsize")

    def __init__(self, name: str, numpy_dtype) -> None:
        self.name = name
        self.numpy = xp.dtype(numpy_dtype)
        self.is_floating_point = self.numpy.kind == "f" or name == "bfloat16"
        self.itemsize = self.numpy.itemsize

    def __repr__(self) -> str:
        return f"linea.{self.name}"

    def __eq__(self, other) -> _builtin_bool:
        if isinstance(other, DType):
            return self.numpy == other.numpy
        try:
            return self.numpy == xp.dtype(other)
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self.numpy)

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
try:  # bfloat16 comes from ml_dtypes, an optional extra
    import ml_dtypes as _ml_dtypes

    bfloat16 = DType("bfloat16", _ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - exercised only without the extra
    bfloat16 = None

_BY_NUMPY = {d.numpy: d for d in (float16, float32, float64, int8, uint8, int16, int32, int64, bool)}
if bfloat16 is not None:
    _BY_NUMPY[bfloat16.numpy] = bfloat16
_BY_NAME = {d.name: d for d in _BY_NUMPY.values()}
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64, "int": int32})


def from_numpy_dtype(numpy_dtype) -> DType:
    """The linea dtype for a NumPy dtype (a new one is made for unusual dtypes)."""
    found = _BY_NUMPY.get(numpy_dtype)
    if found is None:
        numpy_dtype = xp.dtype(numpy_dtype)
        found = _BY_NUMPY.get(numpy_dtype)
        if found is None:
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
