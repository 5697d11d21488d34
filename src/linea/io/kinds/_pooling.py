"""Pooling over images (C, H, W): ``maxpool2d``, ``avgpool2d`` (window, stride, padding) and
``globalavgpool`` (the mean over H and W, keeping them as 1×1 or not)."""
from __future__ import annotations

from linea import nn
from linea.io.kinds._convolution import one_stride
from linea.io.kinds._kind import LayerKind, LayerSpec, row

__all__ = ["MAXPOOL2D", "AVGPOOL2D", "GLOBALAVGPOOL"]


def _window_row(keras_name: str, torch_name: str):
    def inspect_row(spec, index: int, convention: str) -> dict:
        extra = spec.extra
        name = keras_name if convention == "keras" else torch_name
        label = (f"{name}({tuple(extra['kernel'])}, stride={tuple(extra['stride'])}, "
                 f"padding={tuple(extra['padding4'])})")
        return row(spec, index, label, convention)

    return inspect_row


def _window_entries(spec, count_include_pad: bool = False) -> list[str]:
    extra = spec.extra
    top, bottom, left, right = extra["padding4"]
    if len({top, bottom, left, right}) != 1:
        raise ValueError(f"a {spec.kind} with padding {extra['padding4']} and stride "
                         f"{extra['stride']} cannot be written as a layers= entry (one stride and "
                         "one padding for both axes)")
    stride = one_stride(spec)
    kernel = extra["kernel"]
    if kernel[0] != kernel[1]:
        raise ValueError(f"a {spec.kind} with window {kernel} cannot be written as a layers= entry")
    text = f"{spec.kind}(kernel={kernel[0]}, stride={stride}, padding={top}"
    if count_include_pad:  # average pooling says whether the padding counts
        if extra.get("edge") == "replicate":
            raise ValueError("an average pooling with Keras's uneven 'same' padding cannot be "
                             "written as a layers= entry")
        text += f", count_include_pad={int(bool(extra['count_include_pad']))}"
    return [text + ")"]


def _global_row(spec, index: int, convention: str) -> dict:
    label = "GlobalAveragePooling2D" if convention == "keras" else "AdaptiveAvgPool2d(1)"
    return row(spec, index, label, convention)


def _even_padding(spec, name: str) -> tuple[int, int]:
    """(top, left) of a pooling PyTorch can pad: evenly, at most half the window."""
    extra = spec.extra
    top, bottom, left, right = extra["padding4"]
    if top != bottom or left != right or extra.get("edge") == "replicate":
        raise TypeError(f"a pooling padded unevenly ({extra['padding4']}: Keras's 'same') has "
                        f"no nn.{name} twin, whose padding is even on both sides")
    if top > extra["kernel"][0] // 2 or left > extra["kernel"][1] // 2:
        raise TypeError(f"a pooling padded by {(top, left)} with a {extra['kernel']} window has "
                        f"no nn.{name} twin (PyTorch pads at most half the window)")
    return top, left


def _max_module(spec) -> list:
    extra = spec.extra
    return [nn.MaxPool2d(extra["kernel"], extra["stride"], _even_padding(spec, "MaxPool2d"),
                         extra.get("dilation", 1))]


def _average_module(spec) -> list:
    extra = spec.extra
    return [nn.AvgPool2d(extra["kernel"], extra["stride"], _even_padding(spec, "AvgPool2d"),
                         count_include_pad=extra["count_include_pad"])]


def _global_modules(spec) -> list:
    if spec.extra.get("keepdims"):
        return [nn.AdaptiveAvgPool2d(1)]
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # Keras's (N, C): pool to (N, C, 1, 1), flatten


def _two(value) -> tuple:
    """A pooling module's size for both axes (the module checked it when it was built)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _window(module) -> dict:
    if module.ceil_mode:
        raise TypeError(f"{type(module).__name__}(ceil_mode=True) has no Keras pooling twin; it "
                        "cannot be converted")
    top, left = _two(module.padding)
    return {"kernel": _two(module.kernel_size), "stride": _two(module.stride),
            "padding4": (top, top, left, left)}


def _max_spec(module, shape, before) -> list:
    return [LayerSpec("maxpool2d", extra=dict(_window(module), dilation=_two(module.dilation)))]


def _average_spec(module, shape, before) -> list:
    extra = _window(module)
    if module.divisor_override is not None:
        raise TypeError("AvgPool2d(divisor_override=...) cannot be converted")
    top, _, left, _ = extra["padding4"]
    extra.update(count_include_pad=bool(module.count_include_pad) and (top or left) > 0,
                 edge="zeros")
    return [LayerSpec("avgpool2d", extra=extra)]


def _global_spec(module, shape, before) -> list:
    size = module.output_size
    if size not in (1, (1, 1), [1, 1]):
        raise TypeError(f"AdaptiveAvgPool2d(output_size={size}) cannot be converted; linea "
                        "converts the global average AdaptiveAvgPool2d(1)")
    return [LayerSpec("globalavgpool", extra={"keepdims": True})]


MAXPOOL2D = LayerKind("maxpool2d", None, _window_row("MaxPooling2D", "MaxPool2d"), _window_entries,
                      _max_module, (nn.MaxPool2d,), _max_spec, image=True)
AVGPOOL2D = LayerKind("avgpool2d", None, _window_row("AveragePooling2D", "AvgPool2d"),
                      lambda spec: _window_entries(spec, count_include_pad=True), _average_module,
                      (nn.AvgPool2d,), _average_spec, image=True)
GLOBALAVGPOOL = LayerKind("globalavgpool", None, _global_row, lambda spec: (
    ["adaptiveavgpool"] + ([] if spec.extra.get("keepdims") else ["flatten"])), _global_modules,
    (nn.AdaptiveAvgPool2d,), _global_spec, image=True,
    nn_count=lambda spec: 1 if spec.extra.get("keepdims") else 2)  # pool, then Flatten
