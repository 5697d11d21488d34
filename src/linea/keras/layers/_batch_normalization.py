"""Keras's ``BatchNormalization``: per-feature normalization with moving statistics."""
from __future__ import annotations

from linea._errors import ShapeError
from linea._tensor import Tensor
from linea.keras import constraints, initializers, regularizers
from linea.keras.layers._layer import Layer, as_compute_tensor
from linea.nn.functional._normalization import batch_norm_over

__all__ = ["BatchNormalization"]


class BatchNormalization(Layer):
    """y = (x − mean) / √(var + epsilon) · gamma + beta per feature on ``axis`` (−1).

    Shapes: x (batch, …, features) → same; ``gamma``, ``beta``, ``moving_mean``,
    ``moving_variance`` are (features,), in that order in the weights. Called with
    ``training=True`` (as ``fit`` does) it uses the batch's statistics (biased
    variance) and moves the others: moving ← moving·momentum + batch·(1 − momentum),
    so Keras's momentum 0.99 is PyTorch's 0.01; otherwise (and when the layer is not
    trainable) it uses the moving statistics. epsilon is 1e-3 (PyTorch's is 1e-5).

    Example::

        >>> import linea
        >>> from linea.keras.layers import BatchNormalization
        >>> norm = BatchNormalization()
        >>> norm(linea.ones(4, 3)).shape, [w.name for w in norm.weights]
        ((4, 3), ['gamma', 'beta', 'moving_mean', 'moving_variance'])
    """

    def __init__(self, axis=-1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm: bool = False, renorm_clipping=None,
                 renorm_momentum: float = 0.99, synchronized: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if renorm:
            raise NotImplementedError("BatchNormalization(renorm=True) is not supported by linea")
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise NotImplementedError(f"linea's BatchNormalization normalizes one axis, got axis={axis}")
            axis = axis[0]
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale, self.synchronized = center, scale, synchronized
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None
        if self._batch_input_shape is not None:
            self._ensure_built(self._batch_input_shape)

    def build(self, input_shape) -> None:
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or ndim < 2:
            raise ValueError(f"Invalid axis: {self.axis} for an input of shape {tuple(input_shape)}")
        features = input_shape[self.axis]
        if features is None:
            raise ShapeError(f"BatchNormalization '{self.name}' needs a known size on axis "
                             f"{self.axis}, got {tuple(input_shape)}")
        shape = (int(features),)
        if self.scale:
            self.add_weight("gamma", shape, self.gamma_initializer, self.gamma_regularizer,
                            self.gamma_constraint)
        if self.center:
            self.add_weight("beta", shape, self.beta_initializer, self.beta_regularizer,
                            self.beta_constraint)
        self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", shape, self.moving_variance_initializer, trainable=False)
        self.built = True

    def call(self, inputs, training: bool = False) -> Tensor:
        x = as_compute_tensor(inputs, self._compute_dtype)
        if x.ndim < 2 or x.shape[self.axis] != self.moving_mean.shape[0]:
            raise ShapeError(f"BatchNormalization '{self.name}' was built for {self.moving_mean.shape[0]} "
                             f"features on axis {self.axis}, got an input of shape {x.shape}")
        batch = bool(training) and self.trainable
        # the moving statistics are state, not inputs: their update is not differentiated
        return batch_norm_over(x, self.axis, self.moving_mean._data, self.moving_variance._data,
                               self.compute_weight(self.gamma), self.compute_weight(self.beta),
                               batch, keep=self.momentum, take=1.0 - self.momentum,
                               eps=self.epsilon, unbiased_update=False)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
            "center": self.center, "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
            "synchronized": self.synchronized, "renorm": False, "renorm_clipping": None,
            "renorm_momentum": 0.99,
        })
        return config
