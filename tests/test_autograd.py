"""Autograd: every differentiable op against finite differences (float64), and the tape's rules."""
import numpy as np
import pytest

import linea
from _helpers import gradcheck

R = np.random.default_rng(7)


def rand(*shape, positive=False):
    values = R.standard_normal(shape)
    return np.abs(values) + 0.5 if positive else values


BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)),
    ((4,), (2, 3, 4)),
    ((), (2, 3)),
    ((2, 1, 4), (2, 3, 1)),
]


@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_binary_ops_with_broadcasting(op, shapes):
    a, b = rand(*shapes[0]), rand(*shapes[1], positive=op == "div")
    functions = {
        "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y, "maximum": linea.Tensor.maximum, "minimum": linea.Tensor.minimum,
    }
    gradcheck(functions[op], a, b)


@pytest.mark.parametrize("op", [
    lambda x: x + 2.5, lambda x: 2.5 + x, lambda x: x - 1, lambda x: 1 - x, lambda x: x * 3,
    lambda x: 3 * x, lambda x: x / 4, lambda x: 4 / x, lambda x: -x, lambda x: x ** 2,
    lambda x: x ** 3.5, lambda x: 2 ** x,
], ids=["add", "radd", "sub", "rsub", "mul", "rmul", "div", "rdiv", "neg", "sq", "pow", "rpow"])
def test_ops_with_python_scalars(op):
    gradcheck(op, rand(3, 4, positive=True))


def test_tensor_power_tensor():
    gradcheck(lambda x, y: x ** y, rand(3, 4, positive=True), rand(3, 4))


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "abs", "relu"])
def test_unary_ops(name):
    values = rand(3, 5, positive=name in ("log", "sqrt"))
    values[np.abs(values) < 0.05] = 0.3  # keep off the kinks of abs and relu
    gradcheck(lambda x: getattr(x, name)(), values)


def test_clamp():
    values = rand(4, 5)
    values[np.abs(np.abs(values) - 0.5) < 0.05] = 0.1
    gradcheck(lambda x: x.clamp(-0.5, 0.5), values)
    gradcheck(lambda x: x.clamp(min=0.0), values)


@pytest.mark.parametrize("a_shape,b_shape", [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
    ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((3, 4), (2, 4, 5)), ((1, 4), (4, 6)),
], ids=str)
def test_matmul(a_shape, b_shape):
    gradcheck(lambda x, y: x @ y, rand(*a_shape), rand(*b_shape))


@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_sum_and_mean(dim, keepdim):
    values = rand(2, 3, 4)
    gradcheck(lambda x: x.sum(dim, keepdim), values)
    gradcheck(lambda x: x.mean(dim, keepdim), values)


def test_var_and_std():
    values = rand(3, 5)
    gradcheck(lambda x: x.var(1), values)
    gradcheck(lambda x: x.var(0, keepdim=True, unbiased=False), values)
    gradcheck(lambda x: x.std(), values)


def test_max_min_along_dim():
    values = rand(3, 5)
    gradcheck(lambda x: x.max(1).values, values)
    gradcheck(lambda x: x.min(0, keepdim=True).values, values)
    gradcheck(lambda x: x.max(), values)


def test_max_of_ties_splits_the_gradient_evenly():
    x = linea.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]


def test_logsumexp_is_stable_and_differentiable():
    gradcheck(lambda x: x.logsumexp(1), rand(3, 4))
    big = linea.tensor([[1e4, 1e4]])
    assert np.isclose(big.logsumexp(1).item(), 1e4 + np.log(2))


@pytest.mark.parametrize("op", [
    lambda x: x.reshape(4, 6), lambda x: x.view(-1), lambda x: x.transpose(0, 2),
    lambda x: x.permute(2, 0, 1), lambda x: x.T, lambda x: x.unsqueeze(1),
    lambda x: x[:, :1].squeeze(1), lambda x: x.flatten(1), lambda x: x[1:, ::2, 1],
    lambda x: x[linea.tensor([0, 0, 1])], lambda x: x[x > 0], lambda x: x.clone(),
    pytest.param(lambda x: x[..., None].expand(2, 3, 4, 2), marks=pytest.mark.numpy_only(
        reason="array_api_strict refuses x[..., None] (newaxis after an ellipsis)")),
    lambda x: x.masked_fill(linea.tensor(np.arange(24).reshape(2, 3, 4) % 3 == 0), 0.0),
], ids=["reshape", "view", "transpose", "permute", "T", "unsqueeze", "squeeze", "flatten",
        "slice", "fancy-repeat", "boolmask", "clone", "expand", "masked_fill"])
def test_shape_and_index_ops(op):
    gradcheck(op, rand(2, 3, 4))


