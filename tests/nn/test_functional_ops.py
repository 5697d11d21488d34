"""Activations, normalisation, dropout, conv2d and losses: closed forms, finite differences, stability."""
import math

import numpy as np
import pytest

import linea
import linea.nn.functional as F
from linea import nn
from _helpers import assert_close, gradcheck

R = np.random.default_rng(5)


def off_kinks(shape):
    values = R.standard_normal(shape)
    values[np.abs(values) < 0.05] = 0.3
    return values


@pytest.mark.parametrize("name,function", [
    ("relu", F.relu), ("leaky_relu", lambda x: F.leaky_relu(x, 0.2)), ("gelu", F.gelu),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")), ("tanh", F.tanh),
    ("sigmoid", F.sigmoid), ("silu", F.silu), ("softplus", lambda x: F.softplus(x, 2.0, 3.0)),
    ("softmax", lambda x: F.softmax(x, 1)), ("log_softmax", lambda x: F.log_softmax(x, -1)),
    ("softmax0", lambda x: F.softmax(x, 0)),
])
def test_activation_gradients(name, function):
    gradcheck(function, off_kinks((3, 5)))


def test_activation_closed_forms():
    x = R.standard_normal((4, 6))
    t = linea.tensor(x)
    from scipy.special import erf

    assert_close(F.gelu(t), 0.5 * x * (1 + erf(x / math.sqrt(2))))
    assert_close(F.leaky_relu(t, 0.1), np.where(x > 0, x, 0.1 * x))
    e = np.exp(x - x.max(1, keepdims=True))
    assert_close(F.softmax(t, 1), e / e.sum(1, keepdims=True))
    assert_close(F.log_softmax(t, 1), np.log(e / e.sum(1, keepdims=True)))


def test_softmax_and_sigmoid_do_not_overflow():
    huge = linea.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    out = F.log_softmax(huge, 1)
    assert np.isfinite(out.numpy()).all() and out.numpy()[0, 0] == 0.0
    out.sum().backward()
    assert np.isfinite(huge.grad.numpy()).all()
    assert F.softmax(huge, 1).numpy().tolist() == [[1.0, 0.0, 0.0]]
    assert F.sigmoid(linea.tensor([1e4, -1e4])).numpy().tolist() == [1.0, 0.0]


def test_softmax_without_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        nn.Softmax()(linea.ones(2, 3))


def test_layer_norm_closed_form_and_gradients():
    x = R.standard_normal((2, 3, 4))
    w, b = R.standard_normal(4), R.standard_normal(4)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * w + b
    assert_close(F.layer_norm(linea.tensor(x), (4,), linea.tensor(w), linea.tensor(b)), expected)
    gradcheck(lambda x, w, b: F.layer_norm(x, (4,), w, b), x, w, b)
    gradcheck(lambda x: F.layer_norm(x, (3, 4)), x)


def test_layer_norm_fused_equals_composed():
    x = linea.tensor(R.standard_normal((5, 6)), requires_grad=True)
    w = linea.tensor(R.standard_normal(6), requires_grad=True)
    upstream = linea.tensor(R.standard_normal((5, 6)))
    (F.layer_norm(x, 6, w, None) * upstream).sum().backward()
    fused = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    centered = x - x.mean(-1, keepdim=True)
    composed = centered / ((centered * centered).mean(-1, keepdim=True) + 1e-5).sqrt() * w
    (composed * upstream).sum().backward()
    assert_close(fused[0], x.grad.numpy())
    assert_close(fused[1], w.grad.numpy())


def test_layer_norm_shape_error():
    with pytest.raises(linea.ShapeError, match=r"\[5\].*\(2, 4\)"):
        nn.LayerNorm(5)(linea.ones(2, 4))


