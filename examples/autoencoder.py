"""An autoencoder of nn.Linear layers: 64 → 32 → 8 → 32 → 64 on the digits.

Run: python examples/autoencoder.py [--fast]
"""
import argparse

import linea
from linea import nn
from linea.data import load_digits
from linea.utils.data import DataLoader, TensorDataset


class AutoEncoder(nn.Module):
    def __init__(self, features=64, code=8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, code))
        self.decoder = nn.Sequential(nn.Linear(code, 32), nn.ReLU(), nn.Linear(32, features),
                                     nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast", action="store_true", help="one epoch, for the test suite")
    args = parser.parse_args(argv)
    images, _ = load_digits()
    images = images[linea.randperm(len(images), generator=linea.Generator().manual_seed(0)).numpy()]
    images /= 16.0
    linea.manual_seed(0)
    model = AutoEncoder()
    optimizer = linea.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(TensorDataset(images[:1500]), batch_size=64, shuffle=True)
    test = linea.from_numpy(images[1500:])
    with linea.no_grad():
        before = nn.functional.mse_loss(model(test), test).item()
    for epoch in range(1 if args.fast else 60):
        for (x,) in loader:
            loss = nn.functional.mse_loss(model(x), x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with linea.no_grad():
        after = nn.functional.mse_loss(model(test), test).item()
    print(f"held-out reconstruction MSE through an 8-number code: {before:.4f} -> {after:.4f}")
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
