"""Random number generators: ``linea.Generator``, ``manual_seed`` and the draws.

A ``Generator`` runs one of two engines:

- ``"torch"`` (the default, and the global generator's): PyTorch's CPU mt19937 stream,
  reproduced bit for bit (``linea.backend._mt19937``), so ``linea.manual_seed(0)`` followed
  by ``rand``, ``randn``, ``randint``, ``randperm``, ``nn.init`` or ``nn.Linear(…)`` gives
  the numbers ``torch.manual_seed(0)`` and the same calls give (float32 and float64);
  ``get_state()`` is the 5056 bytes of ``torch.get_rng_state()``.
- ``"pcg64"``: NumPy's PCG64, for bulk noise where matching torch does not matter;
  ``get_state()`` is then its state as JSON bytes.

Library code draws only from a ``Generator`` it is given or from the default one, never
from NumPy's global state, so seeded runs are reproducible.
"""
from __future__ import annotations

import json
import math
import secrets

from linea.backend import copy_into, host_dtype, new_bit_generator, xp
from linea.backend._mt19937 import STATE_BYTES, TorchStream, draw_dtype

__all__ = ["Generator", "default_generator", "manual_seed", "seed", "initial_seed",
           "get_rng_state", "set_rng_state", "draw_uniform", "draw_normal", "draw_integers",
           "draw_permutation", "draw_int64_seed", "draw_keep_mask", "draw_full_range",
           "draw_dtype", "fill_uniform", "fill_normal", "numpy_generator", "ENGINES"]

_DEFAULT_SEED = 67280421310721  # PyTorch's default_generator seed
ENGINES = ("torch", "pcg64")


