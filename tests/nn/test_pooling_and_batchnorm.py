"""Pooling and batch normalization: direct NumPy loops, finite differences, running statistics."""
import math

import numpy as np
import pytest

import linea
import linea.nn.functional as F
from linea import nn
from _helpers import assert_close, gradcheck

R = np.random.default_rng(31)


def reference_pool(x, kernel, stride, pad, op, ceil_mode=False, count_include_pad=True):
    """A loop over output positions: the window's max, or its sum over the counted size."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    n, c, h, w = x.shape

    def size(length, k, s, p):
        span = length + 2 * p - k
        out = (-(-span // s) if ceil_mode else span // s) + 1
        return out - 1 if ceil_mode and (out - 1) * s >= length + p else out

    oh, ow = size(h, kh, sh, ph), size(w, kw, sw, pw)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - ph, j * sw - pw
            r1, c1 = min(r0 + kh, h + ph), min(c0 + kw, w + pw)
            rows = slice(max(r0, 0), min(r1, h))
            cols = slice(max(c0, 0), min(c1, w))
            window = x[:, :, rows, cols]
            if op == "max":
                out[:, :, i, j] = window.max(axis=(2, 3))
            else:
                counted = (r1 - r0) * (c1 - c0) if count_include_pad else window.shape[2] * window.shape[3]
                out[:, :, i, j] = window.sum(axis=(2, 3)) / counted
    return out


POOLS = [((2, 2), (2, 2), (0, 0), False), ((3, 3), (2, 2), (1, 1), False), ((3, 2), (1, 2), (1, 0), False),
         ((2, 2), (2, 2), (0, 0), True), ((3, 3), (2, 2), (1, 1), True), ((2, 3), (3, 2), (1, 1), True)]


@pytest.mark.parametrize("kernel,stride,pad,ceil_mode", POOLS, ids=str)
def test_max_pool2d_matches_loops_and_finite_differences(kernel, stride, pad, ceil_mode):
    x = R.standard_normal((2, 3, 7, 6))
    out = F.max_pool2d(linea.tensor(x), kernel, stride, pad, ceil_mode=ceil_mode)
    assert_close(out, reference_pool(x, kernel, stride, pad, "max", ceil_mode))
    gradcheck(lambda t: F.max_pool2d(t, kernel, stride, pad, ceil_mode=ceil_mode), x[:1, :2])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("kernel,stride,pad,ceil_mode", POOLS, ids=str)
def test_avg_pool2d_matches_loops_and_finite_differences(kernel, stride, pad, ceil_mode, count_include_pad):
    x = R.standard_normal((2, 3, 7, 6))
    out = F.avg_pool2d(linea.tensor(x), kernel, stride, pad, ceil_mode, count_include_pad)
    assert_close(out, reference_pool(x, kernel, stride, pad, "avg", ceil_mode, count_include_pad))
    gradcheck(lambda t: F.avg_pool2d(t, kernel, stride, pad, ceil_mode, count_include_pad), x[:1, :2])


def test_max_pool2d_dilation_and_ties_send_the_gradient_to_the_first_maximum():
    x = linea.tensor([[[[1.0, 1.0], [1.0, 1.0]]]], requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]
    x = R.standard_normal((1, 2, 7, 7))
    out = F.max_pool2d(linea.tensor(x), 2, 1, dilation=2)
    expected = np.stack([x[:, :, i:i + 3:2, j:j + 3:2].max(axis=(2, 3))
                         for i in range(5) for j in range(5)], -1).reshape(1, 2, 5, 5)
    assert_close(out, expected)
    gradcheck(lambda t: F.max_pool2d(t, 2, 1, dilation=2), x)


def test_avg_pool2d_divisor_override_and_unbatched_input():
    x = R.standard_normal((3, 4, 4))
    out = F.avg_pool2d(linea.tensor(x), 2, divisor_override=3)
    assert out.shape == (3, 2, 2)
    assert_close(out, x.reshape(3, 2, 2, 2, 2).sum(axis=(2, 4)) / 3)


@pytest.mark.parametrize("size,output", [((6, 8), (3, 4)), ((7, 5), (3, 2)), ((5, 5), 1),
                                         ((4, 6), (None, 4))])
def test_adaptive_avg_pool2d_cells_and_gradient(size, output):
    x = R.standard_normal((2, 3) + size)
    out = F.adaptive_avg_pool2d(linea.tensor(x), output)
    oh, ow = (output, output) if isinstance(output, int) else output
    oh, ow = oh or size[0], ow or size[1]
    expected = np.zeros((2, 3, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = i * size[0] // oh, math.ceil((i + 1) * size[0] / oh)
            c0, c1 = j * size[1] // ow, math.ceil((j + 1) * size[1] / ow)
            expected[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    assert_close(out, expected)
    gradcheck(lambda t: F.adaptive_avg_pool2d(t, output), x[:1, :1])


def test_pooling_errors_say_what_is_wrong():
    with pytest.raises(linea.ShapeError, match="4-D"):
        F.max_pool2d(linea.ones(4, 4), 2)
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(linea.ones(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(linea.ShapeError, match="smaller than the pooling window"):
        F.avg_pool2d(linea.ones(1, 1, 2, 2), 3)
    with pytest.raises(NotImplementedError, match="return_indices"):
        nn.MaxPool2d(2, return_indices=True)
    with pytest.raises(ValueError, match="positive"):
        F.adaptive_avg_pool2d(linea.ones(1, 1, 4, 4), 0)


def reference_batch_norm(x, weight, bias, eps, axes):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = [1] * x.ndim
    shape[1] = -1
    return (x - mean) / np.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (3, 3, 4, 5)])
def test_batch_norm_training_closed_form_gradients_and_running_statistics(shape):
    x = R.standard_normal(shape) * 2 + 1
    weight, bias = R.standard_normal(3), R.standard_normal(3)
    axes = tuple(a for a in range(len(shape)) if a != 1)
    running_mean, running_var = linea.tensor(np.full(3, 0.5)), linea.tensor(np.full(3, 2.0))
    out = F.batch_norm(linea.tensor(x), running_mean, running_var, linea.tensor(weight),
                       linea.tensor(bias), training=True, momentum=0.2, eps=1e-3)
    assert_close(out, reference_batch_norm(x, weight, bias, 1e-3, axes))
    n = x.size // 3
    assert_close(running_mean, 0.8 * 0.5 + 0.2 * x.mean(axis=axes))
    assert_close(running_var, 0.8 * 2.0 + 0.2 * x.var(axis=axes) * n / (n - 1))
    gradcheck(lambda t, w, b: F.batch_norm(t, None, None, w, b, training=True), x, weight, bias)


def test_batch_norm_eval_uses_the_running_statistics_and_is_affine():
    x = R.standard_normal((4, 3, 2))
    mean, var = R.standard_normal(3), R.random(3) + 0.5
    weight, bias = R.standard_normal(3), R.standard_normal(3)
    out = F.batch_norm(linea.tensor(x), linea.tensor(mean), linea.tensor(var), linea.tensor(weight),
                       linea.tensor(bias), eps=1e-5)
    expected = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5) * weight[:, None] + bias[:, None]
    assert_close(out, expected)
    gradcheck(lambda t, w, b: F.batch_norm(t, linea.tensor(mean), linea.tensor(var), w, b), x, weight, bias)


def test_batchnorm_modules_track_batches_and_switch_to_running_stats_in_eval():
    norm = nn.BatchNorm2d(2, momentum=None)
    first, second = R.standard_normal((3, 2, 2, 2)), R.standard_normal((3, 2, 2, 2))
    norm(linea.tensor(first.astype(np.float32)))
    norm(linea.tensor(second.astype(np.float32)))
    assert int(norm.num_batches_tracked.item()) == 2
    means = (first.mean(axis=(0, 2, 3)) + second.mean(axis=(0, 2, 3))) / 2  # cumulative average
    assert_close(norm.running_mean, means.astype(np.float32))
    norm.eval()
    x = R.standard_normal((1, 2, 2, 2)).astype(np.float32)
    expected = (x - norm.running_mean.numpy()[:, None, None]) / np.sqrt(
        norm.running_var.numpy()[:, None, None] + 1e-5)
    assert_close(norm(linea.tensor(x)), expected)
    assert int(norm.num_batches_tracked.item()) == 2
    assert list(norm.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                       "num_batches_tracked"]


def test_batchnorm_without_running_stats_or_affine():
    norm = nn.BatchNorm1d(3, affine=False, track_running_stats=False).eval()
    assert list(norm.state_dict()) == []
    x = R.standard_normal((6, 3))
    assert_close(norm(linea.tensor(x)), reference_batch_norm(x, np.ones(3), np.zeros(3), 1e-5, (0,)))


def test_batchnorm_errors_and_a_failed_step_changes_nothing():
    norm = nn.BatchNorm1d(3)
    with pytest.raises(linea.ShapeError, match="expected 2D or 3D input"):
        norm(linea.ones(2, 3, 4, 5))
    with pytest.raises(linea.ShapeError, match="expected 4D input"):
        nn.BatchNorm2d(3)(linea.ones(2, 3, 4))
    with pytest.raises(linea.ShapeError, match="4 channels"):
        norm(linea.ones(2, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        norm(linea.ones(1, 3))
    assert norm.running_mean.tolist() == [0.0, 0.0, 0.0]
    assert int(norm.num_batches_tracked.item()) == 0
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=1.5)
