"""linea against real PyTorch: activations, LayerNorm, Dropout, Conv2d, losses, optimizers, schedulers.

Tolerances follow the issue: rtol = R, atol = R·max|expected|; R = 1e-10 in float64, 1e-5 in float32.
"""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn
from _helpers import assert_close

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

R = {np.float32: 1e-5, np.float64: 1e-10}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
LINEA_DTYPE = {np.float32: linea.float32, np.float64: linea.float64}
RNG = np.random.default_rng(21)
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


def copy_parameters(ours, theirs):
    with torch.no_grad():
        for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert a.shape == tuple(b.shape), name
            b.copy_(torch.from_numpy(a.numpy().copy()))


def compare_module(ours, theirs, x, dtype):
    """Same input and upstream gradient → same output, input gradient and parameter gradients."""
    copy_parameters(ours, theirs)
    x_ours = linea.tensor(x, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert_close(out_ours, out_theirs.detach().numpy(), R[dtype])
    upstream = RNG.standard_normal(tuple(out_theirs.shape)).astype(dtype)
    out_ours.backward(linea.tensor(upstream))
    out_theirs.backward(torch.tensor(upstream))
    assert_close(x_ours.grad, x_theirs.grad.numpy(), R[dtype])
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(a.grad, b.grad.numpy(), R[dtype])


MODULES = {
    "ReLU": (lambda m: m.ReLU(), (4, 7)),
    "LeakyReLU": (lambda m: m.LeakyReLU(0.2), (4, 7)),
    "GELU": (lambda m: m.GELU(), (4, 7)),
    "GELU-tanh": (lambda m: m.GELU(approximate="tanh"), (4, 7)),
    "Tanh": (lambda m: m.Tanh(), (4, 7)),
    "Sigmoid": (lambda m: m.Sigmoid(), (4, 7)),
    "SiLU": (lambda m: m.SiLU(), (4, 7)),
    "Softplus": (lambda m: m.Softplus(beta=2.0, threshold=1.0), (4, 7)),
    "Softmax": (lambda m: m.Softmax(dim=1), (4, 7)),
    "LogSoftmax": (lambda m: m.LogSoftmax(dim=-1), (2, 3, 7)),
    "LayerNorm": (lambda m: m.LayerNorm(7), (2, 3, 7)),
    "LayerNorm-2d": (lambda m: m.LayerNorm((3, 7), eps=1e-3), (2, 3, 7)),
    "LayerNorm-noaffine": (lambda m: m.LayerNorm(7, elementwise_affine=False), (4, 7)),
    "Flatten": (lambda m: m.Flatten(), (2, 3, 4, 5)),
    "Conv2d": (lambda m: m.Conv2d(3, 5, 3), (2, 3, 8, 7)),
    "Conv2d-strided": (lambda m: m.Conv2d(3, 4, (3, 2), stride=2, padding=1, dilation=(1, 2)), (2, 3, 9, 9)),
    "Conv2d-groups": (lambda m: m.Conv2d(4, 6, 3, padding="same", groups=2, bias=False), (1, 4, 6, 6)),
    "Conv2d-valid-dilated": (lambda m: m.Conv2d(2, 3, 3, padding="valid", dilation=2), (2, 2, 9, 8)),
    "Linear-3d": (lambda m: m.Linear(7, 5), (2, 3, 7)),
    "MLP": (lambda m: m.Sequential(m.Linear(7, 16), m.ReLU(), m.Linear(16, 3)), (5, 7)),
}


@DTYPES
@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_matches_torch(name, dtype):
    factory, shape = MODULES[name]
    ours = factory(nn).to(LINEA_DTYPE[dtype])
    theirs = factory(torch.nn).to(TORCH_DTYPE[dtype])
    assert repr(ours) == repr(theirs)
    compare_module(ours, theirs, RNG.standard_normal(shape).astype(dtype), dtype)


def test_dropout_matches_torch_in_eval_and_in_expectation():
    x = np.ones((200, 500), np.float32)
    ours, theirs = nn.Dropout(0.3), torch.nn.Dropout(0.3)
    assert repr(ours) == repr(theirs)
    kept_ours = (ours(linea.tensor(x)).numpy() != 0).mean()
    kept_theirs = (theirs(torch.tensor(x)).numpy() != 0).mean()
    assert abs(kept_ours - 0.7) < 0.01 and abs(kept_theirs - 0.7) < 0.01
    scale = ours(linea.tensor(x)).numpy().max()
    assert np.isclose(scale, theirs(torch.tensor(x)).numpy().max())
    assert np.array_equal(ours.eval()(linea.tensor(x)).numpy(), theirs.eval()(torch.tensor(x)).numpy())


def class_targets(shape, classes):
    return RNG.integers(0, classes, shape)


LOSSES = {
    "MSELoss": (lambda m: m.MSELoss(), (6, 3), lambda: RNG.standard_normal((6, 3))),
    "MSELoss-sum": (lambda m: m.MSELoss(reduction="sum"), (6, 3), lambda: RNG.standard_normal((6, 3))),
    "L1Loss-none": (lambda m: m.L1Loss(reduction="none"), (6, 3), lambda: RNG.standard_normal((6, 3))),
    "CrossEntropy": (lambda m: m.CrossEntropyLoss(), (6, 5), lambda: class_targets(6, 5)),
    "CrossEntropy-smooth": (lambda m: m.CrossEntropyLoss(label_smoothing=0.1), (6, 5), lambda: class_targets(6, 5)),
    "CrossEntropy-sum-smooth": (lambda m: m.CrossEntropyLoss(reduction="sum", label_smoothing=0.3), (6, 5), lambda: class_targets(6, 5)),
    "CrossEntropy-none": (lambda m: m.CrossEntropyLoss(reduction="none"), (6, 5), lambda: class_targets(6, 5)),
    "CrossEntropy-spatial": (lambda m: m.CrossEntropyLoss(label_smoothing=0.2), (2, 5, 3, 4), lambda: class_targets((2, 3, 4), 5)),
    "CrossEntropy-ignore": (lambda m: m.CrossEntropyLoss(ignore_index=1, label_smoothing=0.1), (8, 3), lambda: class_targets(8, 3)),
    "CrossEntropy-probs": (lambda m: m.CrossEntropyLoss(label_smoothing=0.1), (6, 5), lambda: RNG.dirichlet(np.ones(5), 6)),
    "CrossEntropy-1d": (lambda m: m.CrossEntropyLoss(), (5,), lambda: np.array(2)),
    "NLLLoss": (lambda m: m.NLLLoss(), (6, 5), lambda: class_targets(6, 5)),
    "BCEWithLogits": (lambda m: m.BCEWithLogitsLoss(), (6, 3), lambda: (RNG.random((6, 3)) > 0.5) * 1.0),
    "BCEWithLogits-soft-sum": (lambda m: m.BCEWithLogitsLoss(reduction="sum"), (6, 3), lambda: RNG.random((6, 3))),
}


@DTYPES
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_torch(name, dtype):
    factory, shape, make_target = LOSSES[name]
    logits = RNG.standard_normal(shape).astype(dtype) * 3
    target = make_target()
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    ours_in, theirs_in = linea.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    ours = factory(nn)(ours_in, linea.tensor(target))
    theirs = factory(torch.nn)(theirs_in, torch.tensor(target))
    assert_close(ours, theirs.detach().numpy(), R[dtype])
    upstream = RNG.standard_normal(tuple(theirs.shape)).astype(dtype)
    ours.backward(linea.tensor(upstream))
    theirs.backward(torch.tensor(upstream))
    assert_close(ours_in.grad, theirs_in.grad.numpy(), R[dtype])


@DTYPES
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_weighted_cross_entropy_matches_torch(dtype, smoothing):
    weight = RNG.random(4).astype(dtype) + 0.5
    logits = RNG.standard_normal((7, 4)).astype(dtype)
    target = class_targets(7, 4)
    target[0] = 2
    ours_in, theirs_in = linea.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    ours = nn.CrossEntropyLoss(weight=linea.tensor(weight), ignore_index=2, label_smoothing=smoothing)(
        ours_in, linea.tensor(target))
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), ignore_index=2,
                                       label_smoothing=smoothing)(theirs_in, torch.tensor(target))
    assert_close(ours, theirs.detach().numpy(), R[dtype])
    ours.backward()
    theirs.backward()
    assert_close(ours_in.grad, theirs_in.grad.numpy(), R[dtype])


