"""Keras callbacks: History, EarlyStopping, ModelCheckpoint, LambdaCallback."""
from __future__ import annotations

import math
import warnings

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "LambdaCallback"]


class Callback:
    """Hooks called by ``fit``; ``self.model`` is the model being trained."""

    def __init__(self) -> None:
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]``, ``history.epoch``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict = {}
        self.epoch: list = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


def _improvement(mode: str, monitor: str):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "max" or (mode == "auto" and ("acc" in monitor or monitor.endswith("auc"))):
        return lambda current, best, delta: current - delta > best, -math.inf
    return lambda current, best, delta: current + delta < best, math.inf


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline=None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.baseline = verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self._better, self._worst = _improvement(mode, monitor)
        self.stopped_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0
        self.best = self._worst if self.baseline is None else self.baseline

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:  # Keras warns and carries on
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(sorted(logs or {}))}",
                          stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._better(current, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch, or only when ``monitor`` improves.

    ``filepath`` may hold format fields: ``"ckpt-{epoch:02d}-{val_loss:.2f}.weights.h5"``.
    """

    def __init__(self, filepath: str, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq="epoch", initial_value_threshold=None) -> None:
        super().__init__()
        filepath = str(filepath)
        if save_weights_only and not filepath.endswith(".weights.h5"):
            raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the "
                             f"filepath provided must end in `.weights.h5`. Received: {filepath}")
        if not save_weights_only and not filepath.endswith(".keras"):
            raise ValueError("The filepath provided must end in `.keras` (Keras model format). "
                             f"Received: filepath={filepath}")
        if save_freq != "epoch":
            raise NotImplementedError("linea's ModelCheckpoint saves once per epoch (save_freq='epoch')")
        self.filepath, self.monitor, self.verbose = filepath, monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self._better, worst = _improvement(mode, monitor)
        self.best = worst if initial_value_threshold is None else initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available, skipping.",
                              stacklevel=2)
                return
            if not self._better(current, self.best, 0.0):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs) -> None:
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end,
                     on_batch_begin=kwargs.pop("on_batch_begin", None),
                     on_batch_end=kwargs.pop("on_batch_end", None))
        if kwargs:
            raise TypeError(f"LambdaCallback got unexpected argument(s) {sorted(kwargs)}")
        for name, function in hooks.items():
            if function is not None:
                target = {"on_batch_begin": "on_train_batch_begin",
                          "on_batch_end": "on_train_batch_end"}.get(name, name)
                setattr(self, target, function)
