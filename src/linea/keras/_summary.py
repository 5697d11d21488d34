"""``model.summary()``: Keras 3's table of layers, output shapes and parameter counts."""
from __future__ import annotations

import shutil


def readable_size(size_in_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size_in_bytes < 1024 or unit == "TB":
            return f"{size_in_bytes:.2f} {unit}"
        size_in_bytes /= 1024


def _cell(text: str, width: int, right: bool = False) -> str:
    text = text if len(text) <= width - 2 else text[:width - 3] + "…"
    return " " + (text.rjust(width - 2) if right else text.ljust(width - 2)) + " "


def summary_text(model, line_length=None) -> str:
    length = line_length or min(88, shutil.get_terminal_size((80, 24)).columns - 4)
    first, second = int(0.45 * length), int(0.80 * length)
    widths = (first - 1, second - first - 2, length - second - 1)
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "_output_shape", None)
        params = sum(p.numel() for p in layer.weights) if layer.built else 0
        rows.append((f"{layer.name} ({type(layer).__name__})",
                     str(tuple(shape)) if shape is not None else "?", f"{params:,}"))
    def line(left, middle, right, fill):
        return left + middle.join(fill * w for w in widths) + right

    out = [f'Model: "{model.name}"', line("┏", "┳", "┓", "━"),
           "┃" + "┃".join(_cell(t, w, i == 2) for i, (t, w) in enumerate(zip(
               ("Layer (type)", "Output Shape", "Param #"), widths))) + "┃",
           line("┡", "╇", "┩", "━")]
    for index, row in enumerate(rows):
        out.append("│" + "│".join(_cell(t, w, i == 2) for i, (t, w) in enumerate(zip(row, widths))) + "│")
        out.append(line("├", "┼", "┤", "─") if index < len(rows) - 1 else line("└", "┴", "┘", "─"))
    if not rows:
        out.append(line("└", "┴", "┘", "─"))
    trainable = [p for p in model.weights if p.requires_grad]
    frozen = [p for p in model.weights if not p.requires_grad]

    def total(params):
        count = sum(p.numel() for p in params)
        return f"{count:,} ({readable_size(sum(p.numel() * p.element_size() for p in params))})"

    out += [f" Total params: {total(model.weights)}", f" Trainable params: {total(trainable)}",
            f" Non-trainable params: {total(frozen)}"]
    return "\n".join(out)
