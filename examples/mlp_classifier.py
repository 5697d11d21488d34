"""An MLP classifier, fc1 → ReLU → fc2, on the shipped UCI digits (the seeds' first model).

Run: python examples/mlp_classifier.py [--fast]
"""
import argparse


import linea
from linea import nn
from linea.data import load_digits
from linea.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, in_features=64, hidden=64, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(nn.functional.relu(self.fc1(x)))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast", action="store_true", help="one epoch, for the test suite")
    args = parser.parse_args(argv)
    images, labels = load_digits()
    shuffle = linea.randperm(len(labels), generator=linea.Generator().manual_seed(0)).numpy()
    images, labels = images[shuffle], labels[shuffle]    # writers mixed across the split
    images /= 16.0
    linea.manual_seed(0)
    train = DataLoader(TensorDataset(images[:1400], labels[:1400]), batch_size=32, shuffle=True)
    model = Net()
    optimizer = linea.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(1 if args.fast else 15):
        for x, y in train:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with linea.no_grad():
        predictions = model(images[1400:]).argmax(1).numpy()
    accuracy = float((predictions == labels[1400:]).mean())
    print(f"{model}\ntest accuracy on {len(predictions)} held-out digits: {accuracy:.1%}")
    return {"accuracy": accuracy}


if __name__ == "__main__":
    main()
