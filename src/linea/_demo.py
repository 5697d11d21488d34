"""``linea demo``: train an MLP of ``nn.Linear`` layers on the shipped digits, end to end.

Loads the 1,797 UCI digits, trains 64 → 128 → ReLU → 10 with Adam for a few
epochs (a progress bar per epoch), reports test accuracy, saves a checkpoint,
reloads it into a fresh model and checks the predictions are identical, and
optionally plots the curves.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

import linea
from linea import nn

__all__ = ["build_model", "split_digits", "train_epoch", "evaluate", "run_demo"]


def build_model(hidden: int = 128) -> nn.Sequential:
    """The demo's MLP: Linear(64, hidden) → ReLU → Linear(hidden, 10)."""
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def split_digits(seed: int = 0, test_fraction: float = 0.2):
    """(x_train, y_train, x_test, y_test): pixels scaled to [0, 1], a seeded shuffle split."""
    from linea.data import load_digits

    images, labels = load_digits()
    images /= 16.0
    order = linea.randperm(len(labels), generator=linea.Generator().manual_seed(seed)).numpy()
    test_size = int(round(len(labels) * test_fraction))
    test, train = order[:test_size], order[test_size:]
    return images[train], labels[train], images[test], labels[test]


def batch_orders(count: int, epochs: int, seed: int):
    """The shuffled sample order of each epoch, from one seeded generator."""
    generator = linea.Generator().manual_seed(seed)
    return [linea.randperm(count, generator=generator).numpy() for _ in range(epochs)]


def train_epoch(model, optimizer, images, labels, order, batch_size: int, progress=None):
    """One pass over the data in ``order``; returns (mean loss, accuracy)."""
    model.train()
    total_loss, correct = 0.0, 0
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        x, y = linea.from_numpy(images[index]), linea.from_numpy(labels[index])
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(index)
        correct += int((logits.numpy().argmax(1) == labels[index]).sum())
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"loss={loss.item():.4f} acc={correct / (start + len(index)):.3f}")
    return total_loss / len(order), correct / len(order)


@linea.no_grad()
def evaluate(model, images, labels) -> tuple[float, float, np.ndarray]:
    """(loss, accuracy, logits) of ``model`` on the whole set, in eval mode."""
    model.eval()
    logits = model(linea.from_numpy(images))
    loss = nn.functional.cross_entropy(logits, linea.from_numpy(labels)).item()
    return loss, float((logits.numpy().argmax(1) == labels).mean()), logits.numpy()


def plot_history(history: dict, path: str) -> None:
    from linea._errors import require

    require("matplotlib", "plot", "--plot").use("Agg")
    import matplotlib.pyplot as plt
    epochs = range(1, len(history["train_loss"]) + 1)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, history["train_loss"], marker="o", label="train")
    left.plot(epochs, history["test_loss"], marker="o", label="test")
    left.set(title="cross-entropy loss", xlabel="epoch")
    right.plot(epochs, history["train_acc"], marker="o", label="train")
    right.plot(epochs, history["test_acc"], marker="o", label="test")
    right.set(title="accuracy", xlabel="epoch")
    from matplotlib.ticker import MaxNLocator

    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("linea demo: MLP of nn.Linear on the UCI digits")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _inference_seconds(model, images, repeats: int = 20) -> float:
    """Best time of one forward pass over ``images`` (batch = the whole test set)."""
    x = linea.from_numpy(images)
    best = float("inf")
    with linea.no_grad():
        for _ in range(repeats):
            started = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - started)
    return best


def compare_precision(model, images, labels, quantize: bool, autocast: str | None) -> list[str]:
    """Lines setting int8 and/or bf16-autocast inference beside float32's: accuracy, size, time."""
    from linea.quantization import kernel_info, model_size, quantize_dynamic

    _, accuracy, _ = evaluate(model, images, labels)
    size, seconds = model_size(model), _inference_seconds(model, images)
    lines = [f"float32        accuracy {accuracy:.2%}  weights {size / 1024:7.1f} KiB  "
             f"inference {seconds * 1e3:6.2f} ms ({len(labels)} images)"]
    if quantize:
        int8 = quantize_dynamic(model)
        _, accuracy8, _ = evaluate(int8, images, labels)
        seconds8 = _inference_seconds(int8, images)
        lines.append(f"int8 dynamic   accuracy {accuracy8:.2%}  weights {model_size(int8) / 1024:7.1f} KiB  "
                     f"inference {seconds8 * 1e3:6.2f} ms  ({size / model_size(int8):.1f}× smaller, "
                     f"{seconds / seconds8:.2f}× the speed; kernel {kernel_info()['path']})")
    if autocast:
        low = {"bf16": linea.bfloat16, "fp16": linea.float16}[autocast]
        with linea.autocast("cpu", dtype=low):
            _, accuracy16, _ = evaluate(model, images, labels)
            seconds16 = _inference_seconds(model, images)
        lines.append(f"{autocast} autocast  accuracy {accuracy16:.2%}  weights {size / 1024:7.1f} KiB  "
                     f"inference {seconds16 * 1e3:6.2f} ms  (float32 master weights; "
                     f"{seconds / seconds16:.2f}× the speed)")
    return lines


