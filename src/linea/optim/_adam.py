"""Adam and AdamW, as PyTorch computes them (bias correction inside the step size)."""
from __future__ import annotations

import math

from linea.backend import namespace_of, xp
from linea.backend._adam import adam_step
from linea.optim._optimizer import Optimizer, advance_step, state_array

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """PyTorch's Adam, step for step.

    m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
    p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + eps).
    ``weight_decay`` adds weight_decay·p to g (L2); AdamW decays p directly.
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False) -> None:
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Invalid beta parameters: {betas}; each must be in [0, 1)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _update(self, group, param, grad, state) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay = group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        step = advance_step(state)
        if weight_decay:
            if self._decoupled:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg = state_array(state, "exp_avg", param)
        exp_avg_sq = state_array(state, "exp_avg_sq", param)
        step_size = lr / (1 - beta1 ** step)
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
        max_exp_avg_sq = state_array(state, "max_exp_avg_sq", param) if group["amsgrad"] else None
        if adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, 1 - beta1, beta2,
                     bias_correction2_sqrt, eps, step_size):
            return  # the C kernel: the operations below, in one pass, bit-identical
        if type(param) is not xp.ndarray:  # another array library: the same arithmetic, no out=
            space = namespace_of(param)
            exp_avg += (grad - exp_avg) * (1 - beta1)
            exp_avg_sq *= beta2
            exp_avg_sq += (grad * (1 - beta2)) * grad
            second = exp_avg_sq
            if max_exp_avg_sq is not None:
                max_exp_avg_sq[...] = space.maximum(max_exp_avg_sq, exp_avg_sq)
                second = max_exp_avg_sq
            param += (exp_avg / (space.sqrt(second) / bias_correction2_sqrt + eps)) * -step_size
            return
        # One scratch array for every temporary: the arithmetic, in PyTorch's order, is
        # unchanged; the step's peak memory drops by several parameter-sized arrays.
        scratch = xp.subtract(grad, exp_avg)
        scratch *= 1 - beta1
        exp_avg += scratch  # PyTorch's lerp for weights below 0.5: m + w·(g − m)
        exp_avg_sq *= beta2
        xp.multiply(grad, 1 - beta2, out=scratch)
        scratch *= grad
        exp_avg_sq += scratch
        if max_exp_avg_sq is not None:
            xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            xp.sqrt(max_exp_avg_sq, out=scratch)
        else:
            xp.sqrt(exp_avg_sq, out=scratch)
        scratch /= bias_correction2_sqrt
        scratch += eps
        xp.divide(exp_avg, scratch, out=scratch)
        scratch *= -step_size
        param += scratch


class AdamW(Adam):
    """Adam with decoupled weight decay: p ← p·(1 − lr·weight_decay) before the Adam step."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
