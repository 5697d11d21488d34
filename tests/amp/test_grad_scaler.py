"""linea.amp.GradScaler against torch.amp.GradScaler("cpu"): with inf and NaN gradients injected
at chosen steps, the scales, the skipped steps, the weights and the state dicts agree."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import nn

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

RNG = np.random.default_rng(8)
X = RNG.standard_normal((16, 6)).astype(np.float32)
Y = RNG.standard_normal((16, 2)).astype(np.float32)


def run(lib, steps, poisoned, **options):
    model = lib.nn.Linear(6, 2)
    with lib.no_grad():
        model.weight.copy_(lib.tensor(np.full((2, 6), 0.1, np.float32)))
        model.bias.fill_(0.0)
    optimizer = lib.optim.SGD(model.parameters(), lr=0.05)
    scaler = (lib.amp.GradScaler("cpu", **options))
    scales, skipped = [], []
    for step in range(steps):
        optimizer.zero_grad()
        loss = ((model(lib.tensor(X)) - lib.tensor(Y)) ** 2).mean()
        scaler.scale(loss).backward()
        if step in poisoned:
            model.weight.grad[0, 0] = poisoned[step]
        before = model.weight.detach().numpy().copy()
        scaler.step(optimizer)
        skipped.append(bool(np.array_equal(before, model.weight.detach().numpy())))
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, skipped, model.weight.detach().numpy(), scaler.state_dict()


POISONED = {2: float("inf"), 3: float("nan"), 11: -float("inf"), 12: float("inf"), 20: float("nan")}


@pytest.mark.parametrize("options", [dict(growth_interval=3), dict(init_scale=2.0 ** 10,
                                     growth_factor=4.0, backoff_factor=0.25, growth_interval=2),
                                     dict()], ids=["interval-3", "custom", "defaults"])
def test_scales_skips_weights_and_state_match_torch_over_30_steps(options):
    ours = run(linea, 30, POISONED, **options)
    theirs = run(torch, 30, POISONED, **options)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1] and sum(ours[1]) == len(POISONED)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-5, atol=1e-6)
    assert ours[3] == theirs[3]


def test_state_dict_round_trips_and_loads_torch_s():
    theirs = torch.amp.GradScaler("cpu", growth_interval=5)
    ours = linea.amp.GradScaler("cpu")
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict() == theirs.state_dict()


def test_misuse_raises_torch_s_errors():
    model = nn.Linear(2, 1)
    optimizer = linea.optim.SGD(model.parameters(), lr=0.1)
    scaler = linea.amp.GradScaler()
    scaler.scale(model(linea.ones(1, 2)).sum()).backward()
    scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(optimizer)
    scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.step(optimizer)
    scaler.update()
    half = nn.Linear(2, 1).half()
    half_optimizer = linea.optim.SGD(half.parameters(), lr=0.1)
    scaler.scale(half(linea.ones(1, 2).half()).sum()).backward()
    with pytest.raises(ValueError, match="FP16 gradients"):
        scaler.step(half_optimizer)
    disabled = linea.amp.GradScaler(enabled=False)
    loss = model(linea.ones(1, 2)).sum()
    assert disabled.scale(loss) is loss and disabled.get_scale() == 1.0 and disabled.state_dict() == {}
