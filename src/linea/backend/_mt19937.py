"""PyTorch's CPU random stream (mt19937), reproduced bit for bit (torch 2.13, x86-64 Linux).

The facts, each checked against torch by tests/backend/test_torch_stream.py:

- ``torch.manual_seed(s)`` seeds a standard mt19937 with ``s & 0xffffffff``
  (``init_genrand``); ``random64()`` is (first 32-bit draw ≪ 32) | second.
- float32 ``uniform_(a, b)``: one 32-bit draw per element in memory order,
  ``fma(x, b − a, a)`` in float32 with ``x = (r & 0xFFFFFF)·2⁻²⁴``; float64: ``random64()``
  per element, ``x = (r & (2⁵³ − 1))·2⁻⁵³``, ``x·(b − a) + a`` unfused. A value that
  rounds up to b becomes a.
- ``normal_`` of fewer than 16 values (or of a non-contiguous tensor): scalar double
  Box–Muller on two float64 uniforms — r = √(−2·log1p(−u2)), θ = 2π·u1, value r·cos θ,
  r·sin θ cached for the next scalar draw — then ``fma(value, std, mean)`` and a cast.
  16 and more: n uniforms, then Box–Muller on blocks of 16 (``_box_muller``); when
  n % 16 ≠ 0, 16 fresh uniforms are drawn and their normals overwrite the last 16.
- ``randint(low, high)``: ``random() % (high − low) + low`` per element (``random64()``
  where the range is 2³² or more). ``randperm(n)``: Fisher–Yates, swapping r[i] and
  r[i + random() % (n − i)] for i < n − 1.
- ``get_rng_state()`` is 5056 bytes: the seed, mt19937's ``left``/``seeded``/``next`` and
  624 state words as uint64, the cached double normal, then a float cache.

NumPy's ``MT19937`` bit generator produces the 32-bit draws (its state set to the
``init_genrand`` state); nothing here loops in Python per element.
"""
from __future__ import annotations

import math
import struct
import threading
from fractions import Fraction

import numpy as np

from linea.backend._box_muller import box_muller, fisher_yates, uniform_float32

__all__ = ["TorchStream", "STATE_BYTES", "draw_dtype"]

#: len(torch.get_rng_state()) for a CPU generator.
STATE_BYTES = 5056
_WORDS = 624
_HEADER = struct.Struct("<QiiQ")  # the_initial_seed, left, seeded, next
_DOUBLE_CACHE = struct.Struct("<dddi")  # normal_x, normal_y (the cached value), normal_rho, valid
_FLOAT_CACHE = struct.Struct("<f?")
_DOUBLE_AT, _FLOAT_AT = _HEADER.size + 8 * _WORDS, _HEADER.size + 8 * _WORDS + 32
#: randperm(n) uses ``random() % (n − i)`` below this n; torch switches algorithm above it.
RANDPERM_LIMIT = (2 ** 32 - 1) // 20


def draw_dtype(dtype) -> np.dtype:
    """The dtype samples for ``dtype`` are drawn in: float32 and float64 natively, every other
    float dtype in float32, then cast (torch's float16/bfloat16 arithmetic is not reproduced)."""
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _seeded_key(seed: int) -> np.ndarray:
    return np.random.RandomState(int(seed) & 0xFFFFFFFF).get_state()[1]  # init_genrand