class TestDropout:
    def test_training_zeroes_and_scales(self):
        x = linea.ones(10000)
        out = F.dropout(x, 0.25, generator=linea.Generator().manual_seed(0)).numpy()
        kept = out != 0
        assert np.allclose(out[kept], 1 / 0.75)
        assert abs(kept.mean() - 0.75) < 0.02

    def test_eval_is_identity(self):
        layer = nn.Dropout(0.5).eval()
        x = linea.ones(5)
        assert layer(x) is x

    def test_gradient_flows_through_kept_elements(self):
        x = linea.ones(1000, requires_grad=True)
        out = F.dropout(x, 0.5, generator=linea.Generator().manual_seed(1))
        out.sum().backward()
        assert np.array_equal(x.grad.numpy(), out.detach().numpy())

    def test_p_must_be_a_probability(self):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(1.5)

    def test_p_one_zeroes_everything(self):
        assert F.dropout(linea.ones(3), 1.0).numpy().tolist() == [0.0, 0.0, 0.0]


def reference_conv2d(x, w, b, stride, padding, dilation, groups):
    """A direct loop over output positions, in NumPy."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[1]), (padding[2], padding[3])))
    oh = (x.shape[2] - dilation * (kh - 1) - 1) // stride + 1
    ow = (x.shape[3] - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, oh, ow))
    per = o // groups
    for oc in range(o):
        g = oc // per
        for i in range(oh):
            for j in range(ow):
                patch = x[:, g * cg:(g + 1) * cg, i * stride:i * stride + dilation * (kh - 1) + 1:dilation,
                          j * stride:j * stride + dilation * (kw - 1) + 1:dilation]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3)) + (0 if b is None else b[oc])
    return out


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (1, 1, 1, 2), (2, 0, 1, 2), (3, 1, 2, 1)])
def test_conv2d_matches_direct_loops_and_finite_differences(stride, padding, dilation, groups):
    x = R.standard_normal((2, 4, 7, 6))
    w = R.standard_normal((6, 4 // groups, 3, 2))
    b = R.standard_normal(6)
    out = F.conv2d(linea.tensor(x), linea.tensor(w), linea.tensor(b), stride, padding, dilation, groups)
    assert_close(out, reference_conv2d(x, w, b, stride, (padding,) * 4, dilation, groups))
    small_x, small_w = x[:1, :, :5, :4], w[:4]
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
              small_x, small_w, b[:4])


def test_conv2d_same_padding_keeps_the_size():
    conv = nn.Conv2d(2, 3, kernel_size=(3, 4), padding="same")
    assert conv(linea.ones(1, 2, 5, 6)).shape == (1, 3, 5, 6)
    assert nn.Conv2d(2, 3, 3, padding="valid")(linea.ones(1, 2, 5, 6)).shape == (1, 3, 3, 4)


def test_conv2d_unbatched_input():
    assert nn.Conv2d(2, 3, 3)(linea.ones(2, 5, 5)).shape == (3, 3, 3)


def test_conv2d_errors():
    with pytest.raises(NotImplementedError, match="reflect"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(linea.ShapeError, match="3 channels"):
        nn.Conv2d(2, 4, 3)(linea.ones(1, 3, 5, 5))
    with pytest.raises(linea.ShapeError, match="smaller than"):
        nn.Conv2d(1, 1, 5)(linea.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


class TestLosses:
    def test_mse_and_l1_closed_forms_and_gradients(self):
        a, b = R.standard_normal((4, 3)), R.standard_normal((4, 3))
        assert_close(F.mse_loss(linea.tensor(a), linea.tensor(b)), np.mean((a - b) ** 2))
        assert_close(F.l1_loss(linea.tensor(a), linea.tensor(b), reduction="sum"), np.abs(a - b).sum())
        gradcheck(F.mse_loss, a, b)
        gradcheck(lambda x, y: F.l1_loss(x, y, reduction="none"), a, b)

    def test_loss_shapes_must_match(self):
        with pytest.raises(linea.ShapeError, match=r"\(4, 1\) and \(4,\)"):
            nn.MSELoss()(linea.ones(4, 1), linea.ones(4))

    def test_bad_reduction(self):
        with pytest.raises(ValueError, match="reduction"):
            nn.MSELoss(reduction="avg")

    def test_cross_entropy_closed_form(self):
        logits, target = R.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        expected = -logp[np.arange(5), target].mean()
        assert_close(F.cross_entropy(linea.tensor(logits), linea.tensor(target)), expected)

    @pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"reduction": "sum"},
                                        {"reduction": "none", "label_smoothing": 0.2}])
    def test_cross_entropy_gradients(self, kwargs):
        target = linea.tensor([0, 3, 1])
        gradcheck(lambda x: F.cross_entropy(x, target, **kwargs), R.standard_normal((3, 4)))

    def test_cross_entropy_with_probabilities_and_spatial_dims(self):
        probs = np.abs(R.standard_normal((3, 4)))
        probs /= probs.sum(1, keepdims=True)
        gradcheck(lambda x: F.cross_entropy(x, linea.tensor(probs)), R.standard_normal((3, 4)))
        target = linea.tensor(R.integers(0, 4, (2, 3, 5)))
        gradcheck(lambda x: F.cross_entropy(x, target), R.standard_normal((2, 4, 3, 5)))

    def test_cross_entropy_is_stable_for_huge_logits(self):
        logits = linea.tensor([[1e4, -1e4], [-1e4, 1e4]], requires_grad=True)
        loss = F.cross_entropy(logits, linea.tensor([1, 1]))
        assert np.isclose(loss.item(), 1e4) and np.isfinite(loss.item())
        loss.backward()
        assert np.isfinite(logits.grad.numpy()).all()

    def test_cross_entropy_rejects_bad_targets(self):
        with pytest.raises(IndexError, match="out of bounds for 4 classes"):
            F.cross_entropy(linea.zeros(2, 4), linea.tensor([0, 4]))
        with pytest.raises(linea.ShapeError, match="target of shape"):
            F.cross_entropy(linea.zeros(2, 4), linea.tensor([0, 1, 2]))

    def test_bce_with_logits_closed_form_stability_and_gradients(self):
        x, t = R.standard_normal((4, 3)), (R.random((4, 3)) > 0.5).astype(float)
        s = 1 / (1 + np.exp(-x))
        expected = -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()
        assert_close(F.binary_cross_entropy_with_logits(linea.tensor(x), linea.tensor(t)), expected)
        gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, linea.tensor(t)), x)
        pos = linea.tensor([1.0, 2.0, 3.0])
        gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, linea.tensor(t), pos_weight=pos), x)
        big = F.binary_cross_entropy_with_logits(linea.tensor([1e4, -1e4]), linea.tensor([0.0, 1.0]))
        assert np.isclose(big.item(), 1e4)
        zero = linea.tensor([0.0], requires_grad=True)
        F.binary_cross_entropy_with_logits(zero, linea.tensor([1.0])).backward()
        assert zero.grad.item() == -0.5  # sigmoid(0) - 1, exactly


@pytest.mark.parametrize("ignore", [-100, 1])
@pytest.mark.numpy_only(reason="the fused cross-entropy node is NumPy's kernel")
def test_fused_cross_entropy_equals_the_composed_path(ignore):
    logits = R.standard_normal((9, 5))
    target = np.array([0, 1, 4, 2, 1, 3, 0, 1, 2])
    fused_in = linea.tensor(logits, requires_grad=True)
    fused = F.cross_entropy(fused_in, linea.tensor(target), ignore_index=ignore)
    fused.backward()
    composed_in = linea.tensor(logits, requires_grad=True)
    log_probs = F.log_softmax(composed_in, 1)
    composed = F.nll_loss(log_probs, linea.tensor(target), ignore_index=ignore)
    composed.backward()
    assert fused.grad_fn.name == "CrossEntropy" and composed.grad_fn.name != "CrossEntropy"
    assert_close(fused, composed.numpy())
    assert_close(fused_in.grad, composed_in.grad.numpy())
    gradcheck(lambda x: F.cross_entropy(x, linea.tensor(target), ignore_index=ignore), logits)
