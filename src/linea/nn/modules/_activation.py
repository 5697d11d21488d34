"""Activation modules: each a thin holder of hyper-parameters over ``nn.functional``."""
from __future__ import annotations

from linea._ops_math import exp as _exp
from linea._ops_math import relu as _relu
from linea._tensor import Tensor
from linea.nn import functional as F
from linea.nn.modules._module import Module

__all__ = ["ReLU", "LeakyReLU", "GELU", "Tanh", "Sigmoid", "SiLU", "Softplus", "Softmax",
           "LogSoftmax", "ELU", "SELU", "CELU", "ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish",
           "Softsign", "LogSigmoid", "Mish", "Tanhshrink", "Softshrink", "Hardshrink", "Exp"]


class ReLU(Module):
    """max(x, 0), elementwise. Shape: (*) → (*)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        if input.__class__ is Tensor:  # F.relu without its type check: one frame less
            return _relu(input)
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x if x > 0 else negative_slope·x. Shape: (*) → (*)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x·Φ(x), or its tanh approximation with ``approximate='tanh'``. Shape: (*) → (*)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate='{self.approximate}'"


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    """1 / (1 + e^-x), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class SiLU(Module):
    """x·sigmoid(x), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input)


class Softplus(Module):
    """log(1 + e^(βx)) / β, linear above ``threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """exp(x) / Σ exp(x) along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """x - log Σ exp(x) along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class _Pointwise(Module):
    """An activation without settings: ``forward`` is one ``nn.functional`` call."""

    function = None

    def forward(self, input: Tensor) -> Tensor:
        return type(self).function(input)


class _PointwiseInplace(_Pointwise):
    """``_Pointwise`` with PyTorch's ``inplace`` flag (kept for its signature and repr)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class SELU(_PointwiseInplace):
    """scale·elu(x, alpha), alpha ≈ 1.6733, scale ≈ 1.0507. Shape: (*) → (*)."""

    function = staticmethod(F.selu)


class ReLU6(_PointwiseInplace):
    """min(max(x, 0), 6). Shape: (*) → (*)."""

    function = staticmethod(F.relu6)


class Hardsigmoid(_PointwiseInplace):
    """relu6(x + 3) / 6 (Keras 3's ``hard_sigmoid``). Shape: (*) → (*)."""

    function = staticmethod(F.hardsigmoid)


class Hardswish(_PointwiseInplace):
    """x·relu6(x + 3) / 6 (Keras's ``hard_silu``). Shape: (*) → (*)."""

    function = staticmethod(F.hardswish)


class Mish(_PointwiseInplace):
    """x·tanh(softplus(x)). Shape: (*) → (*)."""

    function = staticmethod(F.mish)


class Softsign(_Pointwise):
    """x / (1 + |x|). Shape: (*) → (*)."""

    function = staticmethod(F.softsign)


class LogSigmoid(_Pointwise):
    """log(sigmoid(x)). Shape: (*) → (*)."""

    function = staticmethod(F.logsigmoid)


class Tanhshrink(_Pointwise):
    """x − tanh(x). Shape: (*) → (*)."""

    function = staticmethod(F.tanhshrink)


class Exp(_Pointwise):
    """eˣ — Keras's ``exponential`` activation as a module (PyTorch has ``torch.exp`` but no
    module for it), so a Dense with it converts to a Sequential. Shape: (*) → (*)."""

    function = staticmethod(_exp)


class ELU(Module):
    """x if x > 0 else alpha·(eˣ − 1). Shape: (*) → (*)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    """max(0, x) + min(0, alpha·(e^(x/alpha) − 1)). Shape: (*) → (*)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha)


class Hardtanh(Module):
    """x clipped to [min_val, max_val]. Shape: (*) → (*)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"min_val={self.min_val}, max_val={self.max_val}{inplace}"


class Softshrink(Module):
    """x − lambd above lambd, x + lambd below −lambd, 0 between. Shape: (*) → (*)."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        return F.softshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class Hardshrink(Softshrink):
    """x outside [−lambd, lambd], 0 inside. Shape: (*) → (*)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.hardshrink(input, self.lambd)
