"""``linea demo --seed S`` and its PyTorch twin: both seeded, nothing copied between them."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import _demo

from _helpers import train_demo_model

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")


def torch_twin_data(seed: int):
    """The demo's split, written with torch: the digits shuffled by randperm on Generator(seed)."""
    from linea.data import load_digits

    images, labels = load_digits()
    images /= 16.0
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).numpy()
    test_size = int(round(len(labels) * 0.2))
    return images[order[test_size:]], labels[order[test_size:]]


@pytest.mark.parametrize("seed", [0, 3])
def test_demo_trains_what_its_torch_twin_trains(seed):
    epochs, batch_size = 20, 32
    torch.set_num_threads(1)
    linea.manual_seed(seed)
    x_train, y_train, _, _ = _demo.split_digits(seed)
    ours = _demo.build_model()
    opt_ours = linea.optim.Adam(ours.parameters(), lr=1e-3)
    orders = _demo.batch_orders(len(y_train), epochs, seed + 1)

    torch.manual_seed(seed)
    x_twin, y_twin = torch_twin_data(seed)
    theirs = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    shuffler = torch.Generator().manual_seed(seed + 1)

    assert np.array_equal(x_train, x_twin) and np.array_equal(y_train, y_twin)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert a.numpy().tobytes() == b.detach().numpy().tobytes()  # the same initial weights
    worst_step = 0.0
    for order in orders:
        assert np.array_equal(order, torch.randperm(len(y_twin), generator=shuffler).numpy())
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            loss = linea.nn.functional.cross_entropy(ours(linea.from_numpy(x_train[index])),
                                                     linea.from_numpy(y_train[index]))
            opt_ours.zero_grad()
            loss.backward()
            opt_ours.step()
            twin = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x_twin[index])),
                                                     torch.from_numpy(y_twin[index]))
            opt_theirs.zero_grad()
            twin.backward()
            opt_theirs.step()
            worst_step = max(worst_step, abs(loss.item() - twin.item()) / (1.0 + abs(twin.item())))
    assert worst_step < 1e-5, f"largest per-step loss difference (relative): {worst_step:.3g}"
    # float32 round-off is relative: each weight within 1e-6·(1 + |w|) of torch's (the absolute
    # worst is about 1e-6 — matrix products sum in another order than MKL's, step after step).
    worst = max(float((np.abs(a.numpy() - b.detach().numpy()) / (1 + np.abs(b.detach().numpy()))).max())
                for a, b in zip(ours.parameters(), theirs.parameters()))
    assert worst < 1e-6, f"largest parameter difference after {epochs} epochs: {worst:.3g}"


def test_run_demo_is_the_same_training(tmp_path):
    """run_demo (what `linea demo --seed 0` runs) ends with the weights of the loop above."""
    result = _demo.run_demo(epochs=2, seed=0, quiet=True, checkpoint=str(tmp_path / "demo.safetensors"))
    model, _, _ = train_demo_model(2, seed=0)
    for a, b in zip(result["model"].parameters(), model.parameters(), strict=True):
        assert a.numpy().tobytes() == b.numpy().tobytes()
