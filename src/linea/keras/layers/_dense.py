"""Keras's ``Dense``: y = activation(x K + b), kernel (in, units), built at the first call."""
from __future__ import annotations

from linea import _dtype
from linea._errors import ShapeError
from linea._tensor import Tensor
from linea.backend import xp
from linea.keras import activations, constraints, initializers, regularizers
from linea.keras.layers._layer import Layer, as_compute_tensor, check_shape_rank
from linea.nn import functional as F
from linea.nn.functional._quantized import int8_linear

__all__ = ["Dense", "QUANTIZATION_MODES"]

#: Keras 3's quantization modes; linea implements "int8".
QUANTIZATION_MODES = ("int8", "float8", "int4", "gptq", "awq")


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
        self.quantization_mode = None
        self._pending_quantization = None
        self._packed = (None, None)  # (versions it was packed at, PackedWeight) once quantized
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
        if self._pending_quantization:
            self.quantize(self._pending_quantization)
            self._pending_quantization = None

    def call(self, inputs, training: bool = False) -> Tensor:
        x = as_compute_tensor(inputs, self._compute_dtype)
        check_shape_rank(self, x.shape, 2, _RANK_HINT)
        if x.shape[-1] != self.kernel.shape[0]:
            raise ShapeError(
                f"Dense layer '{self.name}' was built for inputs with last dimension "
                f"{self.kernel.shape[0]} (kernel {self.kernel.shape}), but got an input of shape "
                f"{x.shape} with last dimension {x.shape[-1]}"
            )
        if self.quantization_mode == "int8":
            return self.activation(self._int8_call(x))
        return self.activation(F.dense(x, self.compute_weight(self.kernel), self.compute_weight(self.bias)))

    # ---- int8 quantization (Keras 3's Dense.quantize) ------------------------------------
    def quantize(self, mode=None, type_check: bool = True, config=None) -> None:
        """Quantize the built kernel to int8 in place, with Keras 3's scheme and errors.

        ``kernel`` becomes int8 (in, units) with ``kernel_scale`` (units,), both
        non-trainable: kernel_scale = 127 / (max |K[:, j]| + 1e-7), kernel =
        clip(round(K · kernel_scale), ±127). Each call quantizes its input rows the same
        way and computes y = (xq @ kernel) / (x_scale · kernel_scale) + bias, the int8
        product summed exactly in int32 by linea's int8 kernel. Gradients reach the input
        (through the dequantized kernel) and the bias, as in Keras.
        """
        if isinstance(config, str):
            mode, config = config, None
        if mode is None and config is None:
            raise ValueError("You must provide either `mode` or `config` to `quantize`.")
        if mode not in QUANTIZATION_MODES:
            raise ValueError(f"Invalid quantization mode. Expected one of {QUANTIZATION_MODES}. "
                             f"Received: mode={mode}")
        if type_check and type(self) is not Dense:
            raise NotImplementedError(f"Layer {type(self).__name__} does not have a `quantize()` "
                                      f"method implemented.")
        if not self.built:
            raise ValueError(f"Cannot quantize a layer that isn't yet built. Layer '{self.name}' "
                             f"(of type '{type(self).__name__}') is not built yet.")
        if self.quantization_mode is not None:
            raise ValueError(f"Layer '{self.name}' is already quantized with dtype_policy="
                             f"'{self.dtype_policy_name}'. Received: mode={mode}")
        if self._compute_dtype == _dtype.float16:
            raise ValueError(f"Quantization mode='{mode}' doesn't work well with compute_dtype="
                             f"'float16'. Consider loading model/layer with another dtype policy "
                             f"such as 'mixed_bfloat16' or 'mixed_float16' before calling "
                             f"`quantize()`.")
        if mode != "int8" or config is not None:
            raise NotImplementedError(f"linea's Dense.quantize implements mode='int8' with Keras's "
                                      f"default config; got mode={mode!r}, config={config!r}")
        from linea.backend._int8 import quantize_weight
        from linea.keras.layers._layer import Variable

        quantized, scale = quantize_weight(self.kernel._data.astype("float32").T)
        del self.kernel  # Keras re-creates it: the weights become bias, kernel, kernel_scale
        self.kernel = Variable(xp.ascontiguousarray(quantized.T), "kernel", f"{self.name}/kernel",
                               trainable=False)
        self.kernel_scale = Variable(scale, "kernel_scale", f"{self.name}/kernel_scale",
                                     trainable=False)
        self.quantization_mode = "int8"

    @property
    def dtype_policy_name(self) -> str:
        """Keras's policy name: the dtype, or "int8_from_<dtype>" once quantized."""
        if self.quantization_mode:
            return f"{self.quantization_mode}_from_{self._policy.name}"
        return self._policy.name

    def _packed_kernel(self):
        from linea.backend._int8 import PackedWeight

        versions = (self.kernel._version, self.kernel_scale._version)
        if self._packed[0] != versions:  # packed once; again only after set_weights/assign
            self._packed = (versions, PackedWeight(self.kernel._data.T, self.kernel_scale._data))
        return self._packed[1]

    def _int8_call(self, x) -> Tensor:
        low = None if x.dtype == _dtype.float32 else x.dtype
        y = int8_linear(x if low is None else x.float(), self._packed_kernel(), None,
                        input_gradient=True)
        if low is not None:
            y = y.to(low)
        return y if self.bias is None else y + self.compute_weight(self.bias)

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
        if self.quantization_mode:
            config["dtype"] = {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy",
                               "config": {"mode": self.quantization_mode, "source_name": self._policy.name},
                               "registered_name": None}
        if self.activity_regularizer is not None:  # Keras lists it only when set
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Dense":
        config = {k: v for k, v in config.items() if k not in ("quantization_config", "lora_rank",
                                                                 "lora_alpha")}
        dtype = config.get("dtype")
        mode = None
        if isinstance(dtype, dict) and dtype.get("class_name") == "QuantizedDTypePolicy":
            mode = (dtype.get("config") or {}).get("mode")
            if mode != "int8":
                raise ValueError(f"linea reads int8-quantized Dense layers; this one is {mode!r}")
        layer = super().from_config(config)
        if mode and layer.built:
            layer.quantize(mode)
        else:
            layer._pending_quantization = mode  # quantized as soon as it is built, as Keras does
        return layer

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
