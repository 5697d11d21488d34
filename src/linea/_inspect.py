"""``linea inspect`` and ``linea convert``: what a weights file holds, and moving it across.

Convert reads the input into the neutral layer list, writes the other
framework's file, reads that file back, and runs both models on the same random
inputs: the printed maximum difference is the proof the move was right.
"""
from __future__ import annotations

import os

import numpy as np

from linea import io
from linea.io._layout import _group_layout, _groups

__all__ = ["inspect_rows", "format_table", "convert_file"]


def inspect_rows(path, format=None, layout=None) -> tuple[list[dict], str]:
    """One row per layer: name, kind, convention, shapes, dtype, parameters; and the format."""
    kind = io.detect_format(path, format)
    source = os.fspath(path)
    if kind == "onnx" or source.endswith(".keras"):
        specs = io.read_specs(path, kind)
        convention = "onnx (Gemm transB=1: PyTorch layout)" if kind == "onnx" else "keras"
        rows = []
        for index, spec in enumerate(specs):
            if spec.kind == "linear":
                shapes = (f"kernel {spec.weight.shape[::-1]}" if convention == "keras"
                          else f"weight {spec.weight.shape}")
                if spec.bias is not None:
                    shapes += f", bias {spec.bias.shape}"
                rows.append({"layer": spec.name or str(index), "type": "Dense" if convention == "keras" else "Linear",
                             "convention": convention.split(" ")[0], "shapes": shapes,
                             "dtype": str(spec.weight.dtype), "params": spec.parameter_count})
            elif spec.kind == "layernorm":
                rows.append({"layer": spec.name or str(index), "type": f"LayerNorm(eps={spec.eps:g})",
                             "convention": convention.split(" ")[0],
                             "shapes": f"scale {spec.weight.shape}", "dtype": str(spec.weight.dtype),
                             "params": spec.parameter_count})
            else:
                label = f"activation: {spec.activation}" if spec.kind == "activation" else spec.kind
                rows.append({"layer": spec.name or "", "type": label, "convention": "",
                             "shapes": "", "dtype": "", "params": 0})
        return rows, kind
    state = io.load_state_dict(path, kind)
    rows = []
    for prefix, leaves in _groups(state).items():
        convention = _group_layout(prefix, leaves) or (layout or "unknown (square: see --from)")
        matrix = next((a for a in leaves.values() if a.ndim == 2), None)
        if matrix is not None:
            layer_type = "Dense" if convention == "keras" else "Linear"
            if convention == "torch":
                layer_type += f"(in={matrix.shape[1]}, out={matrix.shape[0]})"
            elif convention == "keras":
                layer_type += f"(in={matrix.shape[0]}, units={matrix.shape[1]})"
        else:
            layer_type = "norm"
        rows.append({"layer": prefix or "(top)", "type": layer_type, "convention": convention,
                     "shapes": ", ".join(f"{leaf} {tuple(a.shape)}" for leaf, a in leaves.items()),
                     "dtype": ", ".join(sorted({str(a.dtype) for a in leaves.values()})),
                     "params": int(sum(a.size for a in leaves.values()))})
    return rows, kind


def format_table(rows: list[dict], title: str) -> str:
    columns = ("layer", "type", "convention", "shapes", "dtype", "params")
    cells = [[str(row[c]) if c != "params" else f"{row[c]:,}" for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join("-" * w for w in widths)
    out = [title, "  ".join(c.ljust(w) if c != "params" else c.rjust(w) for c, w in zip(columns, widths)), line]
    for row in cells:
        out.append("  ".join(v.rjust(w) if i == 5 else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
    total = sum(row["params"] for row in rows)
    out += [line, f"total parameters: {total:,}"]
    return "\n".join(out)


def _run(specs, x):
    from linea._autograd import no_grad
    from linea.io._spec import nn_from_spec

    model = nn_from_spec(specs)
    with no_grad():
        return model(x).numpy()


def convert_file(source, target, from_layout=None, to_layout=None, activation=None,
                 samples: int = 64, seed: int = 0) -> tuple[str, float]:
    """Write ``target`` from ``source``; returns (description, max |difference|)."""
    specs = io.read_specs(source, activation=activation, layout=from_layout)
    source_kind = io.detect_format(source)
    target_kind = io.detect_format(target)
    if to_layout is None:  # the other framework's layout by default
        if target_kind == "keras":
            to_layout = "keras"
        elif target_kind in ("torch", "onnx"):
            to_layout = "torch"
        else:
            came_from = from_layout or ("keras" if source_kind == "keras" else "torch")
            state = io.load_state_dict(source) if source_kind in ("safetensors", "torch") else None
            if state is not None:
                named = {_group_layout(p, leaves) for p, leaves in _groups(state).items()} - {None}
                came_from = named.pop() if len(named) == 1 else came_from
            to_layout = "torch" if came_from == "keras" else "keras"
    io.write_specs(specs, target, target_kind, layout=to_layout)
    written = io.read_specs(target, target_kind, activation=activation or "linear", layout=to_layout)
    if target_kind in ("safetensors", "torch") or (target_kind == "keras" and not os.fspath(target).endswith(".keras")):
        # A bare state dict holds no activations: rebuild it with the source's layer list.
        weights = iter([s for s in written if s.kind in ("linear", "layernorm")])
        rebuilt = []
        for spec in specs:
            if spec.kind in ("linear", "layernorm"):
                copy = next(weights)
                copy.eps, copy.name = spec.eps, spec.name
                rebuilt.append(copy)
            else:
                rebuilt.append(spec)
        written = rebuilt
    first = next(s for s in specs if s.kind in ("linear", "layernorm"))
    width = first.weight.shape[1] if first.kind == "linear" else first.weight.shape[0]
    x = np.random.default_rng(seed).standard_normal((samples, width)).astype(first.weight.dtype)
    difference = float(np.max(np.abs(_run(specs, x) - _run(written, x))))
    layers = sum(1 for s in specs if s.kind == "linear")
    return f"{target_kind} ({to_layout} layout), {layers} linear layer(s)", difference
