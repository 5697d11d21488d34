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
        with linea.no_grad():
            assert np.array_equal(compiled(x).numpy(), eager(model, x))


@pytest.mark.filterwarnings("ignore:linea.compile")  # chains the training plan does not compute
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 6), (33, 6), (2, 5, 6)], ids=str)
def test_compiled_calls_with_grad_equal_eager_in_outputs_and_gradients(name, shape):
    if name == "flatten" and len(shape) != 2:
        shape = (4, 2, 3)
    linea.manual_seed(2)
    ours = MODELS[name]().eval()
    linea.manual_seed(2)
    reference = MODELS[name]().eval()
    compiled = linea.compile(ours)
    data = R.standard_normal(shape).astype(np.float32)
    upstream = None
    for _ in range(2):
        x, x_eager = linea.tensor(data, requires_grad=True), linea.tensor(data, requires_grad=True)
        out, expected = compiled(x), reference(x_eager)
        assert np.array_equal(out.detach().numpy(), expected.detach().numpy())
        upstream = linea.tensor(R.standard_normal(out.shape).astype(np.float32))
        out.backward(upstream)
        expected.backward(upstream)
        assert np.array_equal(x.grad.numpy(), x_eager.grad.numpy())
    for a, b in zip(ours.parameters(), reference.parameters()):
        assert np.array_equal(a.grad.numpy(), b.grad.numpy())


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
    with linea.no_grad():  # inference plans
        first, second = compiled(x), compiled(x)
        compiled(linea.randn(5, 6))
    assert not np.shares_memory(first.numpy(), second.numpy())
    assert "plans=2" in repr(compiled)
    assert not first.requires_grad
    assert compiled(x).requires_grad  # with grad on, the output carries gradients, as torch's


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


def test_editing_one_model_leaves_another_models_plan_alone():
    first = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    second = nn.Sequential(nn.Linear(4, 2), nn.Tanh())
    compiled_first, compiled_second = linea.compile(first), linea.compile(second)
    x = linea.randn(5, 4)
    compiled_first(x), compiled_second(x)
    surveys = compiled_second._generation
    first[2] = nn.Linear(8, 5)  # a structural change in the other model
    first.train()
    first[0].register_forward_hook(lambda module, args, output: None)
    nn.Linear(3, 3).eval()  # and in a model nobody compiled
    compiled_first(x), compiled_second(x)
    assert compiled_second._generation == surveys  # its plan was kept
    assert compiled_first(x).shape == (5, 5)
    second[1] = nn.Sigmoid()  # its own change still re-plans
    assert np.array_equal(compiled_second(x).numpy(), eager(second, x))
    assert compiled_second._generation == surveys + 1


def test_a_quantized_copy_is_not_watched_by_the_originals_plan():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    compiled = linea.compile(model)
    compiled(linea.randn(2, 4))
    surveys = compiled._generation
    copy = linea.quantization.quantize_dynamic(model)
    copy[1] = nn.Tanh()
    compiled(linea.randn(2, 4))
    assert compiled._generation == surveys


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


def _train(model, parameters, batches, optimizer_class=linea.optim.Adam):
    optimizer = optimizer_class(parameters, lr=0.01)
    for x, y in batches:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return loss


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh, nn.Sigmoid])
def test_compiled_training_equals_eager_bitwise(activation):
    rng = np.random.default_rng(3)
    batches = [(linea.tensor(rng.standard_normal((8, 6)).astype(np.float32)),
                linea.tensor(rng.integers(0, 3, 8))) for _ in range(10)]
    linea.manual_seed(1)
    eager_model = nn.Sequential(nn.Linear(6, 12), activation(), nn.Linear(12, 12), activation(), nn.Linear(12, 3))
    linea.manual_seed(1)
    compiled_model = nn.Sequential(nn.Linear(6, 12), activation(), nn.Linear(12, 12), activation(), nn.Linear(12, 3))
    compiled = linea.compile(compiled_model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # planned for training: no fallback
        assert compiled(batches[0][0]).grad_fn.name == "CompiledChain"  # one node for the chain
        _train(compiled, compiled_model.parameters(), batches)
    _train(eager_model, eager_model.parameters(), batches)
    for a, b in zip(eager_model.parameters(), compiled_model.parameters()):
        assert np.array_equal(a.numpy(), b.numpy())


def test_the_seeds_net_compiled_trains_on_the_digits_to_eager_s_weights():
    from linea.data import load_digits
    from linea.utils.data import DataLoader, TensorDataset

    images, labels = load_digits()
    images = (images / 16.0).astype(np.float32)
    linea.manual_seed(0)
    eager_net = SeedsNet()
    linea.manual_seed(0)
    compiled_net = SeedsNet()
    compiled = linea.compile(compiled_net)
    dataset = TensorDataset(images[:512].reshape(-1, 8, 8), labels[:512])
    for model, parameters in ((eager_net, eager_net.parameters()), (compiled, compiled_net.parameters())):
        optimizer = linea.optim.SGD(parameters, lr=0.1, momentum=0.9)
        loader = DataLoader(dataset, batch_size=32, shuffle=True, generator=linea.Generator().manual_seed(5))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for epoch in range(20):
                for x, y in loader:
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                    optimizer.step()
    for a, b in zip(eager_net.parameters(), compiled_net.parameters()):
        assert np.array_equal(a.numpy(), b.numpy())


def test_training_through_what_the_plan_does_not_compute_runs_eagerly_with_one_warning():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    compiled = linea.compile(model)
    x = linea.randn(3, 4)
    with pytest.warns(UserWarning, match="cannot plan training through LayerNorm"):
        out = compiled(x)
    out.sum().backward()
    assert model[0].weight.grad is not None
    x_grad = linea.randn(3, 4, requires_grad=True)
    reference = linea.tensor(x_grad.numpy().copy(), requires_grad=True)
    compiled(x_grad).sum().backward()
    model(reference).sum().backward()
    assert np.array_equal(x_grad.grad.numpy(), reference.grad.numpy())
    with linea.no_grad():  # inference keeps its plans
        assert compiled(x).grad_fn is None


def test_image_layers_compile_in_eval_and_training_only_layers_run_eagerly():
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    cnn(linea.randn(8, 1, 6, 6))  # running statistics that are not the defaults
    cnn.eval()
    x = linea.randn(2, 1, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = linea.compile(cnn)
        with linea.no_grad():
            assert np.array_equal(compiled(x).numpy(), eager(cnn, x))
    cnn.train()  # BatchNorm would move its statistics at a plan's probe: eager instead
    with pytest.warns(UserWarning, match="BatchNorm2d in training mode"):
        with linea.no_grad():
            compiled(x)
    dropout = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))  # training mode: a mask per call
    with pytest.warns(UserWarning, match="Dropout in training mode"):
        masked = linea.compile(dropout)
    with linea.no_grad():
        assert (masked(linea.ones(64, 4)).numpy() == 0).any()
