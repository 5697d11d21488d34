"""Losses: mse, l1, cross-entropy (with label smoothing), nll, BCE with logits.

Cross-entropy goes through log_softmax and BCE through a stable softplus, so
logits of ±1e4 give finite losses and gradients.
"""
from __future__ import annotations

import math

from linea._autograd import needs_grad, record
from linea.backend import (kind_of, namespace_of, put_along_axis, quiet, space_of, take_along_axis,
                           to_host, xp)
from linea._errors import DTypeError, ShapeError
from linea._tensor import Tensor
from linea.nn.functional._activation import log_softmax, softplus
from linea._autocast import cast_for

__all__ = ["mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _as_target(target, like: Tensor) -> Tensor:
    if isinstance(target, Tensor):
        return target
    from linea._creation import as_tensor

    array = xp.asarray(target)
    return as_tensor(array.astype(like._data.dtype) if array.dtype.kind == "f" else array)


def _check_same_shape(input: Tensor, target: Tensor, function: str) -> None:
    if input.shape != target.shape:
        raise ShapeError(
            f"{function} needs input and target of the same shape, got {input.shape} and "
            f"{target.shape}; reshape the target (e.g. target.reshape({list(input.shape)}))"
        )


@quiet
def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """(input - target)², reduced."""
    input, target = cast_for("mse_loss", input, target)
    target = _as_target(target, input)
    _check_same_shape(input, target, "mse_loss")
    difference = input - target
    return _reduce(difference * difference, reduction)


@quiet
def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced."""
    input, target = cast_for("l1_loss", input, target)
    target = _as_target(target, input)
    _check_same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction)


def _class_shape(input: Tensor, target: Tensor, function: str) -> None:
    if input.ndim == 1:
        expected = ()
    else:
        expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ShapeError(
            f"{function} with class indices expects a target of shape {expected} for an input "
            f"of shape {input.shape} (N, C, ...), got {target.shape}"
        )


def _check_class_indices(indices, classes: int) -> None:
    """Every class index in 0 … classes-1, as PyTorch checks (IndexError naming the first bad one)."""
    indices = to_host(indices)  # a check on a few integers: on the host for any library
    outside = (indices < 0) | (indices >= classes)
    if outside.any():
        raise IndexError(f"target {int(indices[outside][0])} is out of bounds for {classes} classes")


def _gather_classes(log_probs: Tensor, target: Tensor, ignore_index: int):
    """-log p[target] at each position (0 where ignored), and the valid mask."""
    logp = log_probs._data
    classes = logp.shape[1] if logp.ndim > 1 else logp.shape[0]
    indices = target._data
    space = space_of(logp)
    valid = indices != ignore_index
    safe = space.where(valid, indices, 0)
    _check_class_indices(safe, classes)
    if logp.ndim == 2 and space is xp:  # (N, C): fancy indexing, ~5× cheaper than along-axis
        rows = xp.arange(logp.shape[0])
        out = -logp[rows, safe]
        if not valid.all():
            out[~valid] = 0

        def scatter(full, values):
            full[rows, safe] = values
    else:
        axis = 1 if logp.ndim > 1 else 0
        picked_index = space.expand_dims(safe, axis=axis)
        picked = space.squeeze(take_along_axis(logp, picked_index, axis=axis), axis=axis)
        out = space.astype(space.where(valid, -picked, space.zeros_like(picked)), logp.dtype)

        def scatter(full, values):
            put_along_axis(full, picked_index, space.expand_dims(values, axis=axis), axis=axis)
    result = Tensor._make(xp.asarray(out) if space is xp else out)
    if needs_grad(log_probs):
        def backward(grad):
            full = space.zeros(logp.shape, dtype=grad.dtype)
            scatter(full, -grad * (valid if space is xp else space.astype(valid, grad.dtype)))
            return (full,)

        record(result, "NllGather", (log_probs,), backward, (logp, indices))  # as PyTorch saves
    return result, valid, safe


def _broadcast_class_weight(weight: Tensor, ndim: int) -> Tensor:
    """Class weights (C,) shaped to broadcast along dim 1 of an (N, C, ...) tensor."""
    if ndim == 1:
        return weight
    return weight.reshape((1, -1) + (1,) * (ndim - 2))


@quiet
def nll_loss(input: Tensor, target, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """-input[target] (input holds log-probabilities), weighted, reduced as in PyTorch."""
    input, weight = cast_for("nll_loss", input, weight)
    target = _as_target(target, input)
    if kind_of(target._data) not in "iu":
        raise DTypeError(f"nll_loss expects integer class indices, got {target.dtype}; use .long()")
    _class_shape(input, target, "nll_loss")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    losses, valid, safe = _gather_classes(input, target, ignore_index)
    space = space_of(valid)
    if weight is None:
        sample_weight = space.astype(valid, input._data.dtype)
    elif space is xp:
        sample_weight = weight._data[safe] * valid
    else:
        sample_weight = space.reshape(space.take(weight._data, space.reshape(safe, (-1,))), safe.shape) \
            * space.astype(valid, weight._data.dtype)
    if weight is not None:
        losses = losses * Tensor._make(sample_weight)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    total = xp.asarray(sample_weight.sum(), input._data.dtype) if space is xp else \
        space.astype(space.sum(sample_weight), input._data.dtype)
    return losses.sum() / Tensor._make(total)


@quiet
def cross_entropy(input: Tensor, target, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits (N, C, ...) against class indices or class probabilities.

    With label smoothing ε over C classes: (1-ε)·nll + ε/C·Σ_c -log p_c, reduced
    as PyTorch does (the mean divides by the summed weights of valid targets).
    """
    input, target, weight = cast_for("cross_entropy", input, target, weight)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    target = _as_target(target, input)
    if (input.ndim == 2 and weight is None and label_smoothing == 0 and reduction == "mean"
            and type(input._data) is xp.ndarray  # the fused node is NumPy's; others compose
            and kind_of(target._data) in "iu" and target._data.shape == (input.shape[0],)):
        return _cross_entropy_2d(input, target, ignore_index)
    class_dim = 1 if input.ndim > 1 else 0
    classes = input.shape[class_dim]
    log_probs = log_softmax(input, class_dim)
    if kind_of(target._data) == "f":  # class probabilities
        _check_same_shape(input, target, "cross_entropy with class probabilities")
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / classes
        terms = log_probs * target
        if weight is not None:
            terms = terms * _broadcast_class_weight(weight, input.ndim)
        losses = -terms.sum(class_dim)
        if reduction == "mean":  # PyTorch divides by the number of positions, N·d1·…
            return losses.sum() / max(1, input.numel() // max(classes, 1))
        return _reduce(losses, reduction)
    nll = nll_loss(log_probs, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    valid = Tensor._make(target._data != ignore_index)
    if weight is not None:
        smooth = -(log_probs * _broadcast_class_weight(weight, input.ndim)).sum(class_dim)
    else:
        smooth = -log_probs.sum(class_dim)
    smooth = smooth * valid
    if reduction == "sum":
        smooth_total = smooth.sum()
    elif reduction == "mean":
        # The denominator is a count or a sum of a few class weights: taken on the host.
        labels = to_host(target._data)
        if weight is not None:
            denominator = to_host(weight._data)[labels[labels != ignore_index]].sum()
        else:
            denominator = to_host(valid._data).sum()
        denominator = xp.asarray(denominator, to_host(input._data).dtype)
        if type(input._data) is not xp.ndarray:
            denominator = namespace_of(input._data).asarray(denominator)
        smooth_total = smooth.sum() / Tensor._make(denominator)
    else:
        smooth_total = smooth
    return nll * (1 - label_smoothing) + smooth_total * (label_smoothing / classes)


def _cross_entropy_2d(input: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    """mean over valid rows of logsumexp(x) − x[target]: one fused node.

    The common classification loss (N, C) with class indices: one node whose
    gradient is (softmax − onehot) / count, instead of four (log_softmax, gather,
    sum, divide). Tested against the composed path.
    """
    x = input._data
    labels = target._data
    rows, classes = x.shape
    valid = labels != ignore_index
    # NumPy only (cross_entropy routes other libraries to the composed ops): array methods,
    # a microsecond cheaper each than the np.* wrappers.
    safe = xp.where(valid, labels, 0) if not valid.all() else labels
    if rows:
        _check_class_indices(safe, classes)
    shifted = x - x.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    index = xp.arange(rows)
    losses = xp.log(total[:, 0]) - shifted[index, safe]
    count = int(valid.sum())
    if count != rows:
        losses = losses * valid
    out = xp.asarray(losses.sum() / count if count else xp.asarray(xp.nan, x.dtype), dtype=x.dtype)
    result = Tensor._make(out)
    if needs_grad(input):
        def backward(grad):
            probabilities = exp / total
            probabilities[index, safe] -= 1
            if count != rows:
                probabilities *= valid[:, None]
            probabilities *= grad / count
            return (probabilities,)

        # PyTorch's log_softmax saves its result, not the logits: only the target is checked.
        record(result, "CrossEntropy", (input,), backward, (labels,))
    return result


@quiet
def binary_cross_entropy_with_logits(input: Tensor, target, weight: Tensor | None = None,
                                     reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """-[pos_weight·t·log σ(x) + (1-t)·log(1-σ(x))], computed from logits stably."""
    input, target, weight, pos_weight = cast_for("binary_cross_entropy_with_logits", input, target,
                                                 weight, pos_weight)
    target = _as_target(target, input)
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    if pos_weight is None:
        loss = (1 - target) * input + softplus(-input, 1.0, math.inf)
    else:
        log_weight = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + log_weight * softplus(-input, 1.0, math.inf)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
