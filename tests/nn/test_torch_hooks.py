"""Hooks against real PyTorch: forward pre-hooks, forward hooks (with_kwargs, prepend), full
backward hooks and Tensor.register_hook — called in torch's order with torch's arguments, and
replacing inputs, outputs and gradients as torch's do."""
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn
from _helpers import assert_close

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

RNG = np.random.default_rng(67)


def twins():
    ours, theirs = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), \
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for a, b in zip(ours.parameters(), theirs.parameters()):
            b.copy_(torch.from_numpy(a.numpy().copy()))
    return ours, theirs


def shapes(values):
    return [None if v is None else tuple(v.shape) for v in values]


def record_everything(model, log, tag):
    handles = []
    for index, module in enumerate(model):
        handles.append(module.register_forward_pre_hook(
            lambda m, args, i=index: log.append((tag, "pre", i, shapes(args)))))
        handles.append(module.register_forward_hook(
            lambda m, args, out, i=index: log.append((tag, "fwd", i, shapes(args), tuple(out.shape)))))
        handles.append(module.register_full_backward_hook(
            lambda m, gi, go, i=index: log.append((tag, "bwd", i, shapes(gi), shapes(go)))))
    handles.append(model.register_forward_hook(
        lambda m, args, kwargs, out: log.append((tag, "model", sorted(kwargs), tuple(out.shape))),
        with_kwargs=True))
    return handles


def test_hook_order_and_arguments_match_torch():
    ours, theirs = twins()
    log = []
    record_everything(ours, log, "x")
    record_everything(theirs, log, "x")
    x = RNG.standard_normal((5, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's first-layer "no input requires grad" warning
        ours(linea.tensor(x)).sum().backward()
        ours_log = list(log)
        log.clear()
        theirs(torch.tensor(x)).sum().backward()
    assert ours_log == log


def test_hooks_replace_inputs_outputs_and_gradients_as_in_torch():
    ours, theirs = twins()
    results = []
    for model, lib in ((ours, linea), (theirs, torch)):
        model[0].register_forward_pre_hook(lambda m, args: (args[0] * 2,))
        model[2].register_forward_hook(lambda m, args, out: out + 1)
        model[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
        model[0].register_forward_pre_hook(lambda m, args, kwargs: ((args[0] - 1,), kwargs),
                                           with_kwargs=True, prepend=True)
        x = lib.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 5, requires_grad=True)
        out = model(x)
        out.sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy(), model[0].weight.grad.numpy()))
    for mine, real in zip(*results):
        assert_close(mine, real)


def test_removed_hooks_and_context_handles_stop_being_called():
    layer, calls = nn.Linear(2, 2), []
    handle = layer.register_forward_hook(lambda m, a, o: calls.append(1))
    layer(linea.ones(1, 2))
    handle.remove()
    layer(linea.ones(1, 2))
    with layer.register_forward_pre_hook(lambda m, a: calls.append(2)):
        layer(linea.ones(1, 2))
    layer(linea.ones(1, 2))
    assert calls == [1, 2]


def test_tensor_hooks_match_torch_on_leaves_and_intermediates():
    results = []
    for lib in (linea, torch):
        log = []
        leaf = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        middle = leaf * 2
        middle.retain_grad()
        middle.register_hook(lambda g: log.append(("middle", g.tolist())))
        middle.register_hook(lambda g: g * 10)
        leaf.register_hook(lambda g: log.append(("leaf", g.tolist())))
        handle = leaf.register_hook(lambda g: g + 1)
        ((middle * middle).sum() + leaf.sum()).backward()
        handle.remove()
        results.append((log, leaf.grad.tolist(), middle.grad.tolist()))
    assert results[0] == results[1]
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        linea.ones(2).register_hook(lambda g: g)


def test_a_hooked_model_compiles_to_its_eager_self():
    model = nn.Sequential(nn.Linear(3, 2))
    seen = []
    model[0].register_forward_hook(lambda m, a, o: seen.append(o.shape))
    with pytest.warns(UserWarning, match="hooks"):
        compiled = linea.compile(model)
    compiled(linea.ones(4, 3))
    assert seen == [(4, 2)]