def test_cat_stack_where():
    gradcheck(lambda x, y: linea.cat([x, y], dim=1), rand(2, 3), rand(2, 5))
    gradcheck(lambda x, y: linea.stack([x, y], dim=1), rand(2, 3), rand(2, 3))
    condition = linea.tensor(R.standard_normal((2, 3)) > 0)
    gradcheck(lambda x, y: linea.where(condition, x, y), rand(2, 3), rand(3))


def test_dtype_casts_carry_gradients_back():
    x = linea.ones(3, requires_grad=True)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == linea.float32 and x.grad.tolist() == [2.0] * 3


class TestTapeRules:
    def test_gradients_accumulate_across_backward_calls(self):
        x = linea.tensor([1.0, 2.0], requires_grad=True)
        (x * 3).sum().backward()
        (x * 3).sum().backward()
        assert x.grad.tolist() == [6.0, 6.0]

    def test_reused_input_sums_its_gradients(self):
        x = linea.tensor([2.0], requires_grad=True)
        y = x * x + x
        y.backward()
        assert x.grad.tolist() == [5.0]

    def test_diamond_graph(self):
        x = linea.tensor([1.5], requires_grad=True)
        a = x * 2
        b = a.exp() + a * a
        b.backward()
        assert np.isclose(x.grad.item(), 2 * np.exp(3.0) + 8 * 1.5)

    def test_second_backward_needs_retain_graph(self):
        x = linea.ones(2, requires_grad=True)
        y = (x * x).sum()
        y.backward(retain_graph=True)
        y.backward()
        assert x.grad.tolist() == [4.0, 4.0]
        with pytest.raises(RuntimeError, match="second time"):
            y.backward()

    def test_non_scalar_backward_needs_gradient(self):
        y = linea.ones(2, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match="only for scalar outputs"):
            y.backward()
        y.backward(linea.tensor([1.0, 10.0]))

    def test_backward_of_tensor_without_grad(self):
        with pytest.raises(RuntimeError, match="does not require grad"):
            linea.ones(2).sum().backward()

    def test_gradient_shape_must_match(self):
        y = linea.ones(2, requires_grad=True) * 2
        with pytest.raises(linea.ShapeError, match=r"\(3,\).*\(2,\)"):
            y.backward(linea.ones(3))

    def test_non_leaves_have_no_grad_unless_retained(self):
        x = linea.ones(2, requires_grad=True)
        hidden = x * 2
        hidden.retain_grad()
        other = x * 3
        (hidden * other).sum().backward()
        assert hidden.grad.tolist() == [3.0, 3.0]
        assert other.grad is None and not other.is_leaf

    def test_detach_cuts_the_graph(self):
        x = linea.ones(2, requires_grad=True)
        y = (x * 2).detach()
        assert not y.requires_grad and y.grad_fn is None

    @pytest.mark.numpy_only(reason="read-only NumPy arrays: NumPy's memory model")
    def test_leaf_grads_do_not_alias(self):
        a = linea.ones(2, requires_grad=True)
        b = linea.ones(2, requires_grad=True)
        (a + b).sum().backward()
        a.grad._data *= 10
        assert b.grad.tolist() == [1.0, 1.0]

    def test_requires_grad_of_non_leaf_cannot_change(self):
        y = linea.ones(2, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match="leaf"):
            y.requires_grad = False

    def test_nothing_is_recorded_under_no_grad(self):
        x = linea.ones(2, requires_grad=True)
        with linea.no_grad():
            y = (x @ linea.ones(2, 3)).relu().sum()
        assert y.grad_fn is None and not y.requires_grad


class TestTypePromotion:
    def test_float32_stays_float32_against_scalars(self):
        x = linea.ones(2)
        assert (x * 2.0).dtype == linea.float32 and (2 + x).dtype == linea.float32

    def test_int_tensor_with_float_scalar_is_float32(self):
        assert (linea.tensor([1, 2]) * 0.5).dtype == linea.float32

    def test_int_tensor_with_float_tensor_takes_the_float_dtype(self):
        assert (linea.tensor([1, 2]) + linea.ones(2)).dtype == linea.float32

    def test_float32_with_float64_is_float64(self):
        assert (linea.ones(2) + linea.ones(2, dtype=linea.float64)).dtype == linea.float64

    def test_zero_dim_tensor_does_not_widen(self):
        assert (linea.ones(2) * linea.tensor(2.0, dtype=linea.float64)).dtype == linea.float32

    def test_int_division_gives_float32(self):
        assert (linea.tensor([3, 4]) / linea.tensor([2, 2])).tolist() == [1.5, 2.0]
        assert (linea.tensor([3, 4]) / 2).dtype == linea.float32

    @pytest.mark.numpy_only(reason="NumPy's own operator deferral")
    def test_numpy_array_on_the_left_defers_to_tensor(self):
        out = np.ones(2, np.float32) + linea.ones(2, requires_grad=True)
        assert isinstance(out, linea.Tensor) and out.requires_grad

    def test_comparisons_give_bool_tensors(self):
        x = linea.tensor([1.0, 2.0, 3.0])
        assert (x > 1.5).tolist() == [False, True, True]
        assert (x == linea.tensor([1.0, 0.0, 3.0])).dtype == linea.bool

    def test_sum_of_bool_is_int64_and_argmax(self):
        x = linea.tensor([[1.0, 5.0], [7.0, 2.0]])
        assert (x > 1.5).sum().item() == 3
        assert x.argmax(1).tolist() == [1, 0] and x.argmax().item() == 2
        assert x.max(dim=0).indices.tolist() == [1, 0]


