"""Conv2d: a 2-D convolution computed on Linear's matmul path (im2col)."""
from __future__ import annotations

from linea.backend import xp
from linea._tensor import Tensor
from linea.nn import functional as F
from linea.nn.functional._conv import _pair
from linea.nn.modules._linear import _check_size, _factory_dtype, reset_affine_parameters
from linea.nn.modules._module import Module
from linea.nn.modules._parameter import Parameter

__all__ = ["Conv2d"]


class Conv2d(Module):
    """2-D cross-correlation: (N, C_in, H, W) → (N, C_out, OH, OW).

    OH = ⌊(H + pad_top + pad_bottom − dilation·(kh−1) − 1) / stride⌋ + 1 (OW likewise).
    ``weight`` is (C_out, C_in/groups, kh, kw), ``bias`` (C_out,); both start as
    U(±1/√fan_in) with fan_in = C_in/groups·kh·kw, as in PyTorch. ``padding``
    is an int, a pair, ``'valid'`` or ``'same'``; only ``padding_mode='zeros'``.

    Example::

        >>> import linea
        >>> conv = linea.nn.Conv2d(1, 8, kernel_size=3, padding=1)
        >>> conv(linea.ones(2, 1, 8, 8)).shape
        (2, 8, 8, 8)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"padding_mode={padding_mode!r} is not implemented; linea's Conv2d supports 'zeros'"
            )
        self.in_channels = _check_size(in_channels, "in_channels", "Conv2d")
        self.out_channels = _check_size(out_channels, "out_channels", "Conv2d")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"both be divisible by groups ({groups})"
            )
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid', an int or a pair, got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding")
        self.groups = groups
        self.padding_mode = padding_mode
        numpy_dtype = _factory_dtype(device, dtype)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(xp.empty(shape, numpy_dtype))
        if bias:
            self.bias = Parameter(xp.empty((out_channels,), numpy_dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, generator=None) -> None:
        """U(±1/√fan_in) for weight (PyTorch's kaiming_uniform_(a=√5)) and bias."""
        reset_affine_parameters(self.weight, self.bias, generator)

    def forward(self, input: Tensor) -> Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"  # PyTorch prints padding=same unquoted
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
