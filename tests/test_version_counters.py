"""In-place writes after the forward pass: linea refuses exactly where PyTorch's version counter does.

Each scenario is written once against the API the two libraries share and run on
both. Where PyTorch raises "modified by an inplace operation", linea must raise
too (the gradient would be wrong); where PyTorch allows the write (the op saved
nothing the write touched), linea must allow it and give PyTorch's gradients.
"""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

X = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
W = np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)


def linear(lib, requires_grad=True):
    layer = lib.nn.Linear(3, 2)
    with lib.no_grad():
        layer.weight.copy_(lib.tensor(W))
        layer.bias.fill_(0.5)
    layer.weight.requires_grad_(requires_grad)
    layer.bias.requires_grad_(requires_grad)
    return layer


def x_plus_one_after_forward(lib):
    m, x = linear(lib), lib.tensor(X)
    loss = m(x).sum()
    x.add_(1)
    loss.backward()
    return [m.weight.grad]


def x_item_assignment_after_forward(lib):
    m, x = linear(lib), lib.tensor(X)
    loss = m(x).sum()
    x[0] = 100
    loss.backward()
    return [m.weight.grad]


def x_detached_view_written(lib):
    m, x = linear(lib), lib.tensor(X)
    loss = m(x).sum()
    x.detach().add_(1)
    loss.backward()
    return [m.weight.grad]


def x_slice_written(lib):
    m, x = linear(lib), lib.tensor(X)
    loss = m(x).sum()
    x[1:3].mul_(2)
    loss.backward()
    return [m.weight.grad]


def weight_scaled_under_no_grad(lib):
    m, x = linear(lib), lib.tensor(X, requires_grad=True)
    loss = m(x).pow(2).sum()
    with lib.no_grad():
        m.weight.mul_(10)
    loss.backward()
    return [x.grad]


def optimizer_step_between_forward_and_backward(lib):
    m, x = linear(lib), lib.tensor(X, requires_grad=True)
    optimizer = lib.optim.SGD(m.parameters(), lr=0.1)
    first, second = m(x).sum(), m(x).pow(2).sum()
    first.backward()
    optimizer.step()
    second.backward()
    return [m.weight.grad, x.grad]


def weight_written_when_only_the_weight_learns(lib):
    # addmm saves the input for the weight's gradient, and the weight only for the input's.
    m, x = linear(lib), lib.tensor(X)
    loss = m(x).sum()
    with lib.no_grad():
        m.weight.mul_(10)
    loss.backward()
    return [m.weight.grad, m.bias.grad]


def input_written_when_only_the_input_learns(lib):
    m, x = linear(lib, requires_grad=False), lib.tensor(X, requires_grad=True)
    loss = m(x).sum()
    with lib.no_grad():
        x.mul_(10)
    loss.backward()
    return [x.grad]


def bias_written(lib):
    m, x = linear(lib), lib.tensor(X, requires_grad=True)
    loss = m(x).sum()
    with lib.no_grad():
        m.bias.add_(1)
    loss.backward()
    return [m.weight.grad, x.grad]


