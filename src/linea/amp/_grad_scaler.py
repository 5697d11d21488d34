"""``GradScaler``: loss scaling for float16 training, with PyTorch's rules and defaults.

``scaler.scale(loss).backward()`` multiplies the loss by ``scale`` so small float16
gradients do not flush to zero; ``scaler.step(optimizer)`` divides the gradients by it
(``unscale_``) and runs the step only if every gradient is finite; ``scaler.update()``
then halves the scale after a step with inf/NaN gradients (``backoff_factor``) or
doubles it after ``growth_interval`` clean steps in a row (``growth_factor``).
The scale is a float32 number, updated in float32 as PyTorch's ``_amp_update_scale_``.
"""
from __future__ import annotations

from linea.backend import xp as np

__all__ = ["GradScaler"]

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class GradScaler:
    def __init__(self, device: str = "cpu", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        if device != "cpu":
            raise ValueError(f"linea's GradScaler runs on device 'cpu', got {device!r}")
        if not growth_factor > 1.0:
            raise ValueError(f"growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"backoff_factor must be in (0, 1), got {backoff_factor}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval < 1:
            raise ValueError(f"growth_interval must be a positive int, got {growth_interval!r}")
        self._enabled = bool(enabled)
        self._scale = np.float32(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval, self._growth_tracker = growth_interval, 0
        self._per_optimizer: dict = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return float(self._scale) if self._enabled else 1.0

    def scale(self, outputs):
        """``outputs`` (a tensor, or lists/tuples of them) multiplied by the current scale."""
        if not self._enabled:
            return outputs
        from linea._tensor import Tensor

        if isinstance(outputs, Tensor):
            return outputs * Tensor._make(np.asarray(self._scale, outputs._data.dtype)
                                          if outputs.dtype.is_floating_point else np.asarray(self._scale))
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(item) for item in outputs)
        raise TypeError(f"GradScaler.scale expects a tensor or a list/tuple of tensors, got "
                        f"{type(outputs).__name__}")

    def _state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": False})

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of ``optimizer``'s parameters by the scale, noting inf/NaN."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] is _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inverse = np.float32(1.0 / np.float64(self._scale))  # PyTorch: reciprocal in double
        found = False
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                grad = parameter.grad._data
                if grad.dtype == np.float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")  # PyTorch's error:
                    # the master weights that the optimizer steps must be float32
                if not np.isfinite(grad).all():
                    found = True
                grad *= inverse.astype(grad.dtype)
        state["found_inf"], state["stage"] = found, _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale if not done yet, then ``optimizer.step()`` unless a gradient was inf/NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        state = self._state(optimizer)
        if state["stage"] is _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is _READY:
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale=None) -> None:
        """Back off after inf/NaN gradients, grow after ``growth_interval`` clean steps."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = np.float32(float(new_scale))
        else:
            if not self._per_optimizer:
                raise AssertionError("No inf checks were recorded prior to update.")
            if any(state["found_inf"] for state in self._per_optimizer.values()):
                self._scale = np.float32(self._scale * np.float32(self._backoff_factor))
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = np.float32(self._scale * np.float32(self._growth_factor))
                    if np.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": float(self._scale), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._scale = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
