"""nn.Linear vs nn.Conv2d on the 8×8 digits: parameter counts and accuracy side by side.

A Linear layer connects every pixel to every unit; a Conv2d shares a small kernel
across positions. Both end in a Linear classifier.

Run: python examples/linear_vs_conv.py [--fast]
"""
import argparse

import linea
from linea import nn
from linea.data import load_digits
from linea.utils.data import DataLoader, TensorDataset


def models():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    cnn = nn.Sequential(nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, kernel_size=3, stride=2, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    return {"Linear (MLP)": mlp, "Conv2d (CNN)": cnn}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast", action="store_true", help="one epoch, for the test suite")
    args = parser.parse_args(argv)
    images, labels = load_digits()
    shuffle = linea.randperm(len(labels), generator=linea.Generator().manual_seed(0)).numpy()
    images, labels = images[shuffle], labels[shuffle]    # writers mixed across the split
    images = linea.from_numpy((images / 16.0).reshape(-1, 1, 8, 8))
    labels = linea.from_numpy(labels)
    results = {}
    for name, model in models().items():
        linea.manual_seed(0)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        loader = DataLoader(TensorDataset(images[:1400], labels[:1400]), batch_size=32,
                            shuffle=True)
        optimizer = linea.optim.Adam(model.parameters(), lr=3e-3)
        for epoch in range(1 if args.fast else 12):
            for x, y in loader:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with linea.no_grad():
            accuracy = (model(images[1400:]).argmax(1) == labels[1400:]).float().mean().item()
        results[name] = {"parameters": sum(p.numel() for p in model.parameters()), "accuracy": accuracy}
    print(f"{'model':<14}{'parameters':>12}{'test accuracy':>16}")
    for name, row in results.items():
        print(f"{name:<14}{row['parameters']:>12,}{row['accuracy']:>16.1%}")
    return results


if __name__ == "__main__":
    main()
