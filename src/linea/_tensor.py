"""``linea.Tensor``: an n-dimensional array with reverse-mode autograd.

A Tensor wraps one array of the backend (``_data``). Operations return new
Tensors; when grad mode is on and an input requires a gradient, the result
carries ``grad_fn``, a node of the tape that ``backward()`` walks in reverse.
The operations themselves live in ``_ops_*`` modules, next to their gradients.
"""
from __future__ import annotations

from linea import _dtype
from linea._autograd import is_grad_enabled, note_data_read, run_backward
from linea.backend import copy_into, from_host, host_dtype, namespace_of, to_host, xp
from linea._errors import DTypeError, ShapeError
from linea._versions import mark_written, version_of

__all__ = ["Tensor", "device", "check_device", "is_device_argument", "host_array"]

_ndarray = xp.ndarray


class device:
    """Where a tensor lives. Only ``"cpu"`` exists for now."""

    __slots__ = ("type",)

    def __init__(self, type: str = "cpu") -> None:  # noqa: A002 - PyTorch's name
        if isinstance(type, device):
            type = type.type
        if type != "cpu":
            raise _unavailable(type)
        self.type = type

    def __repr__(self) -> str:
        return f"device(type='{self.type}')"

    def __str__(self) -> str:
        return self.type

    def __eq__(self, other) -> bool:
        return str(other) == self.type

    def __hash__(self) -> int:
        return hash(self.type)


_CPU = device("cpu")


def _unavailable(name) -> Exception:
    """The error for a device other than the CPU: what is missing, and what to do."""
    kind = str(name).split(":")[0]
    if kind != "cuda":
        return ValueError(f"device {name!r} is not available: linea runs on 'cpu' (and, later, 'cuda')")
    from linea.backend._cuda import unavailable_reason

    reason = unavailable_reason()
    if reason:
        return RuntimeError(f"device {name!r} is not available: {reason}")
    return NotImplementedError(f"device {name!r}: a CUDA device is present, but linea's CuPy backend "
                               "is not built yet; tensors and models stay on 'cpu'")


def cuda_device_name(index=None) -> str:
    """What ``.cuda(index)`` asks for, as a device string: "cuda", "cuda:1", or as given."""
    return "cuda" if index is None else f"cuda:{index}" if isinstance(index, int) else str(index)


def check_device(where) -> None:
    """Raise unless ``where`` is None or the CPU (the only device linea has for now)."""
    if where is not None:
        device(str(where))


def is_device_argument(value) -> bool:
    """True for what ``.to(...)`` reads as a device: a device, or "cpu"/"cuda:0"/…."""
    return type(value).__name__ == "device" or (
        isinstance(value, str) and value.split(":")[0] in ("cpu", "cuda", "mps", "meta"))


def host_array(value):
    """The host array behind a linea tensor, a NumPy array or a (CPU) torch tensor; else None.

    Lets state dicts from PyTorch be loaded without linea importing torch.
    """
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, xp.ndarray):
        return value
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return _torch_tensor_array(value)
    return None


def _torch_tensor_array(value):
    """A torch tensor's values as a NumPy array, exactly: bfloat16 through its bits, since
    torch's ``.numpy()`` has no bfloat16; a dtype linea lacks is a TypeError naming it."""
    tensor = value.detach().cpu().resolve_conj().resolve_neg()
    if str(tensor.dtype) == "torch.bfloat16":
        import torch

        return tensor.contiguous().view(torch.int16).numpy().view(_dtype.bfloat16.numpy)
    try:
        return tensor.numpy()
    except TypeError as error:
        raise TypeError(f"a torch tensor of dtype {tensor.dtype} cannot be read into linea "
                        f"({error}); convert it first, e.g. with .float()") from None