def test_shared_non_leaf_reached_by_paths_of_different_length():
    # c feeds the output directly and through c*c: c's node must run after both consumers.
    gradcheck(lambda x: (lambda c: c / (c * c).sum(-1, keepdim=True))(x - 1.0),
              np.random.default_rng(0).standard_normal((3, 4)))


def test_blas_ready_copies_only_what_blas_cannot_take():
    from linea.backend import blas_ready

    contiguous = np.ones((3, 4), np.float32)
    assert blas_ready(contiguous) is contiguous
    assert blas_ready(contiguous.T) is contiguous.T.base or blas_ready(contiguous.T).flags.f_contiguous
    broadcast = np.broadcast_to(np.float32(1.0), (1, 512))  # what sum()'s backward hands on
    ready = blas_ready(broadcast)
    assert ready.flags.c_contiguous and np.array_equal(ready, broadcast)


def test_linear_gradients_through_a_broadcast_seed_are_exact():
    linea.manual_seed(0)
    layer = linea.nn.Linear(8, 5)
    x = linea.randn(1, 8, requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0], layer.weight.detach().numpy().sum(axis=0), rtol=1e-6)


class TestGradModeDecoratorsOnGenerators:
    """As torch's: a decorated generator runs its body in the mode; the caller keeps its own."""

    @pytest.mark.parametrize("decorator, inside", [
        (lambda: linea.no_grad(), False), (lambda: linea.enable_grad(), True),
        (lambda: linea.inference_mode(), False), (lambda: linea.set_grad_enabled(False), False)])
    def test_the_body_runs_in_the_mode_at_every_step(self, decorator, inside):
        outside = not inside

        @decorator()
        def steps():
            seen = []
            for _ in range(3):
                seen.append(linea.is_grad_enabled())
                received = yield linea.is_grad_enabled()
                seen.append(received)
            return seen

        with linea.set_grad_enabled(outside):
            generator = steps()
            assert next(generator) is inside
            assert linea.is_grad_enabled() is outside  # the caller's mode at the yield
            assert generator.send("a") is inside
            assert generator.send("b") is inside
            with pytest.raises(StopIteration) as stop:
                generator.send("c")
            assert stop.value.value == [inside, "a", inside, "b", inside, "c"]
            assert linea.is_grad_enabled() is outside

    def test_no_graph_is_recorded_inside_a_no_grad_generator(self):
        weight = linea.ones(3, requires_grad=True)

        @linea.no_grad()
        def outputs():
            for value in range(3):
                yield weight * value

        results = list(outputs())
        assert all(not result.requires_grad and result.grad_fn is None for result in results)
        assert (weight * 2).requires_grad  # outside, recording goes on

    def test_throw_and_close_run_in_the_mode_too(self):
        seen = []

        @linea.no_grad()
        def guarded():
            try:
                yield 1
            except KeyError:
                seen.append(("handler", linea.is_grad_enabled()))
                yield 2
            finally:
                seen.append(("finally", linea.is_grad_enabled()))

        generator = guarded()
        next(generator)
        assert generator.throw(KeyError("k")) == 2
        generator.close()
        assert seen == [("handler", False), ("finally", False)]
        assert linea.is_grad_enabled()

    def test_matches_torch(self):
        torch = pytest.importorskip("torch")

        def probe(no_grad, is_enabled):
            @no_grad()
            def steps():
                for _ in range(2):
                    yield is_enabled()
            generator = steps()
            return [next(generator), is_enabled(), next(generator), is_enabled()]

        assert probe(linea.no_grad, linea.is_grad_enabled) == \
            probe(torch.no_grad, torch.is_grad_enabled) == [False, True, False, True]
