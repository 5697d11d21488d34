"""Optimizers with PyTorch's update rules; they work on any iterable of tensors.

Adam and AdamW run a one-pass C step where the optional kernel is built (float32/float64
NumPy arrays), bit-identical to the NumPy path; ``kernel_info()`` says which runs.
"""
from linea.optim import lr_scheduler
from linea.backend._adam import kernel_info
from linea.optim._adam import Adam, AdamW
from linea.optim._optimizer import Optimizer
from linea.optim._rmsprop import RMSprop
from linea.optim._sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler", "kernel_info"]
