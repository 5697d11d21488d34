"""conv2d as a matrix multiply over patches (im2col), on the same path as ``linear``.

``unfold_patches`` gathers every kernel-sized window of the (padded) input into
a row; the convolution is then ``linear(patches, weight.reshape(out, -1), bias)``
per group. The patch gather's gradient scatters back (col2im).
"""
from __future__ import annotations

from linea._autograd import needs_grad, record
from linea.backend import namespace_of, pad, quiet, to_host, xp
from linea._errors import ShapeError
from linea._ops_shape import cat
from linea._tensor import Tensor
from linea.nn.functional._linear import as_float_input, linear
from linea._autocast import cast_for

__all__ = ["conv2d", "conv2d_padded", "unfold_patches", "conv2d_padding"]


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def conv2d_padding(padding, kernel_size, dilation, stride) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding for an int, a pair, 'valid' or 'same'."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        if stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        pads = []
        for k, d in zip(kernel_size, dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    if isinstance(padding, str):
        raise ValueError(f"padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    top, left = _pair(padding, "padding")
    if top < 0 or left < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return top, top, left, left


def unfold_patches(input: Tensor, kernel_size, stride, padding4, dilation) -> Tensor:
    """(N, C, H, W) → (N, OH, OW, C·kh·kw): one row per output position (im2col).

    Arrays of other CPU libraries are unfolded on the host and moved back (the strided
    window copies are NumPy's); their gradient takes the same way back.
    """
    if type(input._data) is not xp.ndarray:
        space = namespace_of(input._data)
        host_input = Tensor._make(to_host(input._data))
        host_input._requires_grad = input._requires_grad
        host = unfold_patches(host_input, kernel_size, stride, padding4, dilation)
        result = Tensor._make(space.asarray(host._data))
        if needs_grad(input):
            rule = host.grad_fn.backward

            def via_host(grad):
                (grad_host,) = rule(to_host(grad))
                return (space.asarray(grad_host),)

            record(result, "Im2col", (input,), via_host)
        return result
    x = input._data
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    top, bottom, left, right = padding4
    padded = pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding4) else x
    ph, pw = padded.shape[2], padded.shape[3]
    oh = (ph - dh * (kh - 1) - 1) // sh + 1
    ow = (pw - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"conv2d: the input of spatial size ({h}, {w}) padded to ({ph}, {pw}) is smaller "
            f"than the dilated kernel ({dh * (kh - 1) + 1}, {dw * (kw - 1) + 1})"
        )
    patches = xp.empty((n, oh, ow, c, kh, kw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                            j * dw: j * dw + sw * (ow - 1) + 1: sw]
            patches[:, :, :, :, i, j] = window.transpose(0, 2, 3, 1)
    out = patches.reshape(n, oh, ow, c * kh * kw)
    result = Tensor._make(out)
    if needs_grad(input):
        def backward(grad):
            grad6 = grad.reshape(n, oh, ow, c, kh, kw)
            grad_padded = xp.zeros((n, c, ph, pw), grad.dtype)
            for i in range(kh):
                for j in range(kw):
                    grad_padded[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                                j * dw: j * dw + sw * (ow - 1) + 1: sw] += \
                        grad6[:, :, :, :, i, j].transpose(0, 3, 1, 2)
            return (grad_padded[:, :, top: ph - bottom, left: pw - right],)

        record(result, "Im2col", (input,), backward)
    return result


@quiet
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation: (N, C_in, H, W) → (N, C_out, OH, OW).

    weight is (C_out, C_in/groups, kh, kw); bias (C_out,) or None. An unbatched
    (C_in, H, W) input gives (C_out, OH, OW).
    """
    if getattr(weight, "ndim", None) != 4:
        raise ShapeError(f"conv2d expects a 4-D weight (C_out, C_in/groups, kh, kw), got "
                         f"{getattr(weight, 'shape', weight)}")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    padding4 = conv2d_padding(padding, tuple(weight.shape[2:]), dilation, stride)
    return conv2d_padded(input, weight, bias, stride, padding4, dilation, groups)


def conv2d_padded(input: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
                  padding4: tuple[int, int, int, int], dilation: tuple[int, int],
                  groups: int = 1) -> Tensor:
    """``conv2d`` with explicit (top, bottom, left, right) zero padding (Keras pads unevenly)."""
    input, weight, bias = cast_for("conv2d", input, weight, bias)
    input = as_float_input(input, weight, "conv2d()")
    unbatched = input.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    if input.ndim != 4:
        raise ShapeError(f"conv2d expects a 3-D or 4-D input (N, C, H, W), got {input.shape}")
    out_channels, group_in, kh, kw = weight.shape
    channels = input.shape[1]
    if groups < 1 or channels != group_in * groups or out_channels % groups:
        raise ShapeError(
            f"conv2d: an input with {channels} channels and groups={groups} needs a weight of "
            f"shape (C_out, {channels // max(groups, 1)}, kh, kw) with C_out divisible by groups; "
            f"got weight {weight.shape}"
        )
    group_out = out_channels // groups
    outputs = []
    for g in range(groups):
        part = input if groups == 1 else input[:, g * group_in:(g + 1) * group_in]
        patches = unfold_patches(part, (kh, kw), stride, padding4, dilation)
        kernel = weight if groups == 1 else weight[g * group_out:(g + 1) * group_out]
        part_bias = bias if bias is None or groups == 1 else bias[g * group_out:(g + 1) * group_out]
        outputs.append(linear(patches, kernel.reshape(group_out, -1), part_bias))
    out = outputs[0] if groups == 1 else cat(outputs, dim=3)
    out = out.permute(0, 3, 1, 2)
    return out.squeeze(0) if unbatched else out
