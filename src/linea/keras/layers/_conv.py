"""Keras's ``Conv2D``: y = activation(conv(x, kernel) + bias), kernel (kh, kw, in/groups, filters).

Computed by the same convolution as ``linea.nn.Conv2d`` (``F.conv2d_padded``): a
channels-last input (batch, H, W, C) is viewed channels-first, the kernel as
PyTorch's (filters, in/groups, kh, kw) weight, and the result viewed back.
"""
from __future__ import annotations

from linea._errors import ShapeError
from linea._tensor import Tensor
from linea.keras import activations, constraints, initializers, regularizers
from linea.keras.layers._layer import Layer, as_compute_tensor, check_shape_rank
from linea.nn.functional._conv import conv2d_padded

__all__ = ["Conv2D", "same_padding", "spatial_pair", "data_format_of"]


def spatial_pair(value, name: str) -> tuple[int, int]:
    """Keras's standardize_tuple: an int or a pair of positive ints."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in pair):
        raise ValueError(f"The `{name}` argument must be a tuple of 2 positive integers. "
                         f"Received {name}={value!r}")
    return pair


def data_format_of(data_format) -> str:
    data_format = "channels_last" if data_format is None else str(data_format).lower()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"The `data_format` argument must be one of {{'channels_first', "
                         f"'channels_last'}}. Received: data_format={data_format}")
    return data_format


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras's padding="same": output ⌈size/stride⌉, the odd pixel of padding at the end."""
    effective = (kernel - 1) * dilation + 1
    if stride == 1:
        total = effective - 1
    else:
        total = max(0, (-(-size // stride) - 1) * stride + effective - size)
    return total // 2, total - total // 2


def padding_of(padding) -> str:
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"The `padding` argument must be one of 'valid', 'same'. Received: "
                         f"padding={padding}")
    return padding


class Conv2D(Layer):
    """2-D convolution with Keras 3's semantics and kernel layout.

    y = activation(conv2d(x, kernel) + bias). Shapes: x (batch, H, W, C) →
    (batch, OH, OW, filters) (``data_format="channels_first"``: (batch, C, H, W)
    → (batch, filters, OH, OW)). ``kernel`` is (kh, kw, C/groups, filters) —
    PyTorch's Conv2d weight is ``kernel.transpose(3, 2, 0, 1)`` — ``bias`` (filters,).
    ``padding="valid"``: OH = ⌊(H − dilation·(kh − 1) − 1)/stride⌋ + 1;
    ``"same"``: OH = ⌈H/stride⌉, the odd row of zero padding at the bottom.

    Example::

        >>> import linea
        >>> from linea.keras.layers import Conv2D
        >>> layer = Conv2D(8, 3, padding="same")
        >>> layer(linea.ones(2, 6, 6, 1)).shape, layer.kernel.shape
        ((2, 6, 6, 8), (3, 3, 1, 8))
    """

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1), groups: int = 1, activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"Invalid value for argument `filters`. Expected a strictly positive "
                             f"value. Received filters={filters}.")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0 or filters % groups:
            raise ValueError(f"The number of filters must be evenly divisible by the number of "
                             f"groups. Received: groups={groups}, filters={filters}.")
        self.filters, self.groups = filters, groups
        self.kernel_size = spatial_pair(kernel_size, "kernel_size")
        self.strides = spatial_pair(strides, "strides")
        self.dilation_rate = spatial_pair(dilation_rate, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                             f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.padding = padding_of(padding)
        self.data_format = data_format_of(data_format)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = self.bias = None
        if self._batch_input_shape is not None:
            self._ensure_built(self._batch_input_shape)

    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape) -> None:
        check_shape_rank(self, input_shape, 4)
        channels = input_shape[self._channel_axis()]
        if channels is None or len(input_shape) != 4:
            raise ShapeError(f"Conv2D '{self.name}' needs a 4-D input with a known channel "
                             f"dimension, got {tuple(input_shape)}")
        if channels % self.groups:
            raise ValueError(f"The number of input channels must be evenly divisible by the number "
                             f"of groups. Received groups={self.groups}, but the input has "
                             f"{channels} channels (full input shape is {tuple(input_shape)}).")
        shape = self.kernel_size + (int(channels) // self.groups, self.filters)
        self.add_weight("kernel", shape, self.kernel_initializer, self.kernel_regularizer,
                        self.kernel_constraint)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer,
                            self.bias_constraint)
        self.built = True

    def _padding4(self, height: int, width: int) -> tuple[int, int, int, int]:
        if self.padding == "valid":
            return 0, 0, 0, 0
        return (same_padding(height, self.kernel_size[0], self.strides[0], self.dilation_rate[0])
                + same_padding(width, self.kernel_size[1], self.strides[1], self.dilation_rate[1]))

    def call(self, inputs, training: bool = False) -> Tensor:
        x = as_compute_tensor(inputs, self._compute_dtype)
        if x.ndim != 4:
            raise ShapeError(f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                             f"expected ndim=4, found ndim={x.ndim}. Full shape received: {x.shape}")
        channels_last = self.data_format == "channels_last"
        images = x.permute(0, 3, 1, 2) if channels_last else x
        expected = self.kernel.shape[2] * self.groups
        if images.shape[1] != expected:
            raise ShapeError(f"Conv2D '{self.name}' was built for {expected} input channels, got "
                             f"an input of shape {x.shape}")
        weight = self.compute_weight(self.kernel).permute(3, 2, 0, 1)
        out = conv2d_padded(images, weight, self.compute_weight(self.bias), self.strides,
                            self._padding4(images.shape[2], images.shape[3]),
                            self.dilation_rate, self.groups)
        return self.activation(out.permute(0, 2, 3, 1) if channels_last else out)

    def compute_output_shape(self, input_shape) -> tuple:
        shape = list(input_shape)
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate):
            size = shape[axis]
            if size is None:
                continue
            shape[axis] = -(-size // s) if self.padding == "same" else (size - d * (k - 1) - 1) // s + 1
        shape[self._channel_axis()] = self.filters
        return tuple(shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "filters": self.filters, "kernel_size": list(self.kernel_size),
            "strides": list(self.strides), "padding": self.padding,
            "data_format": self.data_format, "dilation_rate": list(self.dilation_rate),
            "groups": self.groups, "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        })
        return config