class TorchStream:
    """A torch-compatible CPU stream: ``TorchStream(0).uniform_float32(n, a, b)`` is ``torch.rand(n)``."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.RLock()  # one draw at a time, as torch's generator mutex
        self._bits = np.random.MT19937()
        self._draws = np.random.Generator(self._bits)  # integers(0, 2³², uint32) are the raw outputs
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """``torch.manual_seed(seed)`` for this stream (any 64-bit seed; mt19937 sees its low 32 bits)."""
        self._seed = int(seed)
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": _seeded_key(seed), "pos": _WORDS}}
        self._fresh = True  # no draw since seeding: torch's state reads left = 1, next = 0
        self._cached_normal = None  # torch's next_double_normal_sample
        self._cached_float_normal = None  # next_float_normal_sample (kept for get_state only)

    @property
    def seed(self) -> int:
        return self._seed

    # -- raw draws -----------------------------------------------------------------------------
    def random32(self, count: int) -> np.ndarray:
        """The next ``count`` 32-bit outputs of the mt19937 (torch's ``random()``)."""
        with self._lock:
            with self._lock:
                if count:
                    self._fresh = False
                if count < 4096:  # random_raw has the smaller fixed cost, integers the faster loop
                    return self._bits.random_raw(int(count)).astype(np.uint32)
                return self._draws.integers(0, 2 ** 32, size=int(count), dtype=np.uint32)

    def random64(self, count: int) -> np.ndarray:
        """torch's ``random64()``: (first 32-bit draw ≪ 32) | second, ``count`` times."""
        with self._lock:
            draws = self.random32(2 * int(count)).astype(np.uint64)
            return (draws[0::2] << np.uint64(32)) | draws[1::2]

    def int64_seed(self) -> int:
        """``int(torch.empty((), dtype=torch.int64).random_().item())``: random64 mod 2⁶³."""
        return int(self.random64(1)[0] % np.uint64(2 ** 63))

    # -- uniform -------------------------------------------------------------------------------
    def uniform_float32(self, count: int, low: float, high: float) -> np.ndarray:
        """``torch.empty(count).uniform_(low, high)`` after the same draws, bit for bit."""
        with self._lock:
            return uniform_float32(self.random32(count), low, high)

    def uniform_float64(self, count: int, low: float, high: float) -> np.ndarray:
        """``torch.empty(count, dtype=torch.float64).uniform_(low, high)``, bit for bit."""
        with self._lock:
            unit = (self.random64(count) & np.uint64(2 ** 53 - 1)).astype(np.float64) * 2.0 ** -53
            values = unit * (float(high) - float(low)) + float(low)
            values[values == float(high)] = float(low)
            return values

    def uniform(self, count: int, low: float, high: float, dtype) -> np.ndarray:
        """``uniform_`` of ``count`` values of ``dtype``, drawn in ``draw_dtype(dtype)``."""
        if draw_dtype(dtype) == np.float64:
            return self.uniform_float64(count, low, high)
        return self.uniform_float32(count, low, high).astype(dtype, copy=False)

    # -- normal --------------------------------------------------------------------------------
    def normal_scalar(self, count: int, mean: float, std: float) -> np.ndarray:
        """torch's scalar ``normal_`` path (float64 values; the caller casts), ``count`` values."""
        with self._lock:
            values = []
            mean_exact, std_exact = Fraction(mean), Fraction(std)
            for _ in range(int(count)):
                if self._cached_normal is not None:
                    sample, self._cached_normal = self._cached_normal, None
                else:
                    u1, u2 = self.uniform_float64(2, 0.0, 1.0).tolist()
                    radius = math.sqrt(-2.0 * math.log1p(-u2))
                    theta = 2.0 * math.pi * u1
                    self._cached_normal = radius * math.sin(theta)
                    sample = radius * math.cos(theta)
                # torch fuses sample·std + mean: one rounding of the exact value.
                values.append(float(Fraction(sample) * std_exact + mean_exact))
            return np.array(values, dtype=np.float64)

    def normal(self, count: int, mean: float = 0.0, std: float = 1.0, dtype=np.float32) -> np.ndarray:
        """``torch.empty(count, dtype).normal_(mean, std)`` (contiguous) after the same draws.

        Bit for bit in float32 and float64; other float dtypes take the float32 values, cast
        (torch computes them in their own arithmetic, which is not reproduced).
        """
        with self._lock:
            count, dtype = int(count), np.dtype(dtype)
            if count < 16:
                return self.normal_scalar(count, mean, std).astype(dtype)
            values = np.empty(count, draw_dtype(dtype))
            self.fill_normal(values, mean, std)
            return values.astype(dtype, copy=False)

    # -- in place, a chunk at a time ----------------------------------------------------------------
    _CHUNK = 1 << 20

    def fill_uniform(self, array: np.ndarray, low: float, high: float) -> None:
        """``uniform`` into the float32/float64 ``array`` in C order of its shape (whatever its
        memory layout), a block of rows at a time: the values of one call, with one block
        (≤ 4 MiB or one row) of extra memory instead of the array's size."""
        with self._lock:
            if array.ndim <= 1 or array.flags.c_contiguous:
                flat = array.reshape(-1)
                for start in range(0, flat.size, self._CHUNK):
                    part = flat[start:start + self._CHUNK]
                    part[...] = self.uniform(part.size, low, high, array.dtype)
                return
            row = math.prod(array.shape[1:])
            block = max(1, self._CHUNK // max(row, 1))
            for start in range(0, array.shape[0], block):
                part = array[start:start + block]
                part[...] = self.uniform(part.size, low, high, array.dtype).reshape(part.shape)

    def fill_normal(self, flat: np.ndarray, mean: float, std: float) -> None:
        """``normal`` into the contiguous 1-D float32/float64 ``flat``: the uniforms are drawn into
        it and turned into normals in place, as torch does (no array-sized temporary)."""
        with self._lock:
            if flat.size < 16:
                flat[...] = self.normal_scalar(flat.size, mean, std)
                return
            self.fill_uniform(flat, 0.0, 1.0)
            box_muller(flat, mean, std)
            if flat.size % 16:
                flat[-16:] = self.normal(16, mean, std, flat.dtype)

    # -- integers ------------------------------------------------------------------------------
    def integers(self, low: int, high: int, count: int) -> np.ndarray:
        """``torch.randint(low, high, (count,))`` (int64) after the same draws."""
        with self._lock:
            span = int(high) - int(low)
            if span <= 0:
                raise ValueError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
            if span >= 2 ** 32:
                return (self.random64(count) % np.uint64(span)).astype(np.int64) + np.int64(low)
            return (self.random32(count).astype(np.int64) % span) + np.int64(low)

    def randperm(self, n: int) -> np.ndarray:
        """``torch.randperm(n)`` (int64) after the same draws, bit for bit."""
        with self._lock:
            n = int(n)
            if n >= RANDPERM_LIMIT:
                raise NotImplementedError(f"randperm({n}): torch uses another algorithm from n = "
                                          f"{RANDPERM_LIMIT}, which linea does not reproduce")
            order = np.arange(n, dtype=np.int64)
            fisher_yates(order, self.random32(max(n - 1, 0)))
            return order

    # -- state ---------------------------------------------------------------------------------
    def get_state(self) -> bytes:
        """The bytes of ``torch.get_rng_state()`` for this stream's position."""
        with self._lock:
            state = self._bits.state["state"]
            position = int(state["pos"])
            left, following = (1, 0) if self._fresh else (_WORDS + 1 - position, position)
            cached = self._cached_normal
            float_cached = self._cached_float_normal
            return b"".join([
                _HEADER.pack(self._seed & (2 ** 64 - 1), left, 1, following),
                np.asarray(state["key"], dtype="<u8").tobytes(),
                _DOUBLE_CACHE.pack(0.0, 0.0 if cached is None else cached, 0.0, int(cached is not None)),
                b"\0" * 4,
                _FLOAT_CACHE.pack(0.0 if float_cached is None else float_cached, float_cached is not None),
                b"\0" * 3,
            ])

    def set_state(self, data: bytes) -> None:
        """Move to the position ``data`` (bytes of ``torch.get_rng_state()``) describes.

        Raises ValueError, changing nothing, for anything else.
        """
        with self._lock:
            data = bytes(data)
            if len(data) != STATE_BYTES:
                raise ValueError(f"a generator state is {STATE_BYTES} bytes (torch.get_rng_state()), got {len(data)}")
            seed, left, seeded, following = _HEADER.unpack_from(data, 0)
            words = np.frombuffer(data, dtype="<u8", count=_WORDS, offset=_HEADER.size)
            if not 1 <= left <= _WORDS or seeded not in (0, 1) or following > _WORDS or words.max() >= 2 ** 32:
                raise ValueError(f"not an mt19937 state: left={left}, seeded={seeded}, next={following}, "
                                 f"largest word {int(words.max())} (words are 32-bit)")
            _, normal_y, _, normal_valid = _DOUBLE_CACHE.unpack_from(data, _DOUBLE_AT)
            float_value, float_valid = _FLOAT_CACHE.unpack_from(data, _FLOAT_AT)
            self._bits.state = {"bit_generator": "MT19937",
                                "state": {"key": words.astype(np.uint32), "pos": _WORDS + 1 - left}}
            self._seed, self._fresh = seed, following == 0 and left == 1
            self._cached_normal = normal_y if normal_valid else None
            self._cached_float_normal = float_value if float_valid else None

