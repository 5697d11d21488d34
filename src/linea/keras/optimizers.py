"""Keras 3's optimizers and update rules, on ``linea.optim.Optimizer``.

Constructed without parameters, as in Keras; a model binds its weights at the
first step. Rules follow Keras 3 (its torch backend) step for step: Adam adds
epsilon outside the bias correction, ``"sgd"`` means lr = 0.01, and
``weight_decay`` scales each weight by (1 − lr·weight_decay) before the update.
"""
from __future__ import annotations

import math

from linea.backend import xp
from linea.keras import schedules
from linea.optim._optimizer import Optimizer as _EngineOptimizer
from linea.optim._optimizer import state_array

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "LossScaleOptimizer", "get"]


def apply_pairs(optimizer, grads_and_vars) -> None:
    """Keras's ``apply_gradients``: build on first use, set each variable's gradient, step."""
    pairs = list(grads_and_vars)
    if not optimizer.built:
        optimizer.build([variable for _, variable in pairs])
    for gradient, variable in pairs:
        variable.grad = gradient if gradient is None or hasattr(gradient, "_data") else \
            type(variable)._make(xp.asarray(gradient))
    optimizer.step()


class Optimizer(_EngineOptimizer):
    """Base Keras optimizer: hyper-parameters now, variables at ``build(variables)``."""

    def __init__(self, learning_rate=0.001, weight_decay=None, name=None,
                 **hyperparameters) -> None:
        self.iterations = 0
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.name = name or type(self).__name__.lower()
        self.hyperparameters = hyperparameters
        self.built = False
        self.param_groups, self.state, self.defaults = [], {}, {}

    @property
    def learning_rate(self) -> float:
        """The rate of the next update: a number, or a schedule evaluated at ``iterations``."""
        if self._schedule is not None:
            return self._schedule(self.iterations)
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if isinstance(value, schedules.LearningRateSchedule):
            self._schedule, self._learning_rate = value, None
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"learning_rate must be a non-negative number or a "
                             f"linea.keras.optimizers.schedules schedule, got {value!r}")
        self._schedule, self._learning_rate = None, float(value)

    def build(self, variables) -> None:
        _EngineOptimizer.__init__(self, list(variables), dict(lr=self.learning_rate,
                                                               **self.hyperparameters))
        self.built = True

    def apply_gradients(self, grads_and_vars) -> None:
        """Keras's API: apply (gradient, variable) pairs."""
        apply_pairs(self, grads_and_vars)

    def step(self, closure=None):
        group = self.param_groups[0]
        group["lr"] = learning_rate = self.learning_rate
        if self.weight_decay:
            decay = 1 - self.weight_decay * learning_rate
            for parameter in group["params"]:
                if parameter.grad is not None:
                    parameter._data *= decay
        loss = super().step(closure)
        self.iterations += 1
        return loss

    def get_config(self) -> dict:
        rate = schedules.serialize(self._schedule) if self._schedule is not None else self._learning_rate
        return {"name": self.name, "learning_rate": rate,
                "weight_decay": self.weight_decay, **self.hyperparameters}


class SGD(Optimizer):
    """m ← momentum·m − lr·g;  w ← w + m (Nesterov: w ← w + momentum·m − lr·g)."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay=None, name="SGD") -> None:
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1], got {momentum}")
        super().__init__(learning_rate, weight_decay, name, momentum=momentum, nesterov=nesterov)

    def _update(self, group, param, grad, state) -> None:
        lr, momentum = group["lr"], group["momentum"]
        if momentum:
            buffer = state_array(state, "momentum", param)
            buffer *= momentum
            buffer += -lr * grad
            if group["nesterov"]:
                param += -lr * grad
                param += momentum * buffer
            else:
                param += buffer
        else:
            param += -lr * grad


class Adam(Optimizer):
    """Keras's Adam: α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ); w ← w − α·m / (√v + epsilon); epsilon = 1e-7."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, weight_decay=None,
                 name="adam") -> None:
        super().__init__(learning_rate, weight_decay, name, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad)

    def _update(self, group, param, grad, state) -> None:
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        step = self.iterations + 1
        alpha = group["lr"] * math.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
        m = state_array(state, "momentum", param)
        v = state_array(state, "velocity", param)
        m *= beta_1
        m += (1 - beta_1) * grad
        v *= beta_2
        v += (1 - beta_2) * (grad * grad)
        if group["amsgrad"]:
            v_hat = state_array(state, "velocity_hat", param)
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        param -= (m * alpha) / (xp.sqrt(v) + group["epsilon"])


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004, as in Keras)."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, name="adamw") -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, name)


