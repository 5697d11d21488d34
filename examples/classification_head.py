"""A classification head on frozen features: only the final nn.Linear learns.

A feature extractor is trained briefly on digits 0–4, then frozen with
``requires_grad_(False)``; a new ``Linear(hidden, 10)`` head is trained on all ten
classes. The backbone's weights are checked to be unchanged.

Run: python examples/classification_head.py [--fast]
"""
import argparse

import numpy as np

import linea
from linea import nn
from linea.data import load_digits


def fit(model, parameters, x, y, steps, lr=3e-3):
    optimizer = linea.optim.Adam(parameters, lr=lr)
    generator = linea.Generator().manual_seed(0)
    for _ in range(steps):
        index = linea.randint(0, len(y), (64,), generator=generator).numpy()
        loss = nn.functional.cross_entropy(model(x[index]), linea.tensor(y[index]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast", action="store_true", help="a few steps, for the test suite")
    args = parser.parse_args(argv)
    steps = 30 if args.fast else 600
    images, labels = load_digits()
    shuffle = linea.randperm(len(labels), generator=linea.Generator().manual_seed(0)).numpy()
    images, labels = images[shuffle], labels[shuffle]    # writers mixed across the split
    images /= 16.0
    linea.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
    pretrain = nn.Sequential(backbone, nn.Linear(64, 5))
    first_half = labels[:1400] < 5
    fit(pretrain, pretrain.parameters(), images[:1400][first_half], labels[:1400][first_half], steps)

    backbone.requires_grad_(False)                 # freeze the features
    frozen = {k: v.numpy().copy() for k, v in backbone.state_dict().items()}
    head = nn.Linear(64, 10)
    classifier = nn.Sequential(backbone, head)
    fit(classifier, head.parameters(), images[:1400], labels[:1400], steps)

    unchanged = all(np.array_equal(frozen[k], v.numpy()) for k, v in backbone.state_dict().items())
    trainable = sum(p.numel() for p in classifier.parameters() if p.requires_grad)
    total = sum(p.numel() for p in classifier.parameters())
    with linea.no_grad():
        accuracy = float((classifier(images[1400:]).argmax(1).numpy() == labels[1400:]).mean())
    print(f"trainable parameters: {trainable:,} of {total:,} (the head only); backbone "
          f"unchanged: {unchanged}; test accuracy on all 10 classes: {accuracy:.1%}")
    return {"accuracy": accuracy, "backbone_unchanged": unchanged, "trainable": trainable}


if __name__ == "__main__":
    main()
