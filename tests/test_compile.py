"""linea.compile: the planned forward equals the eager one to the bit, for every plannable model."""
import warnings

import numpy as np
import pytest

import linea
from linea import nn
from linea import keras as lk

R = np.random.default_rng(71)


def eager(model, x):
    with linea.no_grad():
        return model(x).numpy()


MODELS = {
    "relu-mlp": lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)),
    "tanh-no-bias": lambda: nn.Sequential(nn.Linear(6, 8, bias=False), nn.Tanh(), nn.Linear(8, 3)),
    "other-activations": lambda: nn.Sequential(nn.Linear(6, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.GELU(),
                                               nn.Linear(8, 8), nn.LeakyReLU(0.1), nn.Linear(8, 4),
                                               nn.Softmax(dim=-1)),
    "norm-dropout-identity": lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.5), nn.LayerNorm(8),
                                                   nn.Identity(), nn.Linear(8, 2)),
    "nested": lambda: nn.Sequential(nn.Sequential(nn.Linear(6, 8), nn.ReLU()), nn.Linear(8, 2)),
    "activation-first": lambda: nn.Sequential(nn.Tanh(), nn.Linear(6, 2), nn.ReLU()),
    "flatten": lambda: nn.Sequential(nn.Flatten(), nn.Linear(6, 2)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 6), (33, 6), (2, 5, 6)], ids=str)
def test_compiled_equals_eager_bitwise(name, shape):
    model = MODELS[name]().eval()
    if name == "flatten" and len(shape) != 2:
        shape = (4, 2, 3)
    compiled = linea.compile(model)
    x = linea.tensor(R.standard_normal(shape).astype(np.float32))
    for _ in range(2):  # the second call replays the stored plan
        assert np.array_equal(compiled(x).numpy(), eager(model, x))


def test_keras_models_compile():
    model = lk.Sequential([lk.Input(shape=(5,)), lk.layers.Dense(8, activation="relu"),
                           lk.layers.Dense(8, activation="gelu"), lk.layers.Dropout(0.2),
                           lk.layers.Dense(3, activation="softmax")])
    compiled = linea.compile(model)
    x = R.standard_normal((4, 5)).astype(np.float32)
    assert np.array_equal(compiled(x).numpy(), model.predict(x, verbose=0))


def test_float64_and_raw_inputs():
    model = MODELS["relu-mlp"]().double().eval()
    compiled = linea.compile(model)
    x = R.standard_normal((3, 6))
    assert compiled(x).dtype == linea.float64
    assert np.array_equal(compiled(x).numpy(), eager(model, linea.tensor(x)))
    assert np.array_equal(compiled(x.tolist()).numpy(), eager(model, linea.tensor(x)))


def test_each_call_returns_a_fresh_array_and_plans_per_shape():
    model = MODELS["relu-mlp"]().eval()
    compiled = linea.compile(model)
    x = linea.randn(2, 6)
    first, second = compiled(x), compiled(x)
    assert not np.shares_memory(first.numpy(), second.numpy())
    compiled(linea.randn(5, 6))
    assert "plans=2" in repr(compiled)
    assert not first.requires_grad


def test_weights_are_read_live():
    model = MODELS["relu-mlp"]().eval()
    compiled = linea.compile(model)
    x = linea.randn(3, 6)
    compiled(x)
    with linea.no_grad():
        model[0].weight.mul_(-2.0)
        model[2].bias.fill_(0.5)
    assert np.array_equal(compiled(x).numpy(), eager(model, x))
    model[0].weight.data = linea.randn(16, 6)  # a new array altogether
    assert np.array_equal(compiled(x).numpy(), eager(model, x))