def test_bce_with_pos_weight_and_huge_logits_match_torch():
    logits = np.array([[1e4, -1e4, 0.0], [3.0, -2.0, 50.0]])
    target = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5]])
    pos = np.array([2.0, 0.5, 3.0])
    ours_in, theirs_in = linea.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    ours = nn.BCEWithLogitsLoss(pos_weight=linea.tensor(pos))(ours_in, linea.tensor(target))
    theirs = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos))(theirs_in, torch.tensor(target))
    assert_close(ours, theirs.detach().numpy(), 1e-10)
    ours.backward()
    theirs.backward()
    assert_close(ours_in.grad, theirs_in.grad.numpy(), 1e-10)


def test_cross_entropy_huge_logits_match_torch():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], np.float32)
    target = np.array([1, 2])
    ours = nn.CrossEntropyLoss(label_smoothing=0.1)(linea.tensor(logits), linea.tensor(target))
    theirs = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(logits), torch.tensor(target))
    assert_close(ours, theirs.numpy(), 1e-5)


# ---- optimizers: 10 steps on the same model, data and hyper-parameters -------------

OPTIMIZERS = {
    "SGD": (lambda o, p: o.SGD(p, lr=0.1)),
    "SGD-momentum": (lambda o, p: o.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "SGD-nesterov": (lambda o, p: o.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    "SGD-maximize": (lambda o, p: o.SGD(p, lr=0.01, momentum=0.5, maximize=True)),
    "Adam": (lambda o, p: o.Adam(p, lr=0.01)),
    "Adam-wd-amsgrad": (lambda o, p: o.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    "AdamW": (lambda o, p: o.AdamW(p, lr=0.01)),
    "AdamW-amsgrad": (lambda o, p: o.AdamW(p, lr=0.03, weight_decay=0.2, amsgrad=True)),
    "RMSprop": (lambda o, p: o.RMSprop(p, lr=0.01)),
    "RMSprop-centered-momentum": (lambda o, p: o.RMSprop(p, lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.01,
                                                         momentum=0.8, centered=True)),
    "RMSprop-maximize": (lambda o, p: o.RMSprop(p, lr=0.001, momentum=0.5, maximize=True)),
}


def twin_mlps(dtype):
    ours = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3)).to(LINEA_DTYPE[dtype])
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3)).to(TORCH_DTYPE[dtype])
    copy_parameters(ours, theirs)
    return ours, theirs


