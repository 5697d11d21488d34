"""Keras initializers: factories called with a shape, over ``linea.nn.init``'s one core.

Fans follow Keras's layout: a kernel (in, units) has fan_in = in and
fan_out = units; a conv kernel (*kernel, in, out) multiplies both by the
receptive field. The variance-scaling draw itself is ``nn.init.variance_scaling_``.
"""
from __future__ import annotations

import math

from linea.backend import xp
from linea._random import Generator
from linea._tensor import Tensor
from linea.keras._registry import lookup
from linea.keras._registry import serialize as serialize_config
from linea.keras.config import resolve_dtype
from linea.nn import init

__all__ = ["Initializer", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeNormal",
           "HeUniform", "LecunNormal", "LecunUniform", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "Zeros", "Ones", "Constant", "Orthogonal", "Identity", "get",
           "serialize", "compute_fans"]

def compute_fans(shape) -> tuple[float, float]:
    """Keras's (fan_in, fan_out) for a weight laid out (…, in, out)."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive_field = math.prod(shape[:-2])
    return float(shape[-2] * receptive_field), float(shape[-1] * receptive_field)

class Initializer:
    """Base class: ``initializer(shape, dtype)`` returns a new tensor of that shape."""

    def __call__(self, shape, dtype=None) -> Tensor:
        tensor = Tensor._make(xp.empty(tuple(shape), resolve_dtype(dtype).numpy))
        self.fill_(tensor)
        return tensor

    def fill_(self, tensor: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        # Keras adds keys linea has no use for (input_axes, output_axes): keep what __init__ takes.
        import inspect

        accepted = inspect.signature(cls.__init__).parameters
        return cls(**{k: v for k, v in config.items() if k in accepted})

    def _generator(self):
        seed = getattr(self, "seed", None)
        return None if seed is None else Generator().manual_seed(int(seed))

class VarianceScaling(Initializer):
    """Draws with variance scale / fan, fan from ``mode`` ("fan_in", "fan_out", "fan_avg")."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed=None) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise ValueError(f"distribution must be 'uniform', 'truncated_normal' or "
                             f"'untruncated_normal', got {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def fill_(self, tensor: Tensor) -> Tensor:
        fan_in, fan_out = compute_fans(tensor.shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return init.variance_scaling_(tensor, self.scale, fan, self.distribution, self._generator())

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed, "input_axes": None, "output_axes": None}

class _Preset(VarianceScaling):
    """A VarianceScaling with fixed settings; only the seed is configurable."""

    preset: tuple = ()

    def __init__(self, seed=None) -> None:
        super().__init__(*self.preset, seed=seed)

    def get_config(self) -> dict:
        return {"seed": self.seed, "input_axes": None, "output_axes": None}  # as Keras 3.15 writes

class GlorotUniform(_Preset):
    """U(±√(6 / (fan_in + fan_out)))."""
    preset = (1.0, "fan_avg", "uniform")

class GlorotNormal(_Preset):
    """Truncated normal with variance 1 / fan_avg."""
    preset = (1.0, "fan_avg", "truncated_normal")

class HeNormal(_Preset):
    """Truncated normal with variance 2 / fan_in."""
    preset = (2.0, "fan_in", "truncated_normal")

class HeUniform(_Preset):
    """U(±√(6 / fan_in))."""
    preset = (2.0, "fan_in", "uniform")

class LecunNormal(_Preset):
    """Truncated normal with variance 1 / fan_in."""
    preset = (1.0, "fan_in", "truncated_normal")

class LecunUniform(_Preset):
    """U(±√(3 / fan_in))."""
    preset = (1.0, "fan_in", "uniform")

class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed=None) -> None:
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def fill_(self, tensor: Tensor) -> Tensor:
        return init.normal_(tensor, self.mean, self.stddev, self._generator())

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}

class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed=None) -> None:
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def fill_(self, tensor: Tensor) -> Tensor:
        return init.uniform_(tensor, self.minval, self.maxval, self._generator())

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}

class TruncatedNormal(Initializer):
    """N(mean, stddev²) cut at two standard deviations from the mean."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed=None) -> None:
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def fill_(self, tensor: Tensor) -> Tensor:
        return init.trunc_normal_(tensor, self.mean, self.stddev, self.mean - 2 * self.stddev,
                                  self.mean + 2 * self.stddev, self._generator())

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}

class Constant(Initializer):
    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def fill_(self, tensor: Tensor) -> Tensor:
        return init.constant_(tensor, self.value)

    def get_config(self) -> dict:
        return {"value": self.value}

class Zeros(Constant):
    def __init__(self) -> None:
        super().__init__(0.0)

    def get_config(self) -> dict:
        return {}

class Ones(Constant):
    def __init__(self) -> None:
        super().__init__(1.0)

    def get_config(self) -> dict:
        return {}

class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix over the last axis, times ``gain``."""

    def __init__(self, gain: float = 1.0, seed=None) -> None:
        self.gain, self.seed = gain, seed

    def fill_(self, tensor: Tensor) -> Tensor:
        if tensor.ndim < 2:
            raise ValueError(f"Orthogonal needs a shape of at least 2 dimensions, got {tensor.shape}")
        # Keras orthogonalises (prod(shape[:-1]), shape[-1]); nn.init works on (shape[0], rest),
        # so fill the transposed layout and transpose back.
        columns = tensor.shape[-1]
        flat = Tensor._make(xp.empty((columns, tensor.numel() // max(columns, 1)), tensor._data.dtype))
        init.orthogonal_(flat, self.gain, self._generator())
        tensor._data[...] = flat._data.T.reshape(tensor.shape)
        return tensor

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}

class Identity(Initializer):
    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def fill_(self, tensor: Tensor) -> Tensor:
        init.eye_(tensor)
        tensor._data *= self.gain
        return tensor

    def get_config(self) -> dict:
        return {"gain": self.gain}

_CLASSES = {cls.__name__: cls for cls in (
    VarianceScaling, GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform,
    RandomNormal, RandomUniform, TruncatedNormal, Zeros, Ones, Constant, Orthogonal, Identity)}
_NAMES = {"glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
          "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
          "random_normal": RandomNormal, "random_uniform": RandomUniform,
          "truncated_normal": TruncatedNormal, "zeros": Zeros, "ones": Ones, "constant": Constant,
          "orthogonal": Orthogonal, "identity": Identity, "variance_scaling": VarianceScaling}

def get(identifier) -> Initializer:
    """An initializer from a Keras name ("glorot_uniform"), a config dict, an instance or a class."""
    found = lookup(identifier, "initializer", Initializer, _NAMES, _CLASSES)
    if found is None:
        raise TypeError("an initializer is required, got None")
    return found if isinstance(found, Initializer) else _CallableInitializer(found)

class _CallableInitializer(Initializer):
    def __init__(self, function) -> None:
        self.function = function

    def fill_(self, tensor: Tensor) -> Tensor:
        value = self.function(tensor.shape, dtype=tensor._data.dtype)
        tensor._data[...] = getattr(value, "_data", value)
        return tensor

def serialize(initializer: Initializer) -> dict:
    """Keras's config form: {"module", "class_name", "config", "registered_name"}."""
    return serialize_config(initializer, "keras.initializers")