def run_demo(epochs: int = 20, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
             checkpoint: str | None = None, plot: str | None = None,
             quiet: bool = False, out=None, quantize: bool = False,
             autocast: str | None = None) -> dict:
    """Train, test, save, reload and verify; returns the history and the final figures."""
    from tqdm import tqdm

    out = out or sys.stdout
    say = (lambda text: None) if quiet else (lambda text: print(text, file=out, flush=True))
    linea.manual_seed(seed)
    x_train, y_train, x_test, y_test = split_digits(seed)
    model = build_model()
    optimizer = linea.optim.Adam(model.parameters(), lr=lr)
    say(f"linea demo: {model}")
    say(f"UCI digits: {len(y_train)} training and {len(y_test)} test images of 8×8 pixels; "
        f"{sum(p.numel() for p in model.parameters()):,} parameters; Adam(lr={lr}), batch {batch_size}")
    history = {"train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    steps = -(-len(y_train) // batch_size)
    on_terminal = not quiet and getattr(out, "isatty", lambda: False)()
    started = time.perf_counter()
    for epoch, order in enumerate(batch_orders(len(y_train), epochs, seed + 1), start=1):
        # A live bar on a terminal; one plain line per epoch in logs and pipes.
        with tqdm(total=steps, desc=f"epoch {epoch:2d}/{epochs}", unit="batch",
                  disable=not on_terminal, leave=True, file=out, ncols=100) as progress:
            train_loss, train_acc = train_epoch(model, optimizer, x_train, y_train, order,
                                                batch_size, progress)
            test_loss, test_acc, _ = evaluate(model, x_test, y_test)
            progress.set_postfix_str(f"loss={train_loss:.4f} acc={train_acc:.3f} "
                                     f"test_acc={test_acc:.3f}")
        if not on_terminal:
            say(f"epoch {epoch:2d}/{epochs}  loss {train_loss:.4f}  acc {train_acc:.3f}  "
                f"test_loss {test_loss:.4f}  test_acc {test_acc:.3f}")
        for key, value in zip(history, (train_loss, train_acc, test_loss, test_acc)):
            history[key].append(value)
    seconds = time.perf_counter() - started
    _, test_acc, logits = evaluate(model, x_test, y_test)
    say(f"test accuracy: {test_acc:.2%} ({int(round(test_acc * len(y_test)))}/{len(y_test)}) "
        f"after {epochs} epochs in {seconds:.1f} s")

    with tempfile.TemporaryDirectory(prefix="linea-demo-") as folder:
        path = checkpoint or os.path.join(folder, "linea-demo.safetensors")
        linea.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "epoch": epochs}, path)
        restored = build_model()
        restored.load_state_dict(linea.load(path)["model"])
    _, _, restored_logits = evaluate(restored, x_test, y_test)
    identical = bool(np.array_equal(logits, restored_logits))
    where = f"saved to {checkpoint}" if checkpoint else "saved to a temporary folder (--checkpoint PATH keeps it)"
    say(f"checkpoint {where}; reloaded into a fresh model: predictions "
        f"{'identical' if identical else 'DIFFER'}")
    if not identical:
        raise RuntimeError("the reloaded model's predictions differ from the trained model's")
    if quantize or autocast:
        for line in compare_precision(model, x_test, y_test, quantize, autocast):
            say(line)
    if plot:
        plot_history(history, plot)
        say(f"loss and accuracy curves drawn to {plot}")
    return {"history": history, "test_accuracy": test_acc, "identical": identical,
            "seconds": seconds, "model": model}
