"""The explanation pages' figures, drawn with matplotlib by the docs build (mkdocs-gen-files).

Nothing here is committed as an image: ``mkdocs build`` runs this script and the PNGs
exist only in the built site. ``python docs/figures.py OUT_DIR`` draws them into a folder.
"""
import io
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import linea  # noqa: E402
from linea import nn  # noqa: E402
from linea.keras.layers import Dense  # noqa: E402


def weight_and_kernel():
    """nn.Linear(4, 3)'s weight (3, 4) beside the kernel (4, 3) Keras stores for the same map."""
    linea.manual_seed(0)
    layer = nn.Linear(4, 3)
    weight = layer.weight.numpy()
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.6), gridspec_kw={"width_ratios": [4, 3]},
                                         layout="constrained")
    for axis, matrix, title, rows, cols in (
            (left, weight, "PyTorch weight (out=3, in=4)", "output unit", "input feature"),
            (right, weight.T, "Keras kernel (in=4, units=3) = weightᵀ", "input feature", "output unit")):
        image = axis.imshow(matrix, cmap="coolwarm", vmin=-0.5, vmax=0.5)
        for (i, j), value in np.ndenumerate(matrix):
            axis.text(j, i, f"{value:+.2f}", ha="center", va="center", fontsize=8)
        axis.set(title=title, ylabel=rows, xlabel=cols, xticks=range(matrix.shape[1]), yticks=range(matrix.shape[0]))
    figure.colorbar(image, ax=[left, right], shrink=0.8)
    return figure


def one_output_unit():
    """Output unit j is the dot product of row j of the weight with x, plus bias j."""
    linea.manual_seed(1)
    layer = nn.Linear(6, 3)
    x = np.linspace(-1, 1, 6).astype(np.float32)
    y = layer(linea.from_numpy(x)).detach().numpy()
    row = layer.weight.numpy()[0]
    products = row * x
    figure, axis = plt.subplots(figsize=(8, 3.4), layout="constrained")
    axis.bar(range(6), products, color=["tab:red" if p < 0 else "tab:blue" for p in products])
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set(xlabel="input feature i", ylabel="weight[0, i] · x[i]",
             title=f"y[0] = Σ weight[0, i]·x[i] + bias[0] = {products.sum():+.3f} {layer.bias.numpy()[0]:+.3f} "
                   f"= {y[0]:+.3f}")
    return figure


def default_initialisations():
    """The default weight draws of nn.Linear(256, 128) and Dense(128) on 256 inputs."""
    linea.manual_seed(0)
    torch_style = nn.Linear(256, 128).weight.numpy().ravel()
    dense = Dense(128)
    dense.build((None, 256))
    keras_style = dense.kernel.numpy().ravel()
    figure, axis = plt.subplots(figsize=(8, 3.4), layout="constrained")
    bins = np.linspace(-0.14, 0.14, 57)
    axis.hist(torch_style, bins=bins, alpha=0.6, label=f"nn.Linear: U(±1/√fan_in) = U(±{1 / math.sqrt(256):.4f})")
    limit = math.sqrt(6 / (256 + 128))
    axis.hist(keras_style, bins=bins, alpha=0.6, label=f"Dense: glorot_uniform U(±√(6/(fan_in+fan_out))) = U(±{limit:.4f})")
    axis.set(xlabel="weight value", ylabel="count", title="default initialisation, 256 inputs → 128 outputs")
    axis.legend(fontsize=8)
    return figure


FIGURES = {"weight-and-kernel.png": weight_and_kernel, "one-output-unit.png": one_output_unit,
           "default-initialisations.png": default_initialisations}


def png(draw) -> bytes:
    figure = draw()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def main():
    if __name__ == "__main__":  # python docs/figures.py OUT_DIR
        out = Path(sys.argv[1] if len(sys.argv) > 1 else "figures")
        out.mkdir(parents=True, exist_ok=True)
        for name, draw in FIGURES.items():
            (out / name).write_bytes(png(draw))
        return
    import mkdocs_gen_files

    for name, draw in FIGURES.items():
        with mkdocs_gen_files.open(f"figures/{name}", "wb") as handle:
            handle.write(png(draw))


main()
