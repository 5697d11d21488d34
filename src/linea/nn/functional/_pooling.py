"""max_pool2d, avg_pool2d and adaptive_avg_pool2d over (N, C, H, W), each with its gradient.

A pooling window at output position (oh, ow) covers rows oh·stride − pad_top …
(+ dilation·(kernel − 1)) and the columns likewise. Windows are visited one kernel
offset at a time as strided slices of the padded input, so no patch matrix is built.
``max_pool2d_nchw`` and ``avg_pool2d_nchw`` take explicit (top, bottom, left, right)
padding: PyTorch pads both sides equally, Keras's ``padding="same"`` pads the end more.
"""
from __future__ import annotations

import math

from linea import _dtype
from linea._autograd import needs_grad, record
from linea._errors import ShapeError
from linea._ops_shape import stack
from linea._tensor import Tensor
from linea.backend import quiet, space_of
from linea.nn.functional._activation import _tensor as _as_tensor
from linea.nn.functional._conv import _pair

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_pool2d_nchw",
           "avg_pool2d_nchw", "pooled_size"]

_make = Tensor._make


def pooled_size(size: int, kernel: int, stride: int, before: int, after: int, dilation: int = 1,
                ceil_mode: bool = False) -> int:
    """Output length of a pooling along one axis (PyTorch's rule, ``ceil_mode`` included)."""
    span = size + before + after - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + before:  # the last window must start inside the input
        out -= 1
    return out


def _prepare(input, name: str) -> tuple[Tensor, bool]:
    input = input if isinstance(input, Tensor) else _as_tensor(input, name)
    if input.ndim not in (3, 4):
        raise ShapeError(f"{name} expects a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{input.shape}")
    return (input.unsqueeze(0), True) if input.ndim == 3 else (input, False)


def _low_precision(input: Tensor) -> bool:
    return input.dtype in (_dtype.bfloat16, _dtype.float16)


