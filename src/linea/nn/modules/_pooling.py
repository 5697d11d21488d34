"""MaxPool2d, AvgPool2d and AdaptiveAvgPool2d over (N, C, H, W) images."""
from __future__ import annotations

from linea._tensor import Tensor
from linea.nn import functional as F
from linea.nn.modules._module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


class MaxPool2d(Module):
    """The maximum of each window: (N, C, H, W) → (N, C, OH, OW).

    OH = ⌊(H + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1 (⌈·⌉ with
    ``ceil_mode``); ``stride`` defaults to ``kernel_size``; padding is never chosen.

    Example::

        >>> import linea
        >>> linea.nn.MaxPool2d(2)(linea.arange(16.0).reshape(1, 1, 4, 4)).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        if return_indices:
            raise NotImplementedError("MaxPool2d(return_indices=True) is not implemented by linea")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input) -> Tensor:
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """The mean of each window: (N, C, H, W) → (N, C, OH, OW), sizes as MaxPool2d's.

    ``count_include_pad`` (default True) counts the zero padding in each window's size.

    Example::

        >>> import linea
        >>> linea.nn.AvgPool2d(2)(linea.arange(16.0).reshape(1, 1, 4, 4)).tolist()
        [[[[2.5, 4.5], [10.5, 12.5]]]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size: (N, C, H, W) → (N, C, *output_size).

    Cell i covers rows ⌊i·H/OH⌋ … ⌈(i+1)·H/OH⌉ − 1 (columns likewise);
    ``AdaptiveAvgPool2d(1)`` is the global average of each channel.

    Example::

        >>> import linea
        >>> linea.nn.AdaptiveAvgPool2d(1)(linea.ones(2, 3, 5, 7)).shape
        (2, 3, 1, 1)
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input) -> Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
