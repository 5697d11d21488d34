"""Whole-model conversion between the Keras flavour and the PyTorch flavour.

``to_nn(keras_model)`` turns a ``linea.keras.Sequential`` of Dense / Conv2D /
BatchNormalization / pooling / Activation / Dropout / LayerNormalization / Flatten
layers into a ``linea.nn.Sequential``:
each Dense becomes a ``Linear`` holding kernelᵀ, followed by its activation as a
module of its own, so ``[Dense(relu), Dense]`` becomes ``Sequential(Linear, ReLU,
Linear)`` with PyTorch keys ``0.*`` and ``2.*``. ``to_keras(nn_model)`` goes
back, folding an activation module that follows a Linear into its Dense.
Epsilons and dropout rates carry over; weights are copied, never shared. Both
go through ``linea.io``'s neutral layer list, as every file format does.
"""
from __future__ import annotations

from linea.io._spec import keras_from_spec, nn_from_spec, spec_from_keras, spec_from_nn

__all__ = ["to_nn", "to_keras"]


def to_nn(keras_model):
    """A ``linea.nn.Sequential`` computing the same function (returned in eval mode).

    It takes its framework's input layout: images (N, C, H, W) where the Keras model
    takes (N, H, W, C). Conv kernels (kh, kw, in, out) become weights (out, in, kh, kw),
    and the layer after a Flatten of images takes its features in (C, H, W) order.
    """
    return nn_from_spec(spec_from_keras(keras_model))


def to_keras(nn_model, input_shape=None):
    """A built ``linea.keras.Sequential`` computing the same function as ``nn_model``.

    ``input_shape`` is the nn model's input per sample, e.g. (3,) or (C, H, W); a model
    that flattens images needs it, to reorder the features for Keras's (H, W, C) Flatten.
    The Keras model takes images (N, H, W, C).
    """
    if input_shape is not None and len(input_shape) > 0 and input_shape[0] is None:
        input_shape = tuple(input_shape[1:])  # a batch shape (None, …) was given
    return keras_from_spec(spec_from_nn(nn_model, input_shape), input_shape)
