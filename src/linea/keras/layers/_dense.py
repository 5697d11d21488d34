"""Keras's ``Dense``: y = activation(x K + b), kernel (in, units), built at the first call."""
from __future__ import annotations

from linea import _dtype
from linea._errors import ShapeError
from linea._tensor import Tensor
from linea.keras import activations, constraints, initializers, regularizers
from linea.keras.layers._layer import Layer, as_compute_tensor, check_shape_rank
from linea.nn import functional as F

__all__ = ["Dense"]


class Dense(Layer):
    """A densely connected layer with Keras 3's semantics.

    y = activation(x @ kernel + bias) on the last axis. Shapes: x (batch, …, in)
    → (batch, …, units); ``kernel`` is (in, units) — the transpose of PyTorch's
    ``weight`` — and ``bias`` (units,). Weights are created at the first call
    (or by ``build``), from the input's last dimension. Inputs need a batch axis
    (rank ≥ 2); numbers, arrays and tensors of any dtype are cast to the layer's.

    Args:
        units: size of the output's last axis.
        activation: a name ("relu", "gelu", "softmax", …), a callable, or None (linear).
        use_bias: learn a bias (default True).
        kernel_initializer / bias_initializer: "glorot_uniform" / "zeros" by default.
        kernel_regularizer, bias_regularizer, activity_regularizer: penalties added to the loss.
        kernel_constraint, bias_constraint: projections applied after each update.
        input_shape, dtype, name, trainable: as in Keras.

    Example::

        >>> import linea
        >>> from linea.keras.layers import Dense
        >>> layer = Dense(30, input_shape=(3,))
        >>> layer(linea.ones(5, 3)).shape, layer.kernel.shape
        ((5, 30), (3, 30))
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(
                f"Received an invalid value for `units`, expected a positive integer. Received: "
                f"units={units!r}"
            )
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = None
        self.bias = None
        if self._batch_input_shape is not None:
            self._ensure_built(self._batch_input_shape)

    def build(self, input_shape) -> None:
        check_shape_rank(self, input_shape, 2, _RANK_HINT)
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ShapeError(f"Dense '{self.name}' needs a known last dimension, got {tuple(input_shape)}")
        self.add_weight("kernel", (int(input_dim), self.units), self.kernel_initializer,
                        self.kernel_regularizer, self.kernel_constraint)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer,
                            self.bias_regularizer, self.bias_constraint)
        self.built = True

    def call(self, inputs, training: bool = False) -> Tensor:
        x = as_compute_tensor(inputs, self._dtype)
        check_shape_rank(self, x.shape, 2, _RANK_HINT)
        if x.shape[-1] != self.kernel.shape[0]:
            raise ShapeError(
                f"Dense layer '{self.name}' was built for inputs with last dimension "
                f"{self.kernel.shape[0]} (kernel {self.kernel.shape}), but got an input of shape "
                f"{x.shape} with last dimension {x.shape[-1]}"
            )
        return self.activation(F.dense(x, self.kernel, self.bias))

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "units": self.units, "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        })
        if self.activity_regularizer is not None:  # Keras lists it only when set
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Dense":
        config = {k: v for k, v in config.items() if k not in ("quantization_config", "lora_rank",
                                                                 "lora_alpha")}
        return super().from_config(config)

    @classmethod
    def from_linear(cls, linear, activation=None, name: str | None = None) -> "Dense":
        """A built Dense holding a ``Linear``'s weights (kernel = weightᵀ), plus ``activation``."""
        weight = getattr(linear, "weight", None)
        if weight is None or getattr(weight, "ndim", 0) != 2:
            raise TypeError(f"from_linear needs a linea.nn.Linear, got {type(linear).__name__}")
        out_features, in_features = weight.shape
        bias = getattr(linear, "bias", None)
        layer = cls(out_features, activation=activation, use_bias=bias is not None, name=name,
                    dtype=_dtype.from_numpy_dtype(weight._data.dtype).name)
        layer._ensure_built((None, in_features))
        layer.kernel._data[...] = weight._data.T
        if bias is not None:
            layer.bias._data[...] = bias._data
        return layer

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, units={self.units}, "
                f"activation={activations.serialize(self.activation)!r}")


_RANK_HINT = ("Dense needs a batch axis: give x[None, :] (or x.reshape(1, -1)) for one sample, "
              "or use linea.nn.Linear, which accepts 1-D input")
