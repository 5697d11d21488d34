"""Keras losses: per-sample functions and the classes that reduce them (sum over batch size).

Each function maps (y_true, y_pred) to one value per sample, as Keras's do
(mean over the last axis for the elementwise losses). Cross-entropies take
probabilities unless ``from_logits=True``; probabilities are renormalised and
clipped to [ε, 1 − ε] before the log, exactly as Keras does.
"""
from __future__ import annotations

from linea import _dtype

from linea.backend import xp
from linea._errors import ShapeError
from linea._tensor import Tensor
from linea.keras.config import epsilon
from linea.nn import functional as F

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "Huber", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "mean_squared_error",
           "mean_absolute_error", "huber", "binary_crossentropy", "categorical_crossentropy",
           "sparse_categorical_crossentropy", "get"]


def _pair(y_true, y_pred: Tensor) -> Tensor:
    array = xp.asarray(getattr(y_true, "_data", y_true))
    if array.dtype.kind in "fbiu":
        array = array.astype(y_pred._data.dtype, copy=False)
    return y_true if isinstance(y_true, Tensor) and y_true._data.dtype == array.dtype \
        else Tensor._make(array)


def _same_shape(y_true: Tensor, y_pred: Tensor, name: str) -> Tensor:
    if y_true.shape != y_pred.shape:
        if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            return y_true.unsqueeze(-1)  # Keras squeezes or expands a trailing 1
        if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
            return y_true.squeeze(-1)
        raise ShapeError(f"{name}: y_true of shape {y_true.shape} does not match y_pred of "
                         f"shape {y_pred.shape}")
    return y_true


def mean_squared_error(y_true, y_pred: Tensor) -> Tensor:
    y_true = _same_shape(_pair(y_true, y_pred), y_pred, "mean_squared_error")
    return F.mse_loss(y_pred, y_true, reduction="none").mean(-1)


def mean_absolute_error(y_true, y_pred: Tensor) -> Tensor:
    y_true = _same_shape(_pair(y_true, y_pred), y_pred, "mean_absolute_error")
    return F.l1_loss(y_pred, y_true, reduction="none").mean(-1)


def huber(y_true, y_pred: Tensor, delta: float = 1.0) -> Tensor:
    from linea._ops_shape import where

    y_true = _same_shape(_pair(y_true, y_pred), y_pred, "huber")
    error = (y_pred - y_true).abs()
    quadratic = error * error * 0.5
    linear = error * delta - 0.5 * delta * delta
    return where(error <= delta, quadratic, linear).mean(-1)


def _clipped_log_probabilities(y_pred: Tensor, axis: int = -1) -> Tensor:
    eps = epsilon()
    probabilities = y_pred / y_pred.sum(axis, keepdim=True)
    return probabilities.clamp(eps, 1.0 - eps).log()


