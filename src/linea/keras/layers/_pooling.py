"""Keras's MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D, channels-last by default.

The windows are pooled by ``linea.nn.functional``'s pooling ops on the channels-first
view. ``padding="same"`` pads as Keras does (the odd pixel at the end). Where that
padding is even, averages exclude it; where it is uneven, Keras 3 on its PyTorch
backend repeats the edge pixels into the padding and averages over them — linea does
the same, so its outputs equal Keras's own (TensorFlow's backend excludes the padding).
"""
from __future__ import annotations

from linea._errors import ShapeError
from linea._ops_shape import cat
from linea._tensor import Tensor
from linea.keras.layers._conv import data_format_of, padding_of, same_padding, spatial_pair
from linea.keras.layers._layer import Layer, as_compute_tensor
from linea.nn.functional._pooling import avg_pool2d_nchw, max_pool2d_nchw

__all__ = ["MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D"]


def _replicate_edges(images: Tensor, padding4) -> Tensor:
    """(N, C, H, W) with its edge rows and columns repeated into (top, bottom, left, right)."""
    top, bottom, left, right = padding4
    parts = [images[:, :, :1]] * top + [images] + [images[:, :, -1:]] * bottom
    images = cat(parts, dim=2) if len(parts) > 1 else images
    parts = [images[:, :, :, :1]] * left + [images] + [images[:, :, :, -1:]] * right
    return cat(parts, dim=3) if len(parts) > 1 else images


class _Pooling2D(Layer):
    _kind = ""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.pool_size = spatial_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else spatial_pair(strides, "strides")
        self.padding = padding_of(padding)
        self.data_format = data_format_of(data_format)
        self.built = True

    def _images(self, inputs) -> Tensor:
        x = as_compute_tensor(inputs, self._compute_dtype)
        if x.ndim != 4:
            raise ShapeError(f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                             f"expected ndim=4, found ndim={x.ndim}. Full shape received: {x.shape}")
        return x.permute(0, 3, 1, 2) if self.data_format == "channels_last" else x

    def _restore(self, out: Tensor) -> Tensor:
        return out.permute(0, 2, 3, 1) if self.data_format == "channels_last" else out

    def _padding4(self, height: int, width: int) -> tuple[int, int, int, int]:
        if self.padding == "valid":
            return 0, 0, 0, 0
        return (same_padding(height, self.pool_size[0], self.strides[0])
                + same_padding(width, self.pool_size[1], self.strides[1]))

    def compute_output_shape(self, input_shape) -> tuple:
        shape = list(input_shape)
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis, k, s in zip(spatial, self.pool_size, self.strides):
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // s) if self.padding == "same" else (shape[axis] - k) // s + 1
        return tuple(shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"pool_size": list(self.pool_size), "padding": self.padding,
                       "strides": list(self.strides), "data_format": self.data_format})
        return config


class MaxPooling2D(_Pooling2D):
    """The maximum of each pool_size window: (batch, H, W, C) → (batch, OH, OW, C).

    ``strides`` defaults to ``pool_size``; OH = ⌊(H − pool)/stride⌋ + 1 ("valid") or
    ⌈H/stride⌉ ("same"; padding never chosen).

    Example::

        >>> import linea
        >>> from linea.keras.layers import MaxPooling2D
        >>> MaxPooling2D()(linea.ones(1, 4, 6, 3)).shape
        (1, 2, 3, 3)
    """

    def call(self, inputs, training: bool = False) -> Tensor:
        images = self._images(inputs)
        padding4 = self._padding4(images.shape[2], images.shape[3])
        return self._restore(max_pool2d_nchw(images, self.pool_size, self.strides, padding4))


class AveragePooling2D(_Pooling2D):
    """The mean of each pool_size window: (batch, H, W, C) → (batch, OH, OW, C).

    Sizes as MaxPooling2D's. With ``padding="same"`` see the module note on how the
    padding is averaged.

    Example::

        >>> import linea
        >>> from linea.keras.layers import AveragePooling2D
        >>> AveragePooling2D(2)(linea.ones(1, 4, 4, 1)).shape
        (1, 2, 2, 1)
    """

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs) -> None:
        super().__init__(pool_size, strides, padding, data_format, name, **kwargs)

    def call(self, inputs, training: bool = False) -> Tensor:
        images = self._images(inputs)
        padding4 = self._padding4(images.shape[2], images.shape[3])
        top, bottom, left, right = padding4
        if top != bottom or left != right:  # Keras's PyTorch backend: the edges repeated
            images, padding4 = _replicate_edges(images, padding4), (0, 0, 0, 0)
        return self._restore(avg_pool2d_nchw(images, self.pool_size, self.strides, padding4,
                                             count_include_pad=False))


class GlobalAveragePooling2D(Layer):
    """The mean over the spatial axes: (batch, H, W, C) → (batch, C), or (batch, 1, 1, C)
    with ``keepdims``.

    Example::

        >>> import linea
        >>> from linea.keras.layers import GlobalAveragePooling2D
        >>> GlobalAveragePooling2D()(linea.ones(2, 5, 5, 3)).shape
        (2, 3)
    """

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format_of(data_format)
        self.keepdims = bool(keepdims)
        self.built = True

    def _axes(self) -> tuple[int, int]:
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def call(self, inputs, training: bool = False) -> Tensor:
        x = as_compute_tensor(inputs, self._compute_dtype)
        if x.ndim != 4:
            raise ShapeError(f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                             f"expected ndim=4, found ndim={x.ndim}. Full shape received: {x.shape}")
        return x.mean(self._axes(), keepdim=self.keepdims)

    def compute_output_shape(self, input_shape) -> tuple:
        shape = list(input_shape)
        for axis in self._axes():
            shape[axis] = 1
        if not self.keepdims:
            shape = [size for axis, size in enumerate(shape) if axis not in self._axes()]
        return tuple(shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config