class Tensor:
    """An n-dimensional array that records operations for ``backward()``.

    Make one with ``linea.tensor(data)``, ``linea.zeros(2, 3)``, ``linea.randn(...)``;
    ``requires_grad=True`` asks for ``.grad`` to be filled by ``backward()``.
    """

    # Class-level defaults keep Tensor creation to one attribute store.
    _requires_grad = False
    _retains_grad = False
    _hooks = None  # {id: hook} once register_hook is called
    grad = None
    grad_fn = None
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data, *, dtype=None, requires_grad: bool = False) -> None:
        from linea._creation import as_array

        self._data = from_host(as_array(data, dtype))
        if requires_grad:
            self.requires_grad = True

    @staticmethod
    def _make(data) -> "Tensor":
        tensor = _new_tensor(Tensor)
        tensor._data = data
        return tensor

    # ---- attributes -------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    def size(self, dim: int | None = None):
        return self._data.shape if dim is None else self._data.shape[dim]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def dtype(self) -> _dtype.DType:
        return _dtype.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> device:
        return _CPU

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf tensors; use "
                "tensor.detach() to get a leaf that shares the data"
            )
        if value and not self.dtype.is_floating_point:
            raise DTypeError(
                f"only tensors of floating point dtype can require gradients, got "
                f"{self.dtype}; convert with .float() first"
            )
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after ``backward()``."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on a tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self._retains_grad = True
            self.grad_fn.output = self

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement. Hooks run in registration order, before the gradient reaches ``.grad``
        (a leaf's hooks see the sum of everything flowing into it). Returns a handle whose
        ``remove()`` unregisters the hook."""
        from linea._hooks import add_hook

        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = {}
        if self.grad_fn is not None:
            self.grad_fn.output = self
        return add_hook(self._hooks, hook)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    @property
    def data(self) -> "Tensor":
        """A tensor sharing this one's memory, outside the graph."""
        return Tensor._make(self._data)

    @data.setter
    def data(self, value) -> None:
        array = value._data if isinstance(value, Tensor) else xp.asarray(value)
        mark_written(self._data)  # what a recorded op saved of this tensor is no longer its value
        self._data = array

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's memory has had (shared with its views)."""
        return version_of(self._data)

    # ---- autograd ---------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        ``gradient`` is needed (of this tensor's shape) unless the tensor has one element.
        """
        if create_graph:
            raise NotImplementedError("create_graph=True (higher-order gradients) is not supported")
        if not self._requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "nothing it was computed from has requires_grad=True"
            )
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this tensor has "
                    f"shape {self.shape}: pass gradient= of that shape, or reduce it (e.g. .sum())"
                )
            data = self._data
            seed = xp.ones(data.shape, data.dtype) if type(data) is _ndarray else \
                namespace_of(data).ones(data.shape, dtype=data.dtype)
        else:
            seed = gradient._data if isinstance(gradient, Tensor) else xp.asarray(gradient)
            if seed.shape != self._data.shape:
                raise ShapeError(
                    f"backward(gradient=...) got a gradient of shape {seed.shape} for a tensor "
                    f"of shape {self.shape}; they must match"
                )
            # No copy: run_backward never writes into the seed, and a leaf handed
            # the caller's array gets its own copy (its owner is marked handed out).
            seed = seed.astype(self._data.dtype, copy=False) if type(seed) is _ndarray else \
                namespace_of(seed).astype(seed, self._data.dtype)
        run_backward(self, seed, bool(retain_graph))

    def detach(self) -> "Tensor":
        return Tensor._make(self._data)

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self._requires_grad = False
        return self

    # ---- conversion to Python and NumPy -----------------------------------
    def numpy(self, *, force: bool = False):
        """The underlying NumPy array (shared memory, no copy; other libraries convert)."""
        note_data_read("numpy()")
        return to_host(self._data)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """The DLPack capsule of this tensor's memory: ``torch.from_dlpack(t)`` shares it."""
        if self._requires_grad:
            raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
        if getattr(self._data.dtype, "name", "") == "bfloat16":
            raise BufferError("a bfloat16 tensor cannot travel by DLPack (NumPy's DLPack has no "
                              "bfloat16); convert it with .float(), or save it with linea.io")
        options = {"stream": stream}
        if max_version is not None:
            options["max_version"] = max_version
        if dl_device is not None:
            options["dl_device"] = dl_device
        if copy is not None:
            options["copy"] = copy
        return self._data.__dlpack__(**options)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        data = to_host(self._data)
        if dtype is not None and dtype != data.dtype:
            return data.astype(dtype)
        return data.copy() if copy else data

    def item(self):
        note_data_read("item()")
        if self._data.size != 1:
            raise ValueError(
                f"a Tensor with {self._data.size} elements cannot be converted to a Python "
                "number; item() needs exactly one element"
            )
        return to_host(self._data).reshape(()).item()

    def tolist(self):
        note_data_read("tolist()")
        return to_host(self._data).tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self) -> bool:
        note_data_read("bool()")
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self._data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    __hash__ = object.__hash__

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __repr__(self) -> str:
        from linea._format import format_tensor

        return format_tensor(self)

    def __reduce__(self):
        raise TypeError(
            "linea never pickles tensors (loading a pickle can run code); use linea.save()"
        )

    # ---- in-place writes --------------------------------------------------
    def _check_inplace(self, what: str) -> None:
        if self._requires_grad and is_grad_enabled():
            kind = "a leaf tensor that requires grad" if self.grad_fn is None else \
                "a tensor that is part of the autograd graph"
            raise RuntimeError(
                f"{what} cannot run in place on {kind}; wrap it in `with linea.no_grad():` "
                "or use the out-of-place operation"
            )

    def copy_(self, src) -> "Tensor":
        self._check_inplace("copy_")
        array = src._data if isinstance(src, Tensor) else xp.asarray(src)
        try:
            copy_into(self._data, array)
            mark_written(self._data)
        except ValueError:
            raise ShapeError(
                f"copy_ cannot broadcast a source of shape {array.shape} to this tensor's "
                f"shape {self.shape}"
            ) from None
        return self

    def fill_(self, value) -> "Tensor":
        self._check_inplace("fill_")
        value = value.item() if isinstance(value, Tensor) else value
        if type(self._data) is _ndarray:
            self._data.fill(value)
        else:
            self._data[...] = value
        mark_written(self._data)
        return self

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None) -> "Tensor":
        from linea._random import fill_uniform

        self._check_inplace("uniform_")
        fill_uniform(self._data, a, b, generator)
        mark_written(self._data)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None) -> "Tensor":
        from linea._random import fill_normal

        self._check_inplace("normal_")
        fill_normal(self._data, mean, std, generator)
        mark_written(self._data)
        return self

    def random_(self, from_=None, to=None, *, generator=None) -> "Tensor":
        """Fill with integers: ``random_()`` every integer the dtype holds exactly (from 0),
        ``random_(to)`` on [0, to), ``random_(from_, to)`` on [from_, to) — torch's draws."""
        from linea._random import draw_full_range, draw_integers

        self._check_inplace("random_")
        dtype = host_dtype(self._data.dtype)
        if from_ is None and to is None:
            values = draw_full_range(self.shape, dtype, generator)
        else:
            low, high = (0, from_) if to is None else (from_, to)
            values = draw_integers(int(low), int(high), self.shape, generator).astype(dtype)
        copy_into(self._data, values)
        mark_written(self._data)
        return self

    def __setitem__(self, index, value) -> None:
        self._check_inplace("item assignment")
        self._data[_ops_shape.as_index(index)] = value._data if isinstance(value, Tensor) else value
        mark_written(self._data)

    def _inplace(self, name: str, result: "Tensor") -> "Tensor":
        self._check_inplace(name)
        copy_into(self._data, result._data, casting="same_kind")
        mark_written(self._data)
        return self

    def add_(self, other, *, alpha=1):
        return self._inplace("add_", self + (other * alpha if alpha != 1 else other))

    def sub_(self, other, *, alpha=1):
        return self._inplace("sub_", self - (other * alpha if alpha != 1 else other))

    def mul_(self, other):
        return self._inplace("mul_", self * other)

    def div_(self, other):
        return self._inplace("div_", self / other)

    def clamp_(self, min=None, max=None):  # noqa: A002
        return self._inplace("clamp_", self.clamp(min, max))

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    # ---- arithmetic (rules in _ops_math) ----------------------------------
    def __add__(self, other):
        return _ops_math.add(self, other)

    def __radd__(self, other):
        return _ops_math.add(other, self)

    def __sub__(self, other):
        return _ops_math.sub(self, other)

    def __rsub__(self, other):
        return _ops_math.sub(other, self)

    def __mul__(self, other):
        return _ops_math.mul(self, other)

    def __rmul__(self, other):
        return _ops_math.mul(other, self)

    def __truediv__(self, other):
        return _ops_math.div(self, other)

    def __rtruediv__(self, other):
        return _ops_math.div(other, self)

    def __pow__(self, other):
        return _ops_math.pow(self, other)

    def __rpow__(self, other):
        return _ops_math.pow(other, self)

    def __matmul__(self, other):
        return _ops_math.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops_math.matmul(other, self)

    def __neg__(self):
        return _ops_math.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops_math.abs(self)

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    pow = __pow__
    matmul = __matmul__
    neg = __neg__

    def exp(self):
        return _ops_math.exp(self)

    def log(self):
        return _ops_math.log(self)

    def sqrt(self):
        return _ops_math.sqrt(self)

    def tanh(self):
        return _ops_math.tanh(self)

    def sigmoid(self):
        return _ops_math.sigmoid(self)

    def relu(self):
        return _ops_math.relu(self)

    def abs(self):
        return _ops_math.abs(self)

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's names
        return _ops_math.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return _ops_math.maximum(self, other)

    def minimum(self, other):
        return _ops_math.minimum(self, other)

    # ---- comparisons (no gradient) ----------------------------------------
    def __eq__(self, other):
        return _ops_math.compare(xp.equal, self, other)

    def __ne__(self, other):
        return _ops_math.compare(xp.not_equal, self, other)

    def __lt__(self, other):
        return _ops_math.compare(xp.less, self, other)

    def __le__(self, other):
        return _ops_math.compare(xp.less_equal, self, other)

    def __gt__(self, other):
        return _ops_math.compare(xp.greater, self, other)

    def __ge__(self, other):
        return _ops_math.compare(xp.greater_equal, self, other)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    # ---- reductions (rules in _ops_reduce) --------------------------------
    def sum(self, dim=None, keepdim: bool = False, *, dtype=None):
        return _ops_reduce.sum(self, dim, keepdim, dtype)

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None):
        return _ops_reduce.mean(self, dim, keepdim, dtype)

    def var(self, dim=None, keepdim: bool = False, *, correction: int = 1, unbiased=None):
        if unbiased is not None:
            correction = int(bool(unbiased))
        return _ops_reduce.var(self, dim, keepdim, correction)

    def std(self, dim=None, keepdim: bool = False, *, correction: int = 1, unbiased=None):
        return self.var(dim, keepdim, correction=correction, unbiased=unbiased).sqrt()

    def max(self, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        return _ops_reduce.extreme(self, dim, keepdim, largest=True)

    def min(self, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        return _ops_reduce.extreme(self, dim, keepdim, largest=False)

    def argmax(self, dim=None, keepdim: bool = False):
        return _ops_reduce.arg_extreme(self, dim, keepdim, largest=True)

    def argmin(self, dim=None, keepdim: bool = False):
        return _ops_reduce.arg_extreme(self, dim, keepdim, largest=False)

    def logsumexp(self, dim, keepdim: bool = False):
        return _ops_reduce.logsumexp(self, dim, keepdim)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
        return _ops_reduce.topk(self, k, dim, largest, sorted)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return _ops_reduce.sort(self, dim, descending, stable)

    def softmax(self, dim: int, dtype=None):
        return _ops_reduce.softmax(self, dim, dtype)

    def log_softmax(self, dim: int, dtype=None):
        return _ops_reduce.log_softmax(self, dim, dtype)

    def all(self, dim=None, keepdim: bool = False):
        return Tensor._make(xp.asarray(self._data.all(axis=dim, keepdims=keepdim)))

    def any(self, dim=None, keepdim: bool = False):
        return Tensor._make(xp.asarray(self._data.any(axis=dim, keepdims=keepdim)))

    # ---- shapes, indexing and dtype (rules in _ops_shape) -----------------
    def reshape(self, *shape):
        return _ops_shape.reshape(self, shape)

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)):
            return self.to(shape[0])
        return _ops_shape.reshape(self, shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _ops_shape.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int):
        return _ops_shape.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops_shape.permute(self, dims)

    @property
    def T(self):
        return _ops_shape.permute(self, tuple(range(self._data.ndim - 1, -1, -1)))

    @property
    def mT(self):
        return _ops_shape.transpose(self, -2, -1)

    def t(self):
        if self._data.ndim > 2:
            raise ShapeError(f"t() expects a tensor of at most 2 dimensions, got {self.ndim}")
        return self.T

    def unsqueeze(self, dim: int):
        return _ops_shape.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _ops_shape.squeeze(self, dim)

    def expand(self, *sizes):
        return _ops_shape.expand(self, sizes)

    def contiguous(self):
        return self

    def clone(self):
        return _ops_shape.clone(self)

    def __getitem__(self, index):
        return _ops_shape.getitem(self, index)

    def masked_fill(self, mask, value):
        return _ops_shape.masked_fill(self, mask, value)

    def to(self, *args, dtype=None, device=None, copy: bool = False):
        return _ops_shape.to(self, args, dtype, device, copy)

    def type(self, dtype=None):
        return self.dtype if dtype is None else self.to(dtype)

    def float(self):
        return _ops_shape.cast(self, _dtype.float32)

    def double(self):
        return _ops_shape.cast(self, _dtype.float64)

    def half(self):
        return _ops_shape.cast(self, _dtype.float16)

    def bfloat16(self):
        return _ops_shape.cast(self, _dtype.bfloat16)

    def long(self):
        return _ops_shape.cast(self, _dtype.int64)

    def int(self):
        return _ops_shape.cast(self, _dtype.int32)

    def bool(self):
        return _ops_shape.cast(self, _dtype.bool)

    def cpu(self):
        return self

    def cuda(self, device=None):
        raise _unavailable(cuda_device_name(device))


_new_tensor = object.__new__

# The ops modules import Tensor, so they are imported after the class exists.
from linea import _ops_math, _ops_reduce, _ops_shape  # noqa: E402
