"""RMSprop, as PyTorch computes it."""
from __future__ import annotations

from linea.backend import namespace_of
from linea.optim._optimizer import Optimizer, advance_step, state_array

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """PyTorch's RMSprop, step for step.

    g ← ∇ + weight_decay·p;  s ← α·s + (1 − α)·g²;  with ``centered``: ḡ ← ḡ + (1 − α)(g − ḡ),
    d ← √(s − ḡ²) + eps, else d ← √s + eps;  with momentum: b ← momentum·b + g/d, p ← p − lr·b,
    else p ← p − lr·g/d.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        for name, value in (("learning rate", lr), ("epsilon value", eps), ("momentum value", momentum),
                            ("weight_decay value", weight_decay), ("alpha value", alpha)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {name}: {value}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update(self, group, param, grad, state) -> None:
        space = namespace_of(param)
        alpha, eps, lr, momentum = group["alpha"], group["eps"], group["lr"], group["momentum"]
        if group["maximize"]:
            grad = -grad
        advance_step(state)
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        square_avg = state_array(state, "square_avg", param)
        square_avg *= alpha
        square_avg += (grad * grad) * (1 - alpha)
        if group["centered"]:
            grad_avg = state_array(state, "grad_avg", param)
            grad_avg += (grad - grad_avg) * (1 - alpha)  # torch's lerp for weights below 0.5
            average = space.sqrt(square_avg - grad_avg * grad_avg)
        else:
            average = space.sqrt(square_avg)
        average += eps
        if momentum > 0:
            buffer = state_array(state, "momentum_buffer", param)
            buffer *= momentum
            buffer += grad / average
            param += buffer * -lr
        else:
            param += (grad / average) * -lr
