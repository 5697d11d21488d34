"""linea: the linear layer of deep learning, from scratch on NumPy.

``linea.nn.Linear`` has PyTorch's semantics (y = x Wᵀ + b, weight (out, in));
``linea.keras.layers.Dense`` has Keras 3's (y = activation(x K + b), kernel
(in, units)). Both run on one engine: ``linea.Tensor`` and its autograd.
"""
from linea._autocast import autocast  # noqa: F401 - linea.autocast
from linea._autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from linea.backend import get_num_threads, set_num_threads
from linea._creation import (arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy, full,
                             full_like, linspace, ones, ones_like, rand, rand_like, randint,
                             randn, randn_like, randperm, tensor, zeros, zeros_like)
from linea._dtype import (DType, bfloat16, bool, float16, float32, float64, get_default_dtype,
                          int8, int16, int32, int64, uint8)
from linea._errors import DTypeError, FormatError, ShapeError, StateDictError
from linea._ops_shape import cat, stack, where
from linea._random import (Generator, default_generator, get_rng_state, initial_seed,
                           manual_seed, seed, set_rng_state)
from linea._tensor import Tensor, device
from linea._functions import (abs, allclose, argmax, argmin, clamp, equal, exp, flatten,  # noqa: A004
                              isclose, log, log_softmax, logsumexp, matmul, max, maximum, mean, min,
                              minimum, numel, relu, reshape, sigmoid, softmax, sort, sqrt, squeeze,
                              std, sum, tanh, topk, transpose, unsqueeze, var)

#: Loaded on first use, so `import linea` costs little more than NumPy: name → module.
_LAZY_MODULES = {"nn": "linea.nn", "optim": "linea.optim", "utils": "linea.utils",
                 "io": "linea.io", "convert": "linea.convert", "data": "linea.data",
                 "keras": "linea.keras", "amp": "linea.amp",
                 "quantization": "linea.quantization", "cuda": "linea.cuda", "dask": "linea.dask"}


def __getattr__(name: str):
    import importlib

    if name == "compile":
        from linea._compile import compile as compile_model

        return compile_model
    if name in ("save", "load"):
        from linea import _serialization

        return getattr(_serialization, name)
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    raise AttributeError(f"module 'linea' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"compile", "save", "load"} | set(_LAZY_MODULES))

__version__ = "0.1.0"

float = float32  # noqa: A001 - PyTorch's aliases
double = float64
half = float16
long = int64

__all__ = [
    "Tensor", "device", "DType", "Generator", "default_generator",
    "ShapeError", "DTypeError", "StateDictError", "FormatError",
    "tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "rand", "randn",
    "randint", "randperm", "arange", "linspace", "eye", "zeros_like", "ones_like",
    "empty_like", "full_like", "rand_like", "randn_like", "cat", "stack", "where",
    "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "set_num_threads", "get_num_threads", "get_default_dtype", "save", "load",
    "float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64",
    "bool", "float", "double", "half", "long", "nn", "optim", "utils", "cuda", "compile", "io", "convert",
    "data", "autocast", "amp", "inference_mode",
    # the top-level functions (linea._functions)
    "max", "min", "argmax", "argmin", "sum", "mean", "std", "var", "softmax", "log_softmax",
    "flatten", "exp", "log", "abs", "sqrt", "tanh", "sigmoid", "relu", "clamp", "matmul", "topk",
    "sort", "allclose", "isclose", "equal", "numel", "reshape", "transpose", "squeeze",
    "unsqueeze", "logsumexp", "maximum", "minimum", "from_dlpack",
]