def binary_crossentropy(y_true, y_pred: Tensor, from_logits: bool = False,
                        label_smoothing: float = 0.0) -> Tensor:
    y_true = _same_shape(_pair(y_true, y_pred), y_pred, "binary_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        values = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        eps = epsilon()
        p = y_pred.clamp(eps, 1.0 - eps)
        values = -(y_true * p.log() + (1 - y_true) * (1 - p).log())
    return values.mean(-1)


def categorical_crossentropy(y_true, y_pred: Tensor, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    y_true = _pair(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ShapeError(
            f"categorical_crossentropy needs one-hot targets of shape {y_pred.shape}, got "
            f"{y_true.shape}; for integer class labels use sparse_categorical_crossentropy"
        )
    if label_smoothing:
        classes = y_pred.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    log_probabilities = F.log_softmax(y_pred, axis) if from_logits else \
        _clipped_log_probabilities(y_pred, axis)
    return -(y_true * log_probabilities).sum(axis)


def sparse_categorical_crossentropy(y_true, y_pred: Tensor, from_logits: bool = False,
                                    ignore_class=None, axis: int = -1) -> Tensor:
    labels = xp.asarray(getattr(y_true, "_data", y_true))
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ShapeError(
            "Arguments `target` and `output` must have the same shape up until the last "
            f"dimension: target.shape={labels.shape}, output.shape={y_pred.shape}"
        )
    if labels.dtype.kind == "f":
        if not (labels == xp.round(labels)).all():
            raise ValueError("sparse_categorical_crossentropy needs integer class labels")
    labels = labels.astype(xp.int64)
    log_probabilities = F.log_softmax(y_pred, axis) if from_logits else \
        _clipped_log_probabilities(y_pred, axis)
    if y_pred.ndim == 1:
        return F.nll_loss(log_probabilities.unsqueeze(0), Tensor._make(labels.reshape(1)),
                          reduction="none").squeeze(0)
    moved = log_probabilities if y_pred.ndim == 2 else log_probabilities.permute(
        0, y_pred.ndim - 1, *range(1, y_pred.ndim - 1))
    return F.nll_loss(moved, Tensor._make(labels), reduction="none")


class Loss:
    """A loss object: per-sample ``call`` reduced by sum over the number of values."""

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size") -> None:
        if reduction not in ("sum_over_batch_size", "sum", "none", "mean"):
            raise ValueError(f"reduction must be 'sum_over_batch_size', 'sum' or 'none', got {reduction!r}")
        self.name, self.reduction = name, reduction

    def call(self, y_true, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, y_true, y_pred: Tensor) -> Tensor:
        if isinstance(y_pred, Tensor) and y_pred.dtype in (_dtype.bfloat16, _dtype.float16):
            y_pred = y_pred.float()  # Keras computes losses in float32 (mixed policies)
        values = self.call(y_true, y_pred)
        if self.reduction == "none" or values.ndim == 0:
            return values
        total = values.sum()
        return total if self.reduction == "sum" else total / max(values.numel(), 1)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}


def _function_loss(function, default_name, **fixed_defaults):
    class FunctionLoss(Loss):
        def __init__(self, reduction="sum_over_batch_size", name=default_name, **kwargs):
            super().__init__(name, reduction)
            unknown = set(kwargs) - set(fixed_defaults)
            if unknown:
                raise TypeError(f"{type(self).__name__} got unexpected argument(s) {sorted(unknown)}")
            self.options = {**fixed_defaults, **kwargs}

        def call(self, y_true, y_pred):
            return function(y_true, y_pred, **self.options)

        def get_config(self):
            return {**super().get_config(), **self.options}

    return FunctionLoss


class MeanSquaredError(_function_loss(mean_squared_error, "mean_squared_error")):
    """mean((y_pred − y_true)²) over the last axis, averaged over the batch."""


class MeanAbsoluteError(_function_loss(mean_absolute_error, "mean_absolute_error")):
    """mean(|y_pred − y_true|) over the last axis, averaged over the batch."""


class Huber(_function_loss(huber, "huber_loss", delta=1.0)):
    """Quadratic below ``delta``, linear above."""


class BinaryCrossentropy(_function_loss(binary_crossentropy, "binary_crossentropy",
                                        from_logits=False, label_smoothing=0.0)):
    """Binary cross-entropy of probabilities (or logits with from_logits=True)."""


class CategoricalCrossentropy(_function_loss(categorical_crossentropy, "categorical_crossentropy",
                                             from_logits=False, label_smoothing=0.0)):
    """Cross-entropy against one-hot targets."""


class SparseCategoricalCrossentropy(_function_loss(sparse_categorical_crossentropy,
                                                   "sparse_categorical_crossentropy",
                                                   from_logits=False)):
    """Cross-entropy against integer class labels."""


_BY_NAME = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(identifier):
    """A loss from a Keras name ("mse", "sparse_categorical_crossentropy", …), object or callable."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or {c.__name__: c for c in _BY_NAME.values()}.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)}, "
                             "a keras Loss object or a function (y_true, y_pred)")
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        wrapped = _function_loss(identifier, getattr(identifier, "__name__", "loss"))()
        return wrapped
    raise TypeError(f"cannot interpret {identifier!r} as a loss")