class Generator:
    """An explicit random stream: ``g = linea.Generator().manual_seed(0)``.

    ``engine="torch"`` (default) reproduces PyTorch's CPU generator; ``engine="pcg64"``
    is NumPy's PCG64. ``get_state()`` / ``set_state()`` save and restore the exact
    position (a uint8 tensor, as in PyTorch; for the torch engine the very bytes of
    ``torch.get_rng_state()``, which ``set_state`` also accepts).
    """

    def __init__(self, device: str = "cpu", engine: str = "torch") -> None:
        if str(device) != "cpu":
            raise ValueError(f"Generator device {device!r} is not available; use 'cpu'")
        if engine not in ENGINES:
            raise ValueError(f"Generator engine {engine!r} is not one of {ENGINES}")
        self._engine = engine
        self._stream = self._numpy = None
        self._start(_DEFAULT_SEED)

    def _start(self, seed: int) -> None:
        self._seed = seed
        if self._engine == "torch":
            self._stream, self._numpy = TorchStream(seed), None
        else:
            self._stream, self._numpy = None, new_bit_generator(seed)

    @property
    def engine(self) -> str:
        return self._engine

    def manual_seed(self, seed: int) -> "Generator":
        if isinstance(seed, bool) or not isinstance(seed, int):
            try:
                seed = int(seed)
            except (TypeError, ValueError):
                raise TypeError(f"manual_seed expects an int, got {seed!r}") from None
        if seed < 0:
            seed += 1 << 64  # PyTorch accepts negative seeds by wrapping them
        if not 0 <= seed < (1 << 64):
            raise ValueError(f"seed must be in [-2**63, 2**64), got {seed}")
        self._start(seed)
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy and return the seed."""
        self.manual_seed(secrets.randbits(63))
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        from linea._tensor import Tensor

        if self._engine == "torch":
            encoded = self._stream.get_state()
        else:
            state = {"seed": self._seed, "bit_generator": self._numpy.bit_generator.state}
            encoded = json.dumps(state, sort_keys=True).encode("ascii")
        return Tensor._make(xp.frombuffer(encoded, dtype=xp.uint8).copy())

    def set_state(self, new_state) -> "Generator":
        """Restore a state from ``get_state()`` (either engine's; the engine follows the state)
        or ``torch.get_rng_state()``. Anything else raises, changing nothing."""
        data = getattr(new_state, "_data", new_state)
        if hasattr(data, "numpy") and not isinstance(data, xp.ndarray):
            data = data.numpy()  # a torch tensor
        array = xp.asarray(data)
        if array.dtype != xp.uint8 or array.ndim != 1:
            raise TypeError(f"set_state expects the uint8 tensor from get_state(), got dtype "
                            f"{array.dtype} with shape {array.shape}")
        raw = array.tobytes()
        if len(raw) == STATE_BYTES:
            stream = TorchStream(0)
            stream.set_state(raw)
            self._engine, self._stream, self._numpy, self._seed = "torch", stream, None, stream.seed
            return self
        try:
            state = json.loads(raw.decode("ascii"))
            generator = new_bit_generator(0)
            generator.bit_generator.state = state["bit_generator"]
            seed = int(state["seed"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(f"not a generator state from get_state() ({len(raw)} bytes; a torch-engine "
                             f"state is {STATE_BYTES}): {error}") from None
        self._engine, self._stream, self._numpy, self._seed = "pcg64", None, generator, seed
        return self

    def __repr__(self) -> str:
        return f"<linea.Generator engine={self._engine} seed={self._seed}>"


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (what every draw without ``generator=`` uses)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    default_generator.set_state(new_state)


def _generator(generator) -> Generator:
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a linea.Generator, got {type(generator).__name__}")
    return generator


def numpy_generator(generator=None):
    """A NumPy generator for draws torch has no counterpart of (Keras's shuffling, bulk noise).

    The pcg64 engine's own; for the torch engine a PCG64 seeded by one int64 draw from
    the stream, so the draws are reproducible and the stream moves on.
    """
    chosen = _generator(generator)
    if chosen._engine == "pcg64":
        return chosen._numpy
    return new_bit_generator(chosen._stream.int64_seed())


def draw_uniform(shape, dtype, low: float, high: float, generator=None):
    """Samples of U[low, high) of ``shape``, as an array of ``dtype`` (C order)."""
    chosen, dtype = _generator(generator), xp.dtype(dtype)
    if chosen._engine == "torch":
        return chosen._stream.uniform(math.prod(shape), low, high, dtype).reshape(shape)
    unit = chosen._numpy.random(shape, dtype=draw_dtype(dtype))
    return (unit * (high - low) + low).astype(dtype, copy=False)


def draw_normal(shape, dtype, mean: float, std: float, generator=None):
    """Samples of N(mean, std²) of ``shape``, as an array of ``dtype`` (torch's contiguous path)."""
    chosen, dtype = _generator(generator), xp.dtype(dtype)
    if chosen._engine == "torch":
        return chosen._stream.normal(math.prod(shape), mean, std, dtype).reshape(shape)
    standard = chosen._numpy.standard_normal(shape, dtype=draw_dtype(dtype))
    return (standard * std + mean).astype(dtype, copy=False)


def draw_integers(low: int, high: int, shape, generator=None):
    """int64 samples uniform on [low, high) (``torch.randint``'s draws on the torch engine)."""
    chosen = _generator(generator)
    if high <= low:
        raise ValueError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    if chosen._engine == "torch":
        return chosen._stream.integers(low, high, math.prod(shape)).reshape(shape)
    return chosen._numpy.integers(low, high, size=shape).astype(xp.int64)


def draw_permutation(n: int, generator=None):
    """A random permutation of 0 … n − 1, int64 (``torch.randperm``'s on the torch engine)."""
    chosen = _generator(generator)
    if chosen._engine == "torch":
        return chosen._stream.randperm(n)
    return chosen._numpy.permutation(int(n)).astype(xp.int64)


def draw_int64_seed(generator=None) -> int:
    """``torch.empty((), dtype=torch.int64).random_(generator=g).item()`` (a seed for a child stream)."""
    chosen = _generator(generator)
    if chosen._engine == "torch":
        return chosen._stream.int64_seed()
    return int(chosen._numpy.integers(0, 2 ** 63))


def draw_keep_mask(shape, keep_probability: float, generator=None):
    """Bernoulli(keep_probability) booleans of ``shape``: torch's CPU ``bernoulli_(p)`` on the
    torch engine (a float64 uniform per element, kept where it is below p)."""
    chosen = _generator(generator)
    if chosen._engine == "torch":
        return (chosen._stream.uniform_float64(math.prod(shape), 0.0, 1.0) < keep_probability).reshape(shape)
    return chosen._numpy.random(shape) < keep_probability


_MANTISSA_DIGITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


def draw_full_range(shape, dtype, generator=None):
    """``Tensor.random_()`` without bounds: integers on [0, 2^digits] for a float dtype (every
    integer it holds exactly), [0, max] for an integer dtype, 0/1 for bool — torch's draws
    (``random64()`` for float64 and int64, ``random()`` otherwise) on the torch engine."""
    chosen, dtype, count = _generator(generator), xp.dtype(dtype), math.prod(shape)
    if dtype == xp.bool_:
        modulus = 2
    elif dtype.name in _MANTISSA_DIGITS:
        modulus = 2 ** _MANTISSA_DIGITS[dtype.name] + 1
    elif dtype.kind in "iu":
        modulus = int(xp.iinfo(dtype).max) + 1
    else:
        raise TypeError(f"random_ is not defined for dtype {dtype}")
    if chosen._engine == "pcg64":
        return chosen._numpy.integers(0, modulus, size=shape).astype(dtype)
    if dtype in (xp.float64, xp.int64):
        raw = chosen._stream.random64(count)
    else:
        raw = chosen._stream.random32(count).astype(xp.uint64)
    return (raw % xp.uint64(modulus)).astype(dtype).reshape(shape)


def _is_strided_numpy(array) -> bool:
    """A NumPy view in neither C nor Fortran order (linea keeps some weights column-major: those
    are contiguous tensors to torch, and take its vectorised path)."""
    return type(array) is xp.ndarray and not (array.flags.c_contiguous or array.flags.f_contiguous)


def _in_place_target(chosen, array, c_order: bool = False) -> bool:
    """Whether the torch engine can draw straight into ``array`` (NumPy float32/float64; for
    ``c_order`` also C-contiguous)."""
    return chosen._engine == "torch" and type(array) is xp.ndarray and array.flags.writeable \
        and array.dtype in (xp.float32, xp.float64) and (array.flags.c_contiguous or not c_order)


def fill_uniform(array, low: float, high: float, generator=None) -> None:
    """``array`` filled in place with U[low, high) samples (the values of ``draw_uniform``)."""
    chosen = _generator(generator)
    if _in_place_target(chosen, array):
        chosen._stream.fill_uniform(array, low, high)
        return
    copy_into(array, draw_uniform(array.shape, host_dtype(array.dtype), low, high, generator))


def fill_normal(array, mean: float, std: float, generator=None) -> None:
    """``array`` filled in place with N(mean, std²) samples.

    On the torch engine a strided NumPy view (neither C nor Fortran order) takes torch's
    scalar path, as ``normal_`` on a non-contiguous torch tensor does (values in C order of
    the view).
    """
    chosen = _generator(generator)
    if chosen._engine == "torch" and _is_strided_numpy(array):
        values = chosen._stream.normal_scalar(array.size, mean, std)
        array[...] = values.astype(array.dtype).reshape(array.shape)
        return
    if _in_place_target(chosen, array, c_order=True):
        chosen._stream.fill_normal(array.reshape(-1), mean, std)
        return
    copy_into(array, draw_normal(array.shape, host_dtype(array.dtype), mean, std, generator))
