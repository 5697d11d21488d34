"""Random number generators: ``linea.Generator``, ``manual_seed`` and the draws.

Library code draws only from a ``Generator`` it is given or from the default
one, never from NumPy's global state, so seeded runs are reproducible.
"""
from __future__ import annotations


import math

from linea.backend import host_dtype, new_bit_generator, xp

__all__ = ["Generator", "default_generator", "manual_seed", "seed", "initial_seed",
           "get_rng_state", "set_rng_state", "draw_uniform", "draw_normal"]

_DEFAULT_SEED = 67280421310721  # PyTorch's default_generator seed, for familiarity


class Generator:
    """An explicit random stream: ``g = linea.Generator().manual_seed(0)``.

    ``get_state()`` / ``set_state()`` save and restore the exact position in
    the stream (a uint8 tensor, as in PyTorch), so a checkpoint can resume it.
    """

    def __init__(self, device: str = "cpu") -> None:
        if str(device) != "cpu":
            raise ValueError(f"Generator device {device!r} is not available; use 'cpu'")
        self._seed = _DEFAULT_SEED
        self._numpy = new_bit_generator(self._seed)

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
        self._seed = seed
        self._numpy = new_bit_generator(seed)
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy and return the seed."""
        self.manual_seed(__import__('secrets').randbits(63))
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        from linea._tensor import Tensor

        state = {"seed": self._seed, "bit_generator": self._numpy.bit_generator.state}
        import json

        encoded = json.dumps(state, sort_keys=True).encode("ascii")
        return Tensor._make(xp.frombuffer(encoded, dtype=xp.uint8).copy())

    def set_state(self, new_state) -> "Generator":
        array = xp.asarray(getattr(new_state, "_data", new_state))
        if array.dtype != xp.uint8 or array.ndim != 1:
            raise TypeError(
                f"set_state expects the uint8 tensor from get_state(), got dtype "
                f"{array.dtype} with shape {array.shape}"
            )
        try:
            import json

            state = json.loads(array.tobytes().decode("ascii"))
            generator = new_bit_generator(0)
            generator.bit_generator.state = state["bit_generator"]
            seed = int(state["seed"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(f"not a generator state from get_state(): {error}") from None
        self._numpy, self._seed = generator, seed
        return self

    def __repr__(self) -> str:
        return f"<linea.Generator seed={self._seed}>"


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


def _numpy_generator(generator):
    if generator is None:
        return default_generator._numpy
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a linea.Generator, got {type(generator).__name__}")
    return generator._numpy


def _draw_dtype(dtype):
    # NumPy draws float32 and float64 natively; other floats are drawn in float32.
    return dtype if dtype in (xp.float32, xp.float64) else xp.float32


def draw_uniform(shape, dtype, low: float, high: float, generator=None):
    """Samples of U[low, high) of ``shape``, as an array of ``dtype``."""
    rng = _numpy_generator(generator)
    unit = rng.random(shape, dtype=_draw_dtype(xp.dtype(dtype)))
    return (unit * (high - low) + low).astype(dtype, copy=False)


_CHUNK = 1 << 20  # elements drawn at a time by the fill_ functions


def _fill(array, draw, scale: float, shift: float) -> bool:
    """Fill the NumPy ``array`` in place with ``draw(shape, dtype) * scale + shift``, chunk by chunk.

    The samples are drawn in C order, a block of rows at a time, so the values are those
    of one draw of the whole shape while the extra memory is one block (≤ 4 MiB or one
    row), not the array's size. False (nothing done) for arrays of other libraries.
    """
    if type(array) is not xp.ndarray:
        return False
    drawn_dtype = _draw_dtype(array.dtype)
    if array.ndim == 0:
        rows, block = 1, 1
        target = array.reshape(1)
    else:
        target = array
        row = math.prod(array.shape[1:])
        rows, block = array.shape[0], max(1, _CHUNK // max(row, 1))
    for start in range(0, rows, block):
        part = target[start:start + block]
        values = draw(part.shape, drawn_dtype)
        values *= scale
        values += shift
        part[...] = values
    return True


def fill_uniform(array, low: float, high: float, generator=None) -> None:
    """``array`` filled in place with U[low, high) samples (the values of ``draw_uniform``)."""
    rng = _numpy_generator(generator)
    if not _fill(array, lambda shape, dtype: rng.random(shape, dtype=dtype), high - low, low):
        from linea.backend import copy_into

        copy_into(array, draw_uniform(array.shape, host_dtype(array.dtype), low, high, generator))


def fill_normal(array, mean: float, std: float, generator=None) -> None:
    """``array`` filled in place with N(mean, std²) samples (the values of ``draw_normal``)."""
    rng = _numpy_generator(generator)
    if not _fill(array, lambda shape, dtype: rng.standard_normal(shape, dtype=dtype), std, mean):
        from linea.backend import copy_into

        copy_into(array, draw_normal(array.shape, host_dtype(array.dtype), mean, std, generator))


def draw_normal(shape, dtype, mean: float, std: float, generator=None):
    """Samples of N(mean, std²) of ``shape``, as an array of ``dtype``."""
    rng = _numpy_generator(generator)
    standard = rng.standard_normal(shape, dtype=_draw_dtype(xp.dtype(dtype)))
    return (standard * std + mean).astype(dtype, copy=False)


def numpy_generator(generator=None):
    """The NumPy generator behind ``generator`` (or the default one)."""
    return _numpy_generator(generator)
