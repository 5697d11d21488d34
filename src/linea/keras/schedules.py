"""Keras 3's learning-rate schedules: ``lr = schedule(step)``, step = updates done so far.

A Keras-flavour optimizer given one as ``learning_rate`` evaluates it at its
``iterations`` before each update, as Keras does (the first update uses
``schedule(0)``). Each formula is Keras's, in float32 as Keras computes it:

- ExponentialDecay:     lr₀ · rate^(step / decay_steps)            (⌊·⌋ if staircase)
- InverseTimeDecay:     lr₀ / (1 + rate · step / decay_steps)      (⌊·⌋ if staircase)
- PiecewiseConstantDecay: values[i] for boundaries[i-1] < step ≤ boundaries[i]
- PolynomialDecay:      (lr₀ − end) · (1 − step / decay_steps)^power + end, the step
                        capped at decay_steps (or decay_steps stretched to the next
                        multiple past the step if cycle)
- CosineDecay:          optional linear warmup from lr₀ to warmup_target over
                        warmup_steps, then peak · ((1 − α) · ½(1 + cos(π·t/decay_steps)) + α)
"""
from __future__ import annotations

import math

from linea.backend import xp as np

__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "CosineDecay", "serialize", "deserialize"]

_F32 = np.float32


class LearningRateSchedule:
    """Base class: ``schedule(step)`` gives the learning rate for the update at ``step``."""

    def __call__(self, step) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def _positive(value, what: str, schedule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{schedule}: {what} must be a positive number, got {value!r}")
    return value


def _number(value, what: str, schedule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{schedule}: {what} must be a finite number, got {value!r}")
    return value


class _StepDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: lr₀, decay_steps, decay_rate and the
    progress p = step / decay_steps (⌊p⌋ if staircase); each subclass applies its formula."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        name = name or type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", name)
        self.decay_steps = _positive(decay_steps, "decay_steps", name)
        self.decay_rate = _number(decay_rate, "decay_rate", name)
        self.staircase, self.name = bool(staircase), name

    def _progress(self, step):
        p = _F32(step) / _F32(self.decay_steps)
        return np.floor(p) if self.staircase else p

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    def __call__(self, step) -> float:
        return float(_F32(self.initial_learning_rate) * np.power(_F32(self.decay_rate),
                                                                 self._progress(step)))


class InverseTimeDecay(_StepDecay):
    def __call__(self, step) -> float:
        return float(_F32(self.initial_learning_rate) /
                     (_F32(1) + _F32(self.decay_rate) * self._progress(step)))


class PiecewiseConstantDecay(LearningRateSchedule):
    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"{name}: values must have one more element than boundaries, got "
                             f"{len(values)} values for {len(boundaries)} boundaries")
        for value in boundaries + values:
            _number(value, "every boundary and value", name)
        if boundaries != sorted(boundaries):
            raise ValueError(f"{name}: boundaries must be increasing, got {boundaries}")
        self.boundaries, self.values, self.name = boundaries, values, name

    def __call__(self, step) -> float:
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return float(_F32(value))
        return float(_F32(self.values[-1]))

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", name)
        self.decay_steps = _positive(decay_steps, "decay_steps", name)
        self.end_learning_rate = _number(end_learning_rate, "end_learning_rate", name)
        self.power = _number(power, "power", name)
        self.cycle, self.name = bool(cycle), name

    def __call__(self, step) -> float:
        step, decay_steps = _F32(step), _F32(self.decay_steps)
        if self.cycle:
            multiplier = _F32(1) if step == 0 else np.ceil(step / decay_steps)
            decay_steps = decay_steps * multiplier
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        start, end = _F32(self.initial_learning_rate), _F32(self.end_learning_rate)
        return float((start - end) * np.power(_F32(1) - p, _F32(self.power)) + end)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power,
                "cycle": self.cycle, "name": self.name}


class CosineDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", name)
        self.decay_steps = _positive(decay_steps, "decay_steps", name)
        self.alpha = _number(alpha, "alpha", name)
        self.warmup_target = None if warmup_target is None else _number(warmup_target,
                                                                        "warmup_target", name)
        self.warmup_steps = _number(warmup_steps, "warmup_steps", name)
        self.name = name

    def _decay(self, step, peak) -> float:
        fraction = step / _F32(self.decay_steps)
        cosine = _F32(0.5) * (_F32(1) + np.cos(_F32(math.pi) * fraction))
        return float(_F32(peak) * ((_F32(1) - _F32(self.alpha)) * cosine + _F32(self.alpha)))

    def __call__(self, step) -> float:
        step = _F32(step)
        if self.warmup_target is None:
            return self._decay(min(step, _F32(self.decay_steps)), self.initial_learning_rate)
        step = min(step, _F32(self.decay_steps + self.warmup_steps))
        if step < self.warmup_steps:
            fraction = step / _F32(self.warmup_steps)
            delta = _F32(self.warmup_target) - _F32(self.initial_learning_rate)
            return float(delta * fraction + _F32(self.initial_learning_rate))
        return self._decay(step - _F32(self.warmup_steps), self.warmup_target)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


_BY_NAME = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay,
                                          PolynomialDecay, CosineDecay)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """Keras's serialized form: {"module", "class_name", "config", "registered_name"}."""
    return {"module": "keras.optimizers.schedules", "class_name": type(schedule).__name__,
            "config": schedule.get_config(), "registered_name": None}


def deserialize(entry) -> LearningRateSchedule:
    """A schedule from its serialized form; ValueError naming the class if linea has none."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise ValueError(f"a learning-rate schedule entry must be a JSON object with a config, "
                         f"got {str(entry)[:200]}")
    name = entry.get("class_name")
    cls = _BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"learning-rate schedule {name!r} is not one linea knows "
                         f"({', '.join(sorted(_BY_NAME))})")
    config = entry.get("config", {})
    try:
        return cls(**config)
    except TypeError as error:
        raise ValueError(f"{name}: the schedule's config {config} does not fit: {error}") from None
