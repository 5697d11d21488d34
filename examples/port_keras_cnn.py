"""Porting a Keras CNN to PyTorch, and the Flatten-order trap it hides.

A small Keras-style CNN (Conv2D → MaxPooling2D → Conv2D → Flatten → Dense) is trained on
the shipped 8×8 digits with linea's Keras flavour, saved as a .keras file, converted to a
PyTorch-layout state dict and loaded into its ``nn`` twin, which takes images (N, C, H, W)
where Keras took (N, H, W, C). The twin gives the same predictions.

Then the port most people write by hand: each kernel transposed to PyTorch's layout, and
nothing else. It loads without complaint — every shape fits — and it is wrong, because
Keras's Flatten emits an image's features in (H, W, C) order and PyTorch's in (C, H, W)
order, so the Dense after the Flatten reads every feature from the wrong place.

Run: python examples/port_keras_cnn.py [--fast]
"""
import argparse
import pathlib
import tempfile

import numpy as np

import linea
from linea import convert, io, nn
from linea import keras as lk
from linea.data import load_digits


def keras_cnn():
    return lk.Sequential([
        lk.Input(shape=(8, 8, 1)),
        lk.layers.Conv2D(8, 3, padding="same", activation="relu"),
        lk.layers.MaxPooling2D(),
        lk.layers.Conv2D(16, 3, activation="relu"),
        lk.layers.Flatten(),
        lk.layers.Dense(10),
    ])


def torch_twin():
    """The same network as PyTorch users write it: channels first, activations as modules."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding="same"), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 10),
    ).eval()


def transposed_only(model) -> dict:
    """The naive port: every kernel moved to PyTorch's layout, the Flatten order ignored."""
    state, index = {}, {"conv2d": 0, "conv2d_1": 3, "dense": 6}
    for layer, position in zip([l for l in model.layers if l.weights], index.values()):
        kernel, bias = (w.numpy() for w in layer.weights)
        weight = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
        state[f"{position}.weight"], state[f"{position}.bias"] = weight.copy(), bias.copy()
    return state


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast", action="store_true", help="a short training, for the test suite")
    args = parser.parse_args(argv)
    digits, labels = load_digits()
    order = linea.randperm(len(labels), generator=linea.Generator().manual_seed(0)).numpy()
    images = (digits[order] / 16.0).reshape(-1, 8, 8, 1)   # Keras: (N, H, W, C)
    labels = labels[order]
    linea.manual_seed(0)
    model = keras_cnn()
    model.compile(optimizer="adam", loss=lk.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    train = 400 if args.fast else 1400
    model.fit(images[:train], labels[:train], epochs=2 if args.fast else 12, batch_size=32, verbose=0)
    test_images, test_labels = images[1400:], labels[1400:]
    keras_logits = model.predict(test_images, verbose=0)
    keras_accuracy = float((keras_logits.argmax(1) == test_labels).mean())

    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        model.save(folder / "cnn.keras")                                  # what the porter has
        converted = convert.to_nn(io.load_model(folder / "cnn.keras", flavour="keras"))
        io.save_state_dict(converted.state_dict(), folder / "cnn.safetensors")
        twin = torch_twin()
        twin.load_state_dict(io.load_state_dict(folder / "cnn.safetensors"))  # strict: every key
    nchw = linea.tensor(test_images.transpose(0, 3, 1, 2))             # PyTorch: (N, C, H, W)
    with linea.no_grad():
        twin_logits = twin(nchw).numpy()
        naive = torch_twin()
        naive.load_state_dict(transposed_only(model))
        naive_logits = naive(nchw).numpy()
    same = float((twin_logits.argmax(1) == keras_logits.argmax(1)).mean())
    naive_same = float((naive_logits.argmax(1) == keras_logits.argmax(1)).mean())
    difference = float(np.abs(twin_logits - keras_logits).max())
    naive_difference = float(np.abs(naive_logits - keras_logits).max())
    print(f"Keras-flavour CNN: test accuracy {keras_accuracy:.1%} on {len(test_labels)} digits")
    print(f"converted by linea, loaded into the nn twin: same prediction for {same:.1%}, "
          f"max |logit difference| {difference:.2g}")
    print(f"kernels transposed only (no Flatten permutation): same prediction for {naive_same:.1%}, "
          f"max |logit difference| {naive_difference:.2g} — wrong, and no error was raised")
    return {"keras_accuracy": keras_accuracy, "agreement": same, "difference": difference,
            "naive_agreement": naive_same, "naive_difference": naive_difference}


if __name__ == "__main__":
    main()