def _filled(x, widths, fill):
    """x (N, C, H, W) padded by widths ((top, bottom), (left, right)) with ``fill``."""
    (top, bottom), (left, right) = widths
    if not (top or bottom or left or right):
        return x
    space = space_of(x)
    n, c, h, w = x.shape
    out = space.full((n, c, h + top + bottom, w + left + right), fill, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _window(padded, i, j, out_hw, stride, dilation):
    (oh, ow), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return (slice(None), slice(None), slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _geometry(x, kernel, stride, padding4, dilation, ceil_mode, name):
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, bottom, left, right = padding4
    h, w = x.shape[2], x.shape[3]
    oh = pooled_size(h, kh, sh, top, bottom, dh, ceil_mode)
    ow = pooled_size(w, kw, sw, left, right, dw, ceil_mode)
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"{name}: the input of spatial size ({h}, {w}) is smaller than the "
                         f"pooling window ({dh * (kh - 1) + 1}, {dw * (kw - 1) + 1}) with padding "
                         f"{padding4}; the output would be ({oh}, {ow})")
    # ceil_mode's last window may run past the padding: pad that far too (it is never counted)
    extra_h = max(0, (oh - 1) * sh + dh * (kh - 1) + 1 - (h + top + bottom))
    extra_w = max(0, (ow - 1) * sw + dw * (kw - 1) + 1 - (w + left + right))
    return (oh, ow), ((top, bottom + extra_h), (left, right + extra_w))


def max_pool2d_nchw(input: Tensor, kernel_size, stride, padding4, dilation=(1, 1),
                    ceil_mode: bool = False) -> Tensor:
    """The largest value of each window, padding never chosen; gradient to the first maximum.

    A NaN in a window wins (as in PyTorch); ties go to the first position in row-major order.
    """
    if _low_precision(input):  # exact in float32; the result rounds back without change
        return max_pool2d_nchw(input.float(), kernel_size, stride, padding4, dilation,
                               ceil_mode).to(input.dtype)
    x = input._data
    space = space_of(x)
    out_hw, widths = _geometry(x, kernel_size, stride, padding4, dilation, ceil_mode, "max_pool2d")
    padded = _filled(x, widths, -math.inf)
    kh, kw = kernel_size
    best = index = None
    for i in range(kh):
        for j in range(kw):
            window = padded[_window(padded, i, j, out_hw, stride, dilation)]
            if best is None:
                best, index = window, space.zeros(window.shape, dtype=space.int32)
                continue
            take = (window > best) | space.isnan(window)
            best = space.where(take, window, best)
            index = space.where(take, space.asarray(i * kw + j, dtype=space.int32), index)
    result = _make(space.asarray(best, copy=True))
    if needs_grad(input):
        (top, _), (left, _) = widths

        def backward(grad):
            grad_padded = space.zeros(padded.shape, dtype=grad.dtype)
            zero = space.zeros((), dtype=grad.dtype)
            for i in range(kh):
                for j in range(kw):
                    where = _window(padded, i, j, out_hw, stride, dilation)
                    grad_padded[where] = grad_padded[where] + space.where(index == i * kw + j, grad, zero)
            return (grad_padded[:, :, top:top + x.shape[2], left:left + x.shape[3]],)

        record(result, "MaxPool2d", (input,), backward)
    return result


def _divisors(size, kernel, stride, before, after, out, count_padding):
    """How many positions each output window along one axis averages over."""
    counts = []
    for position in range(out):
        start = position * stride - before
        end = min(start + kernel, size + after)
        if count_padding:
            counts.append(end - start)
        else:
            counts.append(min(end, size) - max(start, 0))
    return counts


def avg_pool2d_nchw(input: Tensor, kernel_size, stride, padding4, ceil_mode: bool = False,
                    count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """The mean of each window: its sum divided by the window's size.

    The size counts the zero padding when ``count_include_pad`` (never the part of a
    ``ceil_mode`` window past the padding), as PyTorch; ``divisor_override`` replaces it.
    """
    if _low_precision(input):  # summed in float32, rounded once
        return avg_pool2d_nchw(input.float(), kernel_size, stride, padding4, ceil_mode,
                               count_include_pad, divisor_override).to(input.dtype)
    x = input._data
    space = space_of(x)
    out_hw, widths = _geometry(x, kernel_size, stride, padding4, (1, 1), ceil_mode, "avg_pool2d")
    padded = _filled(x, widths, 0)
    (kh, kw), (sh, sw) = kernel_size, stride
    top, bottom, left, right = padding4
    if divisor_override is not None:
        divisor = space.asarray(float(divisor_override), dtype=x.dtype)
    else:
        rows = _divisors(x.shape[2], kh, sh, top, bottom, out_hw[0], count_include_pad)
        cols = _divisors(x.shape[3], kw, sw, left, right, out_hw[1], count_include_pad)
        divisor = space.asarray([[float(r * c) for c in cols] for r in rows], dtype=x.dtype)
    total = None
    for i in range(kh):
        for j in range(kw):
            window = padded[_window(padded, i, j, out_hw, stride, (1, 1))]
            total = window if total is None else total + window
    result = _make(total / divisor)
    if needs_grad(input):
        def backward(grad):
            share = grad / divisor
            grad_padded = space.zeros(padded.shape, dtype=grad.dtype)
            for i in range(kh):
                for j in range(kw):
                    where = _window(padded, i, j, out_hw, stride, (1, 1))
                    grad_padded[where] = grad_padded[where] + share
            return (grad_padded[:, :, top:top + x.shape[2], left:left + x.shape[3]],)

        record(result, "AvgPool2d", (input,), backward)
    return result


def _torch_padding(kernel, padding, name):
    top, left = _pair(padding, "padding")
    if top < 0 or left < 0 or top > kernel[0] // 2 or left > kernel[1] // 2:
        raise ValueError(f"{name}: padding {padding!r} must be non-negative and at most half the "
                         f"kernel size {kernel}")
    return top, top, left, left


@quiet
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """Max pooling: (N, C, H, W) → (N, C, OH, OW), OH = ⌊(H + 2·pad − dil·(k − 1) − 1)/stride⌋ + 1.

    ``stride`` defaults to ``kernel_size``; padding (at most half the kernel) is never chosen.
    """
    if return_indices:
        raise NotImplementedError("max_pool2d(return_indices=True) is not implemented by linea")
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] else _pair(stride, "stride")
    input, unbatched = _prepare(input, "max_pool2d")
    out = max_pool2d_nchw(input, kernel, stride, _torch_padding(kernel, padding, "max_pool2d"),
                          _pair(dilation, "dilation"), ceil_mode)
    return out.squeeze(0) if unbatched else out


@quiet
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Average pooling: (N, C, H, W) → (N, C, OH, OW), sizes as ``max_pool2d`` (dilation 1)."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] else _pair(stride, "stride")
    if divisor_override is not None and (isinstance(divisor_override, bool) or divisor_override == 0):
        raise ValueError(f"divisor_override must be a non-zero number, got {divisor_override!r}")
    input, unbatched = _prepare(input, "avg_pool2d")
    out = avg_pool2d_nchw(input, kernel, stride, _torch_padding(kernel, padding, "avg_pool2d"),
                          ceil_mode, count_include_pad, divisor_override)
    return out.squeeze(0) if unbatched else out


def _adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


@quiet
def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average pooling to a fixed (OH, OW): cell i spans rows ⌊i·H/OH⌋ … ⌈(i+1)·H/OH⌉ − 1.

    ``output_size`` is an int, a pair, or a pair with None (that size kept).
    """
    input, unbatched = _prepare(input, "adaptive_avg_pool2d")
    h, w = input.shape[2], input.shape[3]
    sizes = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}")
    oh, ow = (h if sizes[0] is None else sizes[0]), (w if sizes[1] is None else sizes[1])
    if isinstance(oh, bool) or isinstance(ow, bool) or oh <= 0 or ow <= 0:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size!r}")
    if h == 0 or w == 0:
        raise ShapeError(f"adaptive_avg_pool2d expects a non-empty spatial size, got ({h}, {w})")
    rows, cols = _adaptive_bounds(h, oh), _adaptive_bounds(w, ow)
    if h % oh == 0 and w % ow == 0:  # equal cells: one reshape and a mean
        out = input.reshape(input.shape[0], input.shape[1], oh, h // oh, ow, w // ow).mean((3, 5))
    else:
        cells = [[input[:, :, r0:r1, c0:c1].mean((2, 3)) for c0, c1 in cols] for r0, r1 in rows]
        out = stack([stack(row, dim=-1) for row in cells], dim=-2)
    return out.squeeze(0) if unbatched else out