@DTYPES
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_trajectories_match_torch_over_10_steps(name, dtype):
    ours, theirs = twin_mlps(dtype)
    opt_ours = OPTIMIZERS[name](linea.optim, ours.parameters())
    opt_theirs = OPTIMIZERS[name](torch.optim, theirs.parameters())
    x = RNG.standard_normal((16, 6)).astype(dtype)
    y = RNG.integers(0, 3, 16)
    for step in range(10):
        for opt, model, lib, xs, ys in ((opt_ours, ours, linea, linea.tensor(x), linea.tensor(y)),
                                        (opt_theirs, theirs, torch, torch.tensor(x), torch.tensor(y))):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(xs), ys)
            loss.backward()
            opt.step()
        for (key, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert_close(a, b.numpy(), R[dtype])


def test_parameter_groups_match_torch():
    ours, theirs = twin_mlps(np.float64)
    groups = lambda m: [{"params": m[0].parameters(), "lr": 0.1}, {"params": m[2].parameters()}]
    opt_ours = linea.optim.SGD(groups(ours), lr=0.01, momentum=0.9)
    opt_theirs = torch.optim.SGD(groups(theirs), lr=0.01, momentum=0.9)
    x = RNG.standard_normal((4, 6))
    for _ in range(3):
        for opt, model, lib in ((opt_ours, ours, linea), (opt_theirs, theirs, torch)):
            opt.zero_grad()
            (model(lib.tensor(x)) ** 2).sum().backward()
            opt.step()
    for (key, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert_close(a, b.numpy(), 1e-10)
    assert [g["lr"] for g in opt_ours.param_groups] == [g["lr"] for g in opt_theirs.param_groups]


def test_optimizer_state_dict_layout_matches_torch():
    ours, theirs = twin_mlps(np.float32)
    opt_ours, opt_theirs = linea.optim.Adam(ours.parameters()), torch.optim.Adam(theirs.parameters())
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    for opt, model, lib in ((opt_ours, ours, linea), (opt_theirs, theirs, torch)):
        model(lib.tensor(x)).sum().backward()
        opt.step()
    sd_ours, sd_theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    assert sorted(sd_ours["state"]) == sorted(sd_theirs["state"])
    assert sorted(sd_ours["state"][0]) == sorted(sd_theirs["state"][0])
    assert sd_ours["param_groups"][0]["params"] == sd_theirs["param_groups"][0]["params"]
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad"):
        assert sd_ours["param_groups"][0][key] == sd_theirs["param_groups"][0][key]


SCHEDULERS = {
    "StepLR": lambda s, o: s.StepLR(o, step_size=3, gamma=0.5),
    "CosineAnnealingLR": lambda s, o: s.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
    "MultiStepLR": lambda s, o: s.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "ExponentialLR": lambda s, o: s.ExponentialLR(o, gamma=0.9),
    "LinearLR": lambda s, o: s.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=7),
    "LinearLR-default": lambda s, o: s.LinearLR(o),
    "LambdaLR": lambda s, o: s.LambdaLR(o, lambda epoch: 0.95 ** epoch + 0.01 * (epoch % 3)),
    "OneCycleLR": lambda s, o: s.OneCycleLR(o, max_lr=0.5, total_steps=23),
    "OneCycleLR-linear-three-phase": lambda s, o: s.OneCycleLR(o, max_lr=1.0, epochs=4, steps_per_epoch=6,
                                                               anneal_strategy="linear", three_phase=True),
}


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_match_torch(name, optimizer):
    options = dict(lr=0.1, momentum=0.9) if optimizer == "SGD" else dict(lr=0.1)
    ours_opt = getattr(linea.optim, optimizer)([linea.zeros(1, requires_grad=True)], **options)
    theirs_opt = getattr(torch.optim, optimizer)([torch.zeros(1, requires_grad=True)], **options)
    ours = SCHEDULERS[name](linea.optim.lr_scheduler, ours_opt)
    theirs = SCHEDULERS[name](torch.optim.lr_scheduler, theirs_opt)
    for epoch in range(23):
        assert np.isclose(ours.get_last_lr()[0], theirs.get_last_lr()[0], rtol=1e-12, atol=1e-15), epoch
        key = "momentum" if optimizer == "SGD" else "betas"
        assert np.allclose(ours_opt.param_groups[0][key], theirs_opt.param_groups[0][key], rtol=1e-12)
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


@pytest.mark.parametrize("options", [dict(), dict(mode="max", factor=0.5, patience=2, cooldown=1),
                                     dict(threshold_mode="abs", threshold=0.1, patience=1, min_lr=0.02)],
                         ids=str)
def test_reduce_lr_on_plateau_matches_torch(options):
    ours_opt = linea.optim.SGD([linea.zeros(1, requires_grad=True)], lr=0.1)
    theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    ours = linea.optim.lr_scheduler.ReduceLROnPlateau(ours_opt, **options)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **options)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.8, 0.8, 0.81, 0.82, 0.9, 0.79, 0.85, 0.85, 0.85] * 2
    for metric in metrics:
        ours.step(metric)
        theirs.step(metric)
        assert ours_opt.param_groups[0]["lr"] == theirs_opt.param_groups[0]["lr"]
        assert ours.get_last_lr() == theirs.get_last_lr()


