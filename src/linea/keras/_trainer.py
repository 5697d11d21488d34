"""The training loop behind ``fit``, ``evaluate`` and ``predict``, on linea's autograd.

One step: forward in training mode, compiled loss plus the layers' regularization
losses, ``backward()``, the optimizer's step, then weight constraints. The
epoch's loss is the batch-size-weighted mean of the step losses, as Keras logs it.
"""
from __future__ import annotations

import math

from linea._autograd import no_grad
from linea._creation import numbers_of_object_array
from linea.backend import xp
from linea._random import numpy_generator
from linea._tensor import Tensor
from linea.keras import metrics as metrics_module
from linea.keras._progbar import ProgressBar
from linea.keras.callbacks import Callback, History
from linea.keras.layers._layer import Variable
from linea._versions import mark_written


def host_array(data, name: str):
    if data is None:
        return None
    array = xp.asarray(getattr(data, "_data", data))
    if array.dtype == object:  # numbers kept as objects (a pandas frame of mixed columns)
        array = xp.asarray(numbers_of_object_array(array, name))
    return array


def batches(count: int, batch_size: int, order=None):
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        yield order[start:stop] if order is not None else slice(start, stop)


class Trackers:
    """Running loss (weighted by batch size) and per-sample metric means."""

    def __init__(self, metric_functions) -> None:
        self.metric_functions = metric_functions
        self.loss_total = 0.0
        self.count = 0
        self.metric_totals = [0.0] * len(metric_functions)
        self.metric_counts = [0] * len(metric_functions)

    def update(self, loss: float, y_true, y_pred) -> None:
        size = len(y_pred)
        self.loss_total += loss * size
        self.count += size
        for i, (_, function) in enumerate(self.metric_functions):
            values = xp.asarray(function(y_true, y_pred), dtype=xp.float64)
            self.metric_totals[i] += float(values.sum())
            self.metric_counts[i] += values.size

    def logs(self) -> dict:
        logs = {"loss": self.loss_total / max(self.count, 1)}
        for (name, _), total, count in zip(self.metric_functions, self.metric_totals, self.metric_counts):
            logs[name] = total / max(count, 1)
        return logs


def total_loss(model, y_true, y_pred: Tensor) -> Tensor:
    loss = model.compiled_loss(y_true, y_pred)
    for penalty in model.losses:
        loss = loss + penalty
    return loss


def apply_constraints(model) -> None:
    for parameter in model.parameters():
        if isinstance(parameter, Variable) and parameter.constraint is not None:
            parameter._data[...] = parameter.constraint(parameter._data)
            mark_written(parameter._data)


def resolve_metrics(model, y, x_sample):
    if not model.compiled_metrics:
        return []
    with no_grad():
        sample_pred = model(x_sample[:1], training=False)._data
    loss_name = getattr(model, "_loss_identifier", None)
    return [metrics_module.get(m, loss_name if isinstance(loss_name, str) else None,
                               y[:1], sample_pred) for m in model.compiled_metrics]


def run_fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split,
            validation_data, shuffle, initial_epoch, out=None):
    x, y = host_array(x, "x"), host_array(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same number of samples, got {len(x)} and {len(y)}")
    if validation_data is None and validation_split:
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        split_at = int(math.floor(len(x) * (1.0 - validation_split)))
        x, y, validation_data = x[:split_at], y[:split_at], (x[split_at:], y[split_at:])
    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (x_val, y_val)")
        validation_data = (host_array(validation_data[0], "x_val"), host_array(validation_data[1], "y_val"))
    batch_size = batch_size or 32
    model._ensure_built((None,) + tuple(x.shape[1:]))
    if not model.optimizer.built:
        model.optimizer.build([p for p in model.parameters() if p.requires_grad])
    metric_functions = resolve_metrics(model, y, x)
    history = History()
    callback_list = [history] + list(callbacks or [])
    for callback in callback_list:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be linea.keras.callbacks.Callback objects, got {callback!r}")
        callback.set_model(model)
        callback.set_params({"epochs": epochs, "steps": math.ceil(len(x) / batch_size), "verbose": verbose})
    model.stop_training = False
    steps = math.ceil(len(x) / batch_size)
    for callback in callback_list:
        callback.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        for callback in callback_list:
            callback.on_epoch_begin(epoch)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}", file=out, flush=True)
        progress = ProgressBar(steps, verbose, out)
        trackers = Trackers(metric_functions)
        order = numpy_generator(None).permutation(len(x)) if shuffle else None
        model.train()
        for step, index in enumerate(batches(len(x), batch_size, order)):
            for callback in callback_list:
                callback.on_train_batch_begin(step)
            x_batch, y_batch = x[index], y[index]
            y_pred = model(x_batch, training=True)
            loss = total_loss(model, y_batch, y_pred)
            model.optimizer.zero_grad()
            scale_loss = getattr(model.optimizer, "scale_loss", None)
            (loss if scale_loss is None else scale_loss(loss)).backward()
            model.optimizer.step()
            apply_constraints(model)
            trackers.update(loss.item(), y_batch, y_pred._data)
            logs = trackers.logs()
            progress.update(step, logs)
            for callback in callback_list:
                callback.on_train_batch_end(step, logs)
        logs = trackers.logs()
        if validation_data is not None:
            val_logs = run_evaluate(model, *validation_data, batch_size, metric_functions)
            logs.update({f"val_{key}": value for key, value in val_logs.items()})
        model.eval()
        progress.close(logs)
        for callback in callback_list:
            callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for callback in callback_list:
        callback.on_train_end()
    model.history = history
    return history


@no_grad()
def run_evaluate(model, x, y, batch_size, metric_functions=None) -> dict:
    x, y = host_array(x, "x"), host_array(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same number of samples, got {len(x)} and {len(y)}")
    model._ensure_built((None,) + tuple(x.shape[1:]))
    if metric_functions is None:
        metric_functions = resolve_metrics(model, y, x)
    trackers = Trackers(metric_functions)
    model.eval()
    for index in batches(len(x), batch_size or 32):
        y_pred = model(x[index], training=False)
        trackers.update(total_loss(model, y[index], y_pred).item(), y[index], y_pred._data)
    return trackers.logs()


@no_grad()
def run_predict(model, x, batch_size):
    x = host_array(x, "x")
    model._ensure_built((None,) + tuple(x.shape[1:]))
    model.eval()
    outputs = [model(x[index], training=False)._data for index in batches(len(x), batch_size or 32)]
    if not outputs:
        return xp.zeros((0,) + tuple(model.compute_output_shape((0,) + x.shape[1:])[1:]),
                        model._dtype.numpy)
    return xp.concatenate(outputs, axis=0)
