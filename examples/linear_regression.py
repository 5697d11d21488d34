"""Linear regression with one nn.Linear: recover y = 3·x₁ − 2·x₂ + 0.5 from noisy samples.

Run: python examples/linear_regression.py [--fast]
"""
import argparse

import numpy as np

import linea
from linea import nn


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast", action="store_true", help="a few steps, for the test suite")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 2)).astype(np.float32)
    y = (x @ np.array([3.0, -2.0], np.float32) + 0.5 + 0.05 * rng.standard_normal(512)).astype(np.float32)
    linea.manual_seed(0)
    model = nn.Linear(2, 1)                       # weight (1, 2), bias (1,)
    optimizer = linea.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.MSELoss()
    steps = 20 if args.fast else 200
    inputs, targets = linea.from_numpy(x), linea.from_numpy(y).reshape(-1, 1)
    first = None
    for step in range(steps):
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    weight, bias = model.weight.numpy().ravel(), model.bias.item()
    print(f"learned weight [{weight[0]:.3f}, {weight[1]:.3f}] bias {bias:.3f} "
          f"(true [3.0, -2.0] and 0.5); MSE {first:.4f} -> {loss.item():.4f}")
    return {"first_loss": first, "final_loss": loss.item(), "weight": weight, "bias": bias}


if __name__ == "__main__":
    main()
