"""Keras metrics resolved by name at compile time; each returns per-sample values.

"accuracy" becomes binary, sparse categorical or categorical accuracy from the
shapes of the targets and predictions, as Keras chooses.
"""
from __future__ import annotations

from linea.backend import xp
from linea._tensor import Tensor
from linea.keras import losses

__all__ = ["get", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"]


def binary_accuracy(y_true, y_pred, threshold: float = 0.5):
    y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
    return ((y_pred > threshold) == (y_true > 0.5)).astype(xp.float32).mean(axis=-1)


def categorical_accuracy(y_true, y_pred):
    return (y_true.argmax(-1) == y_pred.argmax(-1)).astype(xp.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    labels = y_true.reshape(y_pred.shape[:-1]) if y_true.size == y_pred[..., 0].size else y_true
    return (labels.astype(xp.int64) == y_pred.argmax(-1)).astype(xp.float32)


def _on_arrays(loss):
    """A Keras loss (on tensors, per sample) as a metric on NumPy arrays."""
    def metric(y_true, y_pred):
        prediction = Tensor._make(y_pred)
        return loss(Tensor._make(y_true.reshape(y_pred.shape).astype(y_pred.dtype)), prediction)._data
    return metric


_mse = _on_arrays(losses.mean_squared_error)
_mae = _on_arrays(losses.mean_absolute_error)


_BY_NAME = {"binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
            "sparse_categorical_accuracy": sparse_categorical_accuracy, "mse": _mse,
            "mean_squared_error": _mse, "mae": _mae, "mean_absolute_error": _mae}


def get(identifier, loss_name: str | None, y_true, y_pred):
    """(name, function on NumPy arrays) for a metric given as a name or a callable."""
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    if identifier in ("accuracy", "acc"):
        if loss_name == "sparse_categorical_crossentropy":
            return identifier, sparse_categorical_accuracy
        if loss_name == "categorical_crossentropy":
            return identifier, categorical_accuracy
        if loss_name == "binary_crossentropy" or y_pred.shape[-1] == 1:
            return identifier, binary_accuracy
        if y_true.ndim < y_pred.ndim or (y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1):
            return identifier, sparse_categorical_accuracy
        return identifier, categorical_accuracy
    function = _BY_NAME.get(identifier)
    if function is None:
        raise ValueError(f"Unknown metric {identifier!r}; expected 'accuracy' or one of "
                         f"{sorted(_BY_NAME)}, or a function (y_true, y_pred)")
    return identifier, function