def test_one_hot_module_dict_and_parameter_list_match_torch():
    labels = np.array([[0, 3], [2, 1]])
    assert nn.functional.one_hot(linea.tensor(labels)).tolist() == \
        torch.nn.functional.one_hot(torch.tensor(labels)).tolist()
    assert nn.functional.one_hot(linea.tensor(labels), 5).tolist() == \
        torch.nn.functional.one_hot(torch.tensor(labels), 5).tolist()
    for bad, message in (([0, -1], "non-negative"), ([0, 7], "smaller than num_classes")):
        with pytest.raises(RuntimeError, match=message):
            nn.functional.one_hot(linea.tensor(bad), 5)
    ours = nn.ModuleDict({"encoder": nn.Linear(2, 3), "act": nn.ReLU()})
    ours["head"] = nn.Linear(3, 1)
    theirs = torch.nn.ModuleDict({"encoder": torch.nn.Linear(2, 3), "act": torch.nn.ReLU()})
    theirs["head"] = torch.nn.Linear(3, 1)
    assert list(ours.state_dict()) == list(theirs.state_dict()) and list(ours) == list(theirs)
    assert repr(ours) == repr(theirs)
    params = nn.ParameterList([nn.Parameter(linea.ones(2)), nn.Parameter(linea.zeros(2, 3))])
    twin = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.zeros(2, 3))])
    assert list(params.state_dict()) == list(twin.state_dict()) and len(params) == len(twin)
    holder = nn.Module()
    holder.weights = params
    assert [name for name, _ in holder.named_parameters()] == ["weights.0", "weights.1"]


def test_a_torch_optimizer_state_loads_into_linea():
    ours, theirs = twin_mlps(np.float32)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=0.01)
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    theirs(torch.tensor(x)).sum().backward()
    opt_theirs.step()
    opt_ours = linea.optim.Adam(ours.parameters(), lr=0.5)
    opt_ours.load_state_dict(opt_theirs.state_dict())
    assert opt_ours.param_groups[0]["lr"] == 0.01
    state = opt_ours.state[next(iter(ours.parameters()))]
    assert isinstance(state["exp_avg"], linea.Tensor) and float(state["step"].item()) == 1.0
