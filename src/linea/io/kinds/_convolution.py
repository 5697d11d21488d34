"""Convolution: ``conv2d`` (weight (out, in/groups, kh, kw), PyTorch's layout; images (C, H, W))."""
from __future__ import annotations

from linea import nn
from linea.io.kinds._kind import (LayerKind, LayerSpec, bias_shape, copied, dtype_name, holding,
                                  row, weight_and_bias)
from linea.nn.functional import conv2d_padding

__all__ = ["CONV2D"]


def _inspect_row(spec, index: int, convention: str) -> dict:
    extra, keras = spec.extra, convention == "keras"
    out, group_in, kh, kw = spec.weight.shape
    stride = tuple(extra["stride"])
    label = (f"Conv2D(filters={out}, kernel=({kh}, {kw}), strides={stride})" if keras
             else f"Conv2d({group_in * extra['groups']}, {out}, kernel_size=({kh}, {kw}), "
                  f"stride={stride})")
    shapes = (f"kernel {(kh, kw, group_in, out)}" if keras else f"weight {spec.weight.shape}") + \
        bias_shape(spec)
    return row(spec, index, label, convention, shapes, str(spec.weight.dtype), spec.parameter_count)


def one_stride(spec) -> int:
    """The stride of both axes; ValueError where a layers= entry cannot say it."""
    stride, padding4 = spec.extra["stride"], spec.extra["padding4"]
    if stride[0] != stride[1]:
        raise ValueError(f"a {spec.kind} with padding {padding4} and stride {stride} cannot be "
                         "written as a layers= entry (one stride and one padding for both axes)")
    return stride[0]


def _layers_entries(spec) -> list[str]:
    extra = spec.extra
    stride = one_stride(spec)
    top, bottom, left, right = extra["padding4"]
    dilation = extra["dilation"]
    if dilation[0] != dilation[1]:
        raise ValueError(f"a conv2d with dilation {dilation} cannot be written as a layers= entry")
    padding = top
    if stride == 1 and tuple(extra["padding4"]) == conv2d_padding(
            "same", spec.weight.shape[2:], tuple(dilation), (1, 1)):
        padding = "same"
    elif len({top, bottom, left, right}) != 1:
        raise ValueError(f"a conv2d with padding {extra['padding4']} cannot be written as a "
                         "layers= entry (one padding for all sides, or 'same')")
    return [f"conv2d(stride={stride}, padding={padding}, dilation={dilation[0]}, "
            f"groups={extra['groups']})"]


def _conv_module(spec) -> list:
    extra = spec.extra
    out_channels, group_in, kh, kw = spec.weight.shape
    top, bottom, left, right = extra["padding4"]
    padding = (top, left)
    if top != bottom or left != right:
        same = tuple(extra["stride"]) == (1, 1) and tuple(extra["padding4"]) == \
            conv2d_padding("same", (kh, kw), tuple(extra["dilation"]), (1, 1))
        if not same:
            raise TypeError(f"a convolution padded unevenly {extra['padding4']} (top, bottom, "
                            "left, right) with strides (Keras's 'same') has no nn.Conv2d twin, "
                            "whose padding is even on both sides")
        padding = "same"  # PyTorch's 'same' pads the odd pixel at the end, as Keras does
    return [holding(nn.Conv2d(group_in * extra["groups"], out_channels, (kh, kw),
                              stride=extra["stride"], padding=padding, dilation=extra["dilation"],
                              groups=extra["groups"], bias=spec.bias is not None,
                              dtype=dtype_name(spec.weight)), spec)]


def _conv_spec(module, shape, before) -> list:
    padding4 = conv2d_padding(module.padding, module.kernel_size, module.dilation, module.stride)
    return [LayerSpec("conv2d", copied(module.weight._data),
                      None if module.bias is None else copied(module.bias._data),
                      extra={"stride": module.stride, "padding4": padding4,
                             "dilation": module.dilation, "groups": module.groups})]


CONV2D = LayerKind("conv2d", "conv2d", _inspect_row, _layers_entries, _conv_module, (nn.Conv2d,),
                   _conv_spec, image=True, torch_entries=weight_and_bias,
                   keras_variables=("kernel", "bias"))