class RMSprop(Optimizer):
    """v ← ρv + (1−ρ)g²;  w ← w − lr·g / √(v + epsilon) (with optional momentum, centering)."""

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, weight_decay=None,
                 name="rmsprop") -> None:
        super().__init__(learning_rate, weight_decay, name, rho=rho, momentum=momentum,
                         epsilon=epsilon, centered=centered)

    def _update(self, group, param, grad, state) -> None:
        rho = group["rho"]
        velocity = state_array(state, "velocity", param)
        velocity *= rho
        velocity += (1 - rho) * (grad * grad)
        denominator = velocity + group["epsilon"]
        if group["centered"]:
            average = state_array(state, "average_gradient", param)
            average *= rho
            average += (1 - rho) * grad
            denominator -= average * average
        increment = (grad * group["lr"]) / xp.sqrt(denominator)
        if group["momentum"] > 0:
            momentum = state_array(state, "momentum", param)
            momentum *= group["momentum"]
            momentum += increment
            param -= momentum
        else:
            param -= increment


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def get(identifier) -> Optimizer:
    """An optimizer from a Keras name ("adam", "sgd", "rmsprop", "adamw") or an instance."""
    if isinstance(identifier, (Optimizer, LossScaleOptimizer)):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)} "
                             "or a linea.keras.optimizers object")
        return cls()
    if isinstance(identifier, _EngineOptimizer):
        raise TypeError(
            f"compile() takes a Keras-flavour optimizer (linea.keras.optimizers.{type(identifier).__name__} "
            "or a name such as 'adam'); a linea.optim optimizer already holds parameters and uses "
            "PyTorch's update rules"
        )
    raise TypeError(f"cannot interpret {identifier!r} as an optimizer")


class LossScaleOptimizer:
    """Keras 3's dynamic loss scaling around another optimizer (for "mixed_float16").

    ``scale_loss(loss)`` multiplies by ``dynamic_scale`` (2¹⁵ at first); a step with any
    inf/NaN gradient is skipped and halves the scale; otherwise the gradients are
    divided by the scale, the inner optimizer steps, and after ``dynamic_growth_steps``
    finite steps in a row the scale doubles.
    """

    def __init__(self, inner_optimizer, initial_scale: float = 2.0 ** 15,
                 dynamic_growth_steps: int = 2000, name=None, **kwargs) -> None:
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer no longer supports `dynamic=False`. Instead, simply "
                             "set `loss_scale_factor` directly on the `inner_optimizer`.")
        if kwargs:
            raise ValueError(f"LossScaleOptimizer does not support arguments: "
                             f"`{'`, `'.join(kwargs)}`.")
        if not isinstance(inner_optimizer, Optimizer):
            raise TypeError(f"LossScaleOptimizer wraps a linea.keras optimizer, got "
                            f"{type(inner_optimizer).__name__}")
        self.inner_optimizer = inner_optimizer
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        self.name = name or "loss_scale_optimizer"
        self.dynamic_scale = float(xp.float32(self.initial_scale))
        self.step_counter = 0

    @property
    def built(self) -> bool:
        return self.inner_optimizer.built

    def build(self, variables) -> None:
        self.inner_optimizer.build(variables)

    @property
    def iterations(self) -> int:
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        self.inner_optimizer.learning_rate = value

    @property
    def param_groups(self):
        return self.inner_optimizer.param_groups

    def scale_loss(self, loss):
        return loss * self.dynamic_scale

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner_optimizer.zero_grad(set_to_none)

    def step(self, closure=None):
        """Unscale and apply the gradients now on the parameters, or skip a non-finite step."""
        parameters = [p for group in self.inner_optimizer.param_groups for p in group["params"]]
        grads = [p.grad for p in parameters if p.grad is not None]
        if not all(bool(xp.isfinite(g._data).all()) for g in grads):
            self.step_counter = 0
            self.dynamic_scale = float(xp.float32(self.dynamic_scale * 0.5))
            return None
        scale = xp.float32(self.dynamic_scale)
        for g in grads:
            g._data = g._data / scale.astype(g._data.dtype)
        self.inner_optimizer.step()
        if self.step_counter == self.dynamic_growth_steps - 1:
            self.step_counter = 0
            self.dynamic_scale = float(xp.float32(self.dynamic_scale * 2.0))
        else:
            self.step_counter += 1
        return None

    def apply_gradients(self, grads_and_vars) -> None:
        apply_pairs(self, grads_and_vars)

    def state_dict(self) -> dict:
        return {"inner": self.inner_optimizer.state_dict(), "dynamic_scale": self.dynamic_scale,
                "step_counter": self.step_counter}

    def get_config(self) -> dict:
        return {"name": self.name, "inner_optimizer": {"class_name": type(self.inner_optimizer).__name__,
                                                       "config": self.inner_optimizer.get_config()},
                "initial_scale": self.initial_scale, "dynamic_growth_steps": self.dynamic_growth_steps}
