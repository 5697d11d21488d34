"""PyTorch's CPU random stream (mt19937), reproduced bit for bit — the first draws.

The facts (torch 2.13, x86-64 Linux): ``torch.manual_seed(s)`` seeds a standard mt19937
with ``s & 0xffffffff`` (``init_genrand``); a float32 ``uniform_(a, b)`` takes one 32-bit
draw per element, in memory order, and computes ``fma(x, b − a, a)`` in float32 with
``x = (r & 0xFFFFFF) · 2⁻²⁴``; a value that rounds up to ``b`` becomes ``a``. A float64
``uniform_`` takes ``random64()`` = (first draw ≪ 32) | second draw per element,
``x = (random64 & (2⁵³ − 1)) · 2⁻⁵³``, and computes ``x·(b − a) + a`` without fusion
(checked: 0 of 10⁵ values differ from torch's, where a fused form would differ in many).

Here NumPy's ``MT19937`` bit generator produces the 32-bit draws (its state set to the
``init_genrand`` state, which NumPy's legacy ``RandomState(seed)`` computes), and the fused
multiply-add is emulated exactly: the product of a 24-bit x and a float32 span is exact in
float64; the sum is rounded to odd (TwoSum, then one ulp towards the error when the
rounded sum is even), and a round-to-odd float64 rounds to float32 as the single rounding
of the exact value would (53 ≥ 2·24 + 2). No Python loop per element.

``randperm(n)`` is Fisher–Yates: for i < n − 1, swap r[i] with r[i + random() % (n − i)];
the draws and indices are vectorised, the swaps are a Python loop over lists (~17 ms for
n = 60000 here, to become C).

``normal_`` of fewer than 16 elements is torch's scalar path: double Box–Muller on two
float64 uniforms u1, u2 — r = √(−2·log1p(−u2)), θ = 2π·u1, value r·cos θ, with r·sin θ
cached in the stream for the next scalar draw (``math``'s libm calls, as torch's) — then
``fma(value, std, mean)`` in double and a cast to the tensor's dtype. The vectorised path
for 16 and more values (float32 AVX2 polynomials) is not reproduced yet and is refused.

``shuffled_epoch(n)`` is one epoch of ``DataLoader(shuffle=True)`` without a generator.
Not yet the default engine of ``linea.Generator`` (nn.init, rand, Tensor.uniform_,
DataLoader and random_split still draw from NumPy's PCG64): that switch, the vectorised
normal_, randint and ``generator=`` loaders follow in issue 16.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["TorchStream"]


class TorchStream:
    """A torch-compatible CPU stream: ``TorchStream(0).uniform_float32(n, a, b)``."""

    def __init__(self, seed: int) -> None:
        key = np.random.RandomState(int(seed) & 0xFFFFFFFF).get_state()[1]  # init_genrand
        self._bits = np.random.MT19937()
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}
        self._cached_normal = None  # torch's next_double_normal_sample

    def random32(self, count: int) -> np.ndarray:
        """The next ``count`` 32-bit outputs of the mt19937 (torch's ``random()``)."""
        return self._bits.random_raw(int(count)).astype(np.uint32)

    def random64(self, count: int) -> np.ndarray:
        """torch's ``random64()``: (first 32-bit draw ≪ 32) | second, ``count`` times."""
        draws = self.random32(2 * int(count)).astype(np.uint64)
        return (draws[0::2] << np.uint64(32)) | draws[1::2]

    def int64_seed(self) -> int:
        """``int(torch.empty((), dtype=torch.int64).random_().item())``: random64 mod 2⁶³."""
        return int(self.random64(1)[0] % np.uint64(2 ** 63))

    def shuffled_epoch(self, n: int) -> np.ndarray:
        """The order ``DataLoader(dataset_of_n, shuffle=True)`` (generator=None, no workers)
        yields in one epoch, drawing what torch draws from the global stream: the loader
        iterator's base seed, then the sampler's seed for a fresh generator that runs
        ``randperm(n)``."""
        self.int64_seed()  # _BaseDataLoaderIter's base seed (unused without workers)
        return TorchStream(self.int64_seed()).randperm(n)

    def uniform_float32(self, count: int, low: float, high: float) -> np.ndarray:
        """``torch.empty(count).uniform_(low, high)`` after the same draws, bit for bit."""
        low32, high32 = np.float32(low), np.float32(high)
        unit = (self.random32(count) & 0xFFFFFF).astype(np.float64) * 2.0 ** -24
        product = unit * np.float64(high32 - low32)  # exact: 24 × 24 significant bits
        total = product + np.float64(low32)
        virtual = total - product  # TwoSum: error = exact sum − rounded sum
        error = (product - (total - virtual)) + (np.float64(low32) - virtual)
        even = (total.view(np.uint64) & 1) == 0
        towards = np.where(error > 0, np.inf, -np.inf)
        total = np.where((error != 0) & even, np.nextafter(total, towards), total)  # round to odd
        values = total.astype(np.float32)
        values[values == high32] = low32
        return values

    def uniform_float64(self, count: int, low: float, high: float) -> np.ndarray:
        """``torch.empty(count, dtype=torch.float64).uniform_(low, high)``, bit for bit."""
        unit = (self.random64(count) & np.uint64(2 ** 53 - 1)).astype(np.float64) * 2.0 ** -53
        values = unit * (float(high) - float(low)) + float(low)
        values[values == float(high)] = float(low)
        return values

    def randperm(self, n: int) -> np.ndarray:
        """``torch.randperm(n)`` (int64) after the same draws, bit for bit."""
        n = int(n)
        steps = max(n - 1, 0)
        offsets = self.random32(steps).astype(np.int64) % (n - np.arange(steps, dtype=np.int64))
        order = list(range(n))
        for i, j in enumerate((offsets + np.arange(steps, dtype=np.int64)).tolist()):
            order[i], order[j] = order[j], order[i]
        return np.array(order, dtype=np.int64)

    def normal_small(self, count: int, mean: float = 0.0, std: float = 1.0, dtype=np.float64) -> np.ndarray:
        """``torch.empty(count, dtype).normal_(mean, std)`` for count < 16, bit for bit."""
        if not 0 <= int(count) < 16:
            raise NotImplementedError(f"normal_ of {count} values: torch's vectorised path (16 or more "
                                      "contiguous values) is not reproduced yet; fewer than 16 are")
        values = []
        for _ in range(int(count)):
            if self._cached_normal is not None:
                sample, self._cached_normal = self._cached_normal, None
            else:
                u1, u2 = self.uniform_float64(2, 0.0, 1.0).tolist()
                radius = math.sqrt(-2.0 * math.log1p(-u2))
                theta = 2.0 * math.pi * u1
                self._cached_normal = radius * math.sin(theta)
                sample = radius * math.cos(theta)
            # torch fuses sample·std + mean: one rounding of the exact value (Fraction → float is
            # correctly rounded); the unfused form differs in about a quarter of the values.
            values.append(float(Fraction(sample) * Fraction(std) + Fraction(mean)))
        return np.array(values, dtype=np.float64).astype(dtype)
