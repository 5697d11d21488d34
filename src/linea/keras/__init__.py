"""The Keras flavour: Keras 3's layers, models and training API on linea's one engine.

``Dense`` keeps Keras's kernel layout (in, units) and lazy build; it computes
with the same fused affine op as ``linea.nn.Linear``, trains with the same
autograd, and its optimizers run on ``linea.optim``'s machinery with Keras's
update rules.
"""
from linea.keras import (activations, backend, callbacks, config, constraints, initializers,
                         layers, losses, metrics, models, optimizers, regularizers)
from linea.keras._sequential import Sequential
from linea.keras.layers import Input

Model = Sequential

__all__ = ["Sequential", "Model", "Input", "layers", "models", "activations", "initializers",
           "regularizers", "constraints", "optimizers", "losses", "metrics", "callbacks",
           "backend", "config"]