def test_unplannable_models_fall_back_with_one_warning():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) * 2

    model = nn.Sequential(Custom())
    x = linea.randn(3, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = linea.compile(model)  # a module of the user's own is traced at its first call
        first, second = compiled(x), compiled(x)
    assert len(caught) == 1 and "cannot plan Custom (the op Mul in its forward)" in str(caught[0].message)
    assert np.array_equal(first.numpy(), eager(model, x)) and np.array_equal(second.numpy(), eager(model, x))


class SeedsNet(nn.Module):
    """The seeds' Net: fc1 → ReLU → fc2, a forward of F.relu and a view."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = x.view(-1, 64)
        return self.fc2(nn.functional.relu(self.fc1(x)))


def test_a_user_module_is_traced_planned_and_equals_eager_bitwise():
    net = SeedsNet()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # planned: no fallback warning
        compiled = linea.compile(net)
        for shape in ((5, 8, 8), (1, 64), (7, 64)):
            x = linea.randn(*shape)
            assert np.array_equal(compiled(x).numpy(), eager(net, x))
    net.fc2.weight.data = net.fc2.weight * 2  # live weights, as for Sequential plans
    x = linea.randn(3, 64)
    assert np.array_equal(compiled(x).numpy(), eager(net, x))


def test_forwards_that_depend_on_the_data_or_branch_run_eagerly():
    class ByValue(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else x

    class Residual(ByValue):
        def forward(self, x):
            return x + self.fc(x)

    for model, message in ((ByValue(), "reads tensor values with bool()"), (Residual(), "the op Add")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compiled = linea.compile(model)
            for x in (linea.ones(2, 4), -linea.ones(2, 4)):
                assert np.array_equal(compiled(x).numpy(), eager(model, x))
        assert len(caught) == 1 and message in str(caught[0].message), [str(c.message) for c in caught]


def test_a_traced_plan_follows_train_and_eval_mode():
    class WithDropout(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.drop = nn.Linear(4, 4), nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(self.fc(x))

    model = WithDropout().eval()
    compiled = linea.compile(model)
    x = linea.randn(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(compiled(x).numpy(), eager(model, x))  # eval: dropout is identity
    model.train()
    with pytest.warns(UserWarning, match="the op Mul"):  # training: dropout masks, run eagerly
        assert compiled(x).shape == (3, 4)


def test_a_wrong_input_raises_eager_s_error_and_the_plans_stay():
    model = MODELS["relu-mlp"]().eval()
    compiled = linea.compile(model)
    x = linea.randn(2, 6)
    compiled(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "running eagerly" warning: it is the caller's mistake
        for bad in (linea.randn(2, 7), linea.tensor(3.0), None, [[None] * 6], np.array([["a"] * 6])):
            with pytest.raises((linea.ShapeError, TypeError)) as compiled_error:
                compiled(bad)
            with pytest.raises(type(compiled_error.value)):
                with linea.no_grad():
                    model(bad)
    assert compiled._fallback is None  # one bad call does not switch the model to eager for good
    assert np.array_equal(compiled(x).numpy(), eager(model, x))


def test_a_change_of_structure_re_plans():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    compiled = linea.compile(model)
    x = linea.randn(5, 4)
    compiled(x)
    model[0] = nn.Linear(4, 8)  # a new child
    assert np.array_equal(compiled(x).numpy(), eager(model, x))
    model.append(nn.Tanh())  # one more layer
    assert np.array_equal(compiled(x).numpy(), eager(model, x))
    model[2].bias = None  # a parameter removed
    assert np.array_equal(compiled(x).numpy(), eager(model, x))
    del model[3]
    assert np.array_equal(compiled(x).numpy(), eager(model, x))
    model[2] = nn.Linear(8, 6)  # another output width
    assert compiled(x).shape == (5, 6)
    assert np.array_equal(compiled(x).numpy(), eager(model, x))


def test_weights_replaced_by_another_shape_or_dtype_re_plan():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    compiled = linea.compile(model)
    x = linea.randn(5, 4)
    compiled(x)
    model[2].weight.data = linea.randn(2, 8)
    model[2].bias.data = linea.randn(2)
    assert np.array_equal(compiled(x).numpy(), eager(model, x))
    model.double()
    x64 = x.double()
    assert compiled(x64).dtype == linea.float64
    assert np.array_equal(compiled(x64).numpy(), eager(model, x64))


def test_a_keras_layer_s_changed_activation_re_plans():
    model = lk.Sequential([lk.Input(shape=(4,)), lk.layers.Dense(6, activation="relu"), lk.layers.Dense(2)])
    compiled = linea.compile(model)
    x = linea.randn(3, 4)
    compiled(x)
    model.layers[0].activation = lk.activations.get("tanh")
    assert np.array_equal(compiled(x).numpy(), model(x).detach().numpy())
