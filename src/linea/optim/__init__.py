"""Optimizers with PyTorch's update rules; they work on any iterable of tensors."""
from linea.optim import lr_scheduler
from linea.optim._adam import Adam, AdamW
from linea.optim._optimizer import Optimizer
from linea.optim._rmsprop import RMSprop
from linea.optim._sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
