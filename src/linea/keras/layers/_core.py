"""Keras core layers: Input/InputLayer, Activation, Dropout, Flatten, LayerNormalization."""
from __future__ import annotations

import math

from linea._random import Generator
from linea._tensor import Tensor
from linea.keras import activations, initializers, regularizers, constraints
from linea.keras.layers._layer import Layer, as_compute_tensor, check_shape_rank
from linea.nn import functional as F

__all__ = ["InputLayer", "Input", "Activation", "LeakyReLU", "Dropout", "Flatten",
           "LayerNormalization"]


class InputLayer(Layer):
    """Declares a model's input shape (without the batch axis); holds no weights."""

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None,
                 **kwargs) -> None:
        if batch_shape is None:
            if shape is None:
                raise ValueError("InputLayer needs shape= (without the batch axis) or batch_shape=")
            batch_shape = (batch_size,) + tuple(shape)
        kwargs = {k: v for k, v in kwargs.items() if k not in ("sparse", "ragged", "optional",
                                                             "input_tensor")}
        super().__init__(name=name, dtype=dtype, batch_input_shape=tuple(batch_shape), **kwargs)
        self.built = True

    @property
    def batch_shape(self) -> tuple:
        return self._batch_input_shape

    def call(self, inputs, training: bool = False):
        return inputs

    def get_config(self) -> dict:
        return {"batch_shape": self._batch_input_shape, "dtype": self._dtype.name,
                "sparse": False, "ragged": False, "name": self.name, "optional": False}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None) -> InputLayer:
    """The first element of a Keras ``Sequential``: ``Input(shape=(3,))``."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                      batch_shape=batch_shape)


class Activation(Layer):
    """Applies an activation: ``Activation("relu")``."""

    def __init__(self, activation, **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs, training: bool = False):
        return self.activation(as_compute_tensor(inputs, self._compute_dtype))

    def get_config(self) -> dict:
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class LeakyReLU(Layer):
    """x if x > 0 else negative_slope·x, as a layer (Keras's default slope here is 0.3)."""

    def __init__(self, negative_slope: float = 0.3, **kwargs) -> None:
        kwargs.pop("alpha", None)
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or "
                             f"negative value. Expected a float. Received: negative_slope={negative_slope}")
        self.negative_slope = float(negative_slope)

    def call(self, inputs, training: bool = False):
        return F.leaky_relu(as_compute_tensor(inputs, self._compute_dtype), self.negative_slope)

    def get_config(self) -> dict:
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of inputs while training, scaling the rest by 1/(1−rate)."""

    def __init__(self, rate: float, noise_shape=None, seed=None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value "
                             f"between 0 and 1. Received: rate={rate}")
        if noise_shape is not None:
            raise NotImplementedError("Dropout(noise_shape=...) is not supported by linea")
        self.rate, self.seed = rate, seed
        self._generator = None if seed is None else Generator().manual_seed(int(seed))

    def call(self, inputs, training: bool = False):
        x = as_compute_tensor(inputs, self._compute_dtype)
        return F.dropout(x, self.rate, training=training, generator=self._generator)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed, "noise_shape": None})
        return config


class Flatten(Layer):
    """(batch, d1, d2, …) → (batch, d1·d2·…).

    With ``data_format="channels_first"`` the channel axis (axis 1) is moved last before
    flattening, as Keras does: the features always come out in channels-last order.
    """

    def __init__(self, data_format=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format

    def call(self, inputs, training: bool = False):
        x = as_compute_tensor(inputs, self._compute_dtype)
        if x.ndim == 1:
            return x.reshape(-1, 1)
        if self.data_format == "channels_first" and x.ndim > 2:
            x = x.permute(0, *range(2, x.ndim), 1)
        return x.reshape(x.shape[0], -1)

    def compute_output_shape(self, input_shape) -> tuple:
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def get_config(self) -> dict:
        config = super().get_config()
        config["data_format"] = self.data_format or "channels_last"
        return config


class LayerNormalization(Layer):
    """(x − mean) / √(var + epsilon) · gamma + beta over the last axis (epsilon 1e-3)."""

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 rms_scaling: bool = False, beta_initializer="zeros", gamma_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs) -> None:
        super().__init__(**kwargs)
        if rms_scaling:
            raise NotImplementedError("LayerNormalization(rms_scaling=True) is not supported by linea")
        self.axis, self.epsilon, self.center, self.scale = axis, epsilon, center, scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = None
        if self._batch_input_shape is not None:
            self._ensure_built(self._batch_input_shape)

    def _normalized_shape(self, input_shape) -> tuple:
        ndim = len(input_shape)
        axes = sorted(a % ndim for a in ((self.axis,) if isinstance(self.axis, int) else self.axis))
        if axes != list(range(ndim - len(axes), ndim)):
            raise NotImplementedError(
                f"linea's LayerNormalization normalises trailing axes only; axis={self.axis} "
                f"on a rank-{ndim} input is not supported"
            )
        return tuple(int(input_shape[a]) for a in axes)

    def build(self, input_shape) -> None:
        check_shape_rank(self, input_shape, 1)
        shape = self._normalized_shape(input_shape)
        if self.scale:
            self.add_weight("gamma", shape, self.gamma_initializer, self.gamma_regularizer,
                            self.gamma_constraint)
        if self.center:
            self.add_weight("beta", shape, self.beta_initializer, self.beta_regularizer,
                            self.beta_constraint)
        self.built = True

    def call(self, inputs, training: bool = False) -> Tensor:
        x = as_compute_tensor(inputs, self._compute_dtype)
        return F.layer_norm(x, self._normalized_shape(x.shape), self.compute_weight(self.gamma),
                            self.compute_weight(self.beta), self.epsilon)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
            "scale": self.scale, "rms_scaling": False,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        })
        return config