def exp_result_written(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x.exp()
    with lib.no_grad():
        y.mul_(2)
    y.sum().backward()
    return [x.grad]


def sigmoid_result_written(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x.sigmoid()
    with lib.no_grad():
        y.add_(1)
    y.sum().backward()
    return [x.grad]


def tanh_input_written(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x.tanh()
    with lib.no_grad():
        x.add_(1)
    y.sum().backward()
    return [x.grad]


def relu_input_written(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x.relu()
    with lib.no_grad():
        x.mul_(-1)
    y.sum().backward()
    return [x.grad]


def relu_result_written(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x.relu()
    with lib.no_grad():
        y.mul_(-1)
    (y * 1).sum().backward()
    return [x.grad]


def log_input_written(lib):
    x = lib.tensor(np.abs(X) + 1, requires_grad=True)
    y = x.log()
    with lib.no_grad():
        x.add_(1)
    y.sum().backward()
    return [x.grad]


def add_operands_written(lib):
    a, b = lib.tensor(X, requires_grad=True), lib.tensor(X * 2, requires_grad=True)
    y = a + b
    with lib.no_grad():
        a.add_(1)
        b.mul_(3)
    y.sum().backward()
    return [a.grad, b.grad]


def mul_own_operand_written(lib):
    # mul saves b for a's gradient; a itself is saved only if b needs a gradient.
    a, b = lib.tensor(X, requires_grad=True), lib.tensor(X * 2)
    y = a * b
    with lib.no_grad():
        a.add_(1)
    y.sum().backward()
    return [a.grad]


def mul_other_operand_written(lib):
    a, b = lib.tensor(X, requires_grad=True), lib.tensor(X * 2)
    y = a * b
    b.add_(1)
    y.sum().backward()
    return [a.grad]


def div_divisor_written(lib):
    a, b = lib.tensor(X, requires_grad=True), lib.tensor(np.abs(X) + 1)
    y = a / b
    b.add_(1)
    y.sum().backward()
    return [a.grad]


def sum_input_written(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x.sum()
    with lib.no_grad():
        x.add_(1)
    y.backward()
    return [x.grad]


def reshape_input_written(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x.reshape(12) * 2
    with lib.no_grad():
        x.add_(1)
    y.sum().backward()
    return [x.grad]


def retained_graph_after_a_write(lib):
    m, x = linear(lib), lib.tensor(X)
    loss = m(x).sum()
    loss.backward(retain_graph=True)
    x.add_(1)
    loss.backward()
    return [m.weight.grad]


def write_after_backward_is_fine(lib):
    m, x = linear(lib), lib.tensor(X)
    optimizer = lib.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        m(x).pow(2).sum().backward()
        optimizer.step()
        x.add_(0.5)
    return [m.weight.grad, m.weight.detach()]


def fresh_forward_after_a_write(lib):
    m, x = linear(lib), lib.tensor(X)
    m(x).sum()  # a graph left behind, never used
    x.mul_(2)
    m(x).sum().backward()
    return [m.weight.grad]


def copy_and_fill_after_forward(lib):
    m, x = linear(lib), lib.tensor(X)
    loss = m(x).sum()
    x.copy_(lib.tensor(X * 3))
    loss.backward()
    return [m.weight.grad]


def zero_after_forward(lib):
    m, x = linear(lib), lib.tensor(X)
    loss = m(x).sum()
    x.zero_()
    loss.backward()
    return [m.weight.grad]


def state_dict_loaded_between_forward_and_backward(lib):
    m, x = linear(lib), lib.tensor(X, requires_grad=True)
    loss = m(x).sum()
    m.load_state_dict({"weight": lib.tensor(W * 2), "bias": lib.tensor(np.zeros(2, np.float32))})
    loss.backward()
    return [x.grad]


SCENARIOS = [
    x_plus_one_after_forward, x_item_assignment_after_forward, x_detached_view_written,
    x_slice_written, weight_scaled_under_no_grad, optimizer_step_between_forward_and_backward,
    weight_written_when_only_the_weight_learns, input_written_when_only_the_input_learns,
    bias_written, exp_result_written, sigmoid_result_written, tanh_input_written,
    relu_input_written, relu_result_written, log_input_written, add_operands_written,
    mul_own_operand_written, mul_other_operand_written, div_divisor_written, sum_input_written,
    reshape_input_written, retained_graph_after_a_write, write_after_backward_is_fine,
    fresh_forward_after_a_write, copy_and_fill_after_forward, zero_after_forward,
    state_dict_loaded_between_forward_and_backward,
]


def outcome(lib, scenario):
    try:
        return [np.array(t.detach().numpy()) for t in scenario(lib)]
    except RuntimeError as error:
        assert "modified by an inplace operation" in str(error), error
        return "refused"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_in_place_write_after_forward_matches_torch(scenario):
    expected = outcome(torch, scenario)
    got = outcome(linea, scenario)
    if expected == "refused":
        assert got == "refused", f"torch refuses {scenario.__name__}; linea ran it"
    else:
        assert got != "refused", f"torch allows {scenario.__name__}; linea refused it"
        for ours, theirs in zip(got, expected, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_the_error_names_the_op_and_the_shape():
    m, x = linear(linea), linea.tensor(X)
    loss = m(x).sum()
    x.add_(1)
    with pytest.raises(RuntimeError, match=r"LinearBackward.*version 1") as info:
        loss.backward()
    assert "[4, 3]" in str(info.value)


def test_the_version_counts_in_place_writes_as_torch_does():
    def versions(lib):
        x = lib.zeros(4, 3)
        seen = [x._version]
        x.add_(1)
        seen.append(x._version)
        x[0] = 2
        seen.append(x._version)
        x[1:3].mul_(2)  # a view shares its base's counter
        seen.append(x._version)
        view = x.detach()
        view.zero_()
        seen.append((x._version, view._version))
        y = x + 1  # out of place: a new counter
        seen.append(y._version)
        return seen

    assert versions(linea) == versions(torch)


def test_a_refused_backward_leaves_the_graph_usable_for_a_fresh_forward():
    m, x = linear(linea), linea.tensor(X)
    loss = m(x).sum()
    x.add_(1)
    with pytest.raises(RuntimeError):
        loss.backward()
    assert m.weight.grad is None  # nothing accumulated before the check
    m(x).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), np.tile((X + 1).sum(0), (2, 1)), rtol=1e-6)


def test_a_write_through_data_is_refused_too_where_torch_would_give_a_wrong_gradient():
    # PyTorch's .data has its own counter, so torch runs this and returns a gradient
    # computed from the overwritten input; linea's .data shares the memory's counter.
    m, x = linear(linea), linea.tensor(X)
    loss = m(x).sum()
    x.data.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_relu_passes_the_gradient_of_a_nan_input_on_as_torch_does():
    values = np.array([np.nan, -1.0, 0.0, 2.0], np.float32)
    ours, theirs = linea.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    linea.nn.functional.relu(ours).sum().backward()
    torch.relu(theirs).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    np.testing.assert_array_equal(linea.nn.ReLU()(ours).detach().numpy(), torch.relu(theirs).detach().numpy())
