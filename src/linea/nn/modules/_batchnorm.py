"""BatchNorm1d and BatchNorm2d: per-channel normalization with running statistics."""
from __future__ import annotations

from linea._errors import ShapeError
from linea._tensor import Tensor
from linea.backend import from_host, xp
from linea.nn import functional as F
from linea.nn import init
from linea.nn.modules._linear import _check_size, _factory_dtype
from linea.nn.modules._module import Module
from linea.nn.modules._parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    _ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        self.num_features = _check_size(num_features, "num_features", type(self).__name__)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] or None (a cumulative average), got {momentum}")
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        numpy_dtype = _factory_dtype(device, dtype)
        if affine:
            self.weight = Parameter(xp.empty((num_features,), numpy_dtype))
            if bias:
                self.bias = Parameter(xp.empty((num_features,), numpy_dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor._make(from_host(xp.zeros((num_features,), numpy_dtype))))
            self.register_buffer("running_var", Tensor._make(from_host(xp.ones((num_features,), numpy_dtype))))
            self.register_buffer("num_batches_tracked", Tensor._make(from_host(xp.zeros((), xp.int64))))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check_input(self, input) -> None:
        ndim = getattr(input, "ndim", None)
        if ndim not in self._ranks:
            wanted = " or ".join(f"{rank}D" for rank in self._ranks)
            raise ShapeError(f"{type(self).__name__} expected {wanted} input (got {ndim}D input "
                             f"of shape {tuple(getattr(input, 'shape', ()))})")
        if input.shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}({self.num_features}) got an input with "
                             f"{input.shape[1]} channels on dim 1 (shape {tuple(input.shape)})")

    def forward(self, input) -> Tensor:
        self._check_input(input)
        counting = self.training and self.track_running_stats
        factor = 0.0 if self.momentum is None else self.momentum
        if counting and self.momentum is None:  # a cumulative moving average
            factor = 1.0 / (float(self.num_batches_tracked._data) + 1.0)
        use_batch = self.training or self.running_mean is None
        tracked = not self.training or self.track_running_stats
        out = F.batch_norm(input, self.running_mean if tracked else None,
                           self.running_var if tracked else None, self.weight, self.bias,
                           use_batch, factor, self.eps)
        if counting:  # counted once the step has succeeded (a failed call changes nothing)
            self.num_batches_tracked._data[...] += 1
        return out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """y = (x − E[x]) / √(Var[x] + eps) · weight + bias per feature, over the batch (and length).

    Shapes: x (N, C) or (N, C, L) → same. While training the batch's statistics are
    used (biased variance) and running_mean/running_var move by ``momentum``
    (r ← (1 − momentum)·r + momentum·batch; the variance unbiased); in ``eval()`` the
    running statistics are used. ``momentum=None`` keeps a cumulative average.
    State: ``weight`` (ones), ``bias`` (zeros), ``running_mean``, ``running_var``,
    ``num_batches_tracked`` — PyTorch's keys.

    Example::

        >>> import linea
        >>> norm = linea.nn.BatchNorm1d(3)
        >>> norm(linea.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])).tolist()[0]
        [-0.9999949932098389, -0.9999949932098389, -0.9999949932098389]
    """

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """BatchNorm1d's formula per channel of (N, C, H, W) images, statistics over N, H and W.

    Example::

        >>> import linea
        >>> linea.nn.BatchNorm2d(8)(linea.ones(2, 8, 4, 4)).shape
        (2, 8, 4, 4)
    """

    _ranks = (4,)
