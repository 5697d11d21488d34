"""The demo's MLP against a PyTorch twin: same initial weights, same batches, same epochs."""
import numpy as np
import pytest

import linea
from linea import _demo

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")


def test_demo_training_matches_a_torch_twin_within_1e_4():
    epochs, batch_size, seed = 20, 32, 0
    torch.set_num_threads(1)
    linea.manual_seed(seed)
    x_train, y_train, _, _ = _demo.split_digits(seed)
    ours = _demo.build_model()
    theirs = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():
        for (_, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
            b.copy_(torch.from_numpy(a.numpy().copy()))
    opt_ours = linea.optim.Adam(ours.parameters(), lr=1e-3)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    orders = _demo.batch_orders(len(y_train), epochs, seed + 1)
    for order in orders:
        _demo.train_epoch(ours, opt_ours, x_train, y_train, order, batch_size)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x_train[index])),
                                                     torch.from_numpy(y_train[index]))
            opt_theirs.zero_grad()
            loss.backward()
            opt_theirs.step()
    worst = 0.0
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        worst = max(worst, float(np.abs(a.numpy() - b.detach().numpy()).max()))
    assert worst < 1e-4, f"largest parameter difference after {epochs} epochs: {worst:.3g}"
