"""``linea inspect`` and ``linea convert``: what a weights file holds, and moving it across.

Convert reads the input into the neutral layer list, writes the other
framework's file, and checks it against the *source file's* outputs, computed by
the source's own framework where one is installed (onnxruntime, Keras, PyTorch);
the closing line names who computed both sides and every assumption the user
supplied. The written file replaces the target only when both agree.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from linea import io
from linea._errors import FormatError
from linea.io.kinds import KINDS
from linea.io._runners import run_independently
from linea.io._spec_images import IMAGE_KINDS, shape_after
from linea.io._layout import (_group_layout, _groups, _settled, layers_of_specs, ordered_groups,
                              specs_from_state)

__all__ = ["inspect_rows", "format_table", "convert_file", "ConvertReport"]


def inspect_rows(path, format=None, layout=None, with_note: bool = False):
    """One row per layer: name, kind, convention, shapes, dtype, parameters; and the format.

    With ``with_note``, also a line saying what the listing cannot know (or None).
    """
    file_format = io.detect_format(path, format)
    source = os.fspath(path)
    if io._architecture_file(file_format, source):
        specs = io.read_specs(path, file_format)
        convention = "onnx (Gemm transB=1: PyTorch layout)" if file_format == "onnx" else "keras"
        rows = [KINDS[spec.kind].inspect_row(spec, index, convention.split(" ")[0])
                for index, spec in enumerate(specs)]
        shape = specs[0].extra.get("input_shape") if specs else None
        for row, spec in zip(rows, specs):  # the per-sample output (C, H, W) of image layers
            shape = shape_after(spec, shape)
            if shape is not None and spec.kind in IMAGE_KINDS + ("flatten",):
                row["shapes"] = (row["shapes"] + ", " if row["shapes"] else "") + f"→ {tuple(shape)}"
        return (rows, file_format, None) if with_note else (rows, file_format)
    stored = io.read_stored(path, file_format, shapes_only=True)  # headers only: any file size
    state = stored.tensors
    rows = []
    groups = ordered_groups(state)
    prefixes = list(groups)
    if not stored.ordered and not all(_settled(a, b) for a, b in zip(prefixes, prefixes[1:])):
        rows_note = ("note: layers are listed by name; the file does not record the order of layers "
                     "whose names differ in more than a number (give --layers when converting)")
    else:
        rows_note = None
    for prefix, leaves in groups.items():
        convention = _group_layout(prefix, leaves) or (layout or "unknown (square: see --from)")
        matrix = next((a for a in leaves.values() if a.ndim == 2), None)
        kernel = next((a for a in leaves.values() if a.ndim == 4), None)
        if kernel is not None:
            out, group_in, kh, kw = kernel.shape if convention == "torch" else \
                (kernel.shape[3], kernel.shape[2], kernel.shape[0], kernel.shape[1])
            layer_type = (f"Conv2d(in/groups={group_in}, out={out}, kernel=({kh}, {kw}))"
                          if convention == "torch" else
                          f"Conv2D(in/groups={group_in}, filters={out}, kernel=({kh}, {kw}))")
        elif "running_mean" in leaves or "moving_mean" in leaves:
            layer_type = "BatchNorm" if convention == "torch" else "BatchNormalization"
        elif matrix is not None:
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
    return (rows, file_format, rows_note) if with_note else (rows, file_format)


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


@dataclass
class ConvertReport:
    """What ``convert_file`` wrote and how it checked it."""
    description: str
    difference: float
    samples: int
    reference: str        # who computed the source's outputs: "onnxruntime", "Keras", "PyTorch" or "linea"
    candidate: str        # who computed the written file's outputs
    assumptions: list = field(default_factory=list)
    flatten_note: str | None = None  # the Flatten permutation, where one was applied
    tolerance: float = 1e-4  # the largest difference accepted: 1e-4 · max(1, max |output|)

    @property
    def ok(self) -> bool:
        return self.difference <= self.tolerance

    @property
    def independent(self) -> bool:
        return self.reference != "linea"

    def verdict(self) -> str:
        against = (f"verified against {self.reference} on the source file" if self.independent else
                   "not verified against the source: no independent runner for the source file "
                   "is installed, so linea's reading of it")
        line = (f"{against} (written file run by {self.candidate}): max |difference| = "
                f"{self.difference:.3g} over {self.samples} inputs")
        if self.assumptions:
            line += "; assumed: " + "; ".join(self.assumptions)
        return line


def _input_shape(source, file_format, specs, samples: int) -> tuple:
    if file_format == "onnx":
        import onnx

        from linea.io._onnx_read import _declared_shape

        model = onnx.load(os.fspath(source), load_external_data=False)
        declared = _declared_shape(model.graph.input[0]) if model.graph.input else None
        if declared:
            shape = [samples if i == 0 and d is None else d for i, d in enumerate(declared)]
            if None not in shape:
                return tuple(shape)
    if file_format == "keras" and io._architecture_file(file_format, os.fspath(source)):
        from linea.io._keras_files import read_model

        declared = read_model(source)._input_shape
        if declared and all(d is not None for d in declared[1:]):
            if len(declared) == 4:  # Keras images (H, W, C): the layer list's are (C, H, W)
                return (samples, declared[3], declared[1], declared[2])
            return (samples, *declared[1:])
    recorded = specs[0].extra.get("input_shape") if specs else None
    if recorded is not None:
        return (samples, *recorded)
    first = next((s for s in specs if s.kind in ("linear", "layernorm")), None)
    if first is None or any(s.kind == "flatten" for s in specs[:specs.index(first)]):
        raise ValueError(f"{os.fspath(source)}: cannot tell the shape of the model's input to "
                         "check the conversion")
    return (samples, first.weight.shape[1]) if first.kind == "linear" else (samples, *first.weight.shape)


def _default_layout(stored, source_format, target_format, from_layout):
    """The other framework's layout; ``stored`` is the source's tensors (None for architecture files)."""
    if target_format == "keras":
        return "keras"
    if target_format in ("torch", "onnx"):
        return "torch"
    came_from = from_layout or ("keras" if source_format == "keras" else "torch")
    if source_format in ("safetensors", "torch"):
        came_from = _stored_layout(stored, came_from)
    return "torch" if came_from == "keras" else "keras"


def _assumptions(specs, activation, layers, from_layout, input_shape=None) -> list[str]:
    notes = []
    if layers is not None:
        notes.append("architecture given by --layers " +
                     (layers if isinstance(layers, str) else ",".join(layers)))
    if activation is not None:
        notes.append(f"activation between linear layers given by --activation {activation}")
    if from_layout is not None:
        notes.append(f"weight layout given by --from {from_layout}")
    if input_shape is not None:
        notes.append(f"image size given by --input-shape {','.join(map(str, input_shape))}")
    for spec in specs:
        if spec.kind in ("layernorm", "batchnorm") and spec.extra.get("eps_assumed"):
            label = "LayerNorm" if spec.kind == "layernorm" else "BatchNorm"
            notes.append(f"{label} {spec.name} eps = {spec.eps:g} (the framework's default; "
                         "the file does not record it)")
    return notes


def _flatten_note(specs, source_layout: str, target_layout: str) -> str | None:
    """What the conversion did about the features after a Flatten of images, if anything."""
    images = [spec.extra["image_shape"] for spec in specs if spec.kind == "flatten"
              and spec.extra.get("image_shape")]
    moved = [shape for shape in images if shape[0] > 1 and shape[1] * shape[2] > 1]
    if not moved or source_layout == target_layout:
        return None
    order = {"keras": "(H, W, C)", "torch": "(C, H, W)"}
    return (f"Flatten permutation applied: the layer after each Flatten of images "
            f"{', '.join(str(tuple(s)) for s in moved)} (C, H, W) now takes its features in "
            f"{order[target_layout]} order instead of {order[source_layout]}")


def _test_inputs(shape: tuple, dtype, seed: int, source) -> np.ndarray:
    """The random inputs that check a conversion, bounded by the source's own size.

    At most max(64 MiB, 4 × the file's size) of inputs: fewer samples if needed,
    a FormatError if one sample is already more (a tiny file declaring a huge input).
    """
    path = os.fspath(source)
    on_disk = os.path.getsize(path) if os.path.isfile(path) else 0
    budget = max(64 * 1024 ** 2, 4 * on_disk)
    per_sample = math.prod(shape[1:]) * np.dtype(dtype).itemsize
    if per_sample > budget:
        raise FormatError(
            f"{path}: its input of shape {list(shape[1:])} takes {per_sample} bytes per sample, "
            f"more than a file of {on_disk} bytes justifies ({budget}); the conversion cannot be "
            "checked, so nothing was written")
    samples = max(1, min(shape[0], budget // max(per_sample, 1)))
    drawn = dtype if np.dtype(dtype) in (np.float32, np.float64) else np.float32
    values = np.random.default_rng(seed).standard_normal((samples, *shape[1:]), dtype=drawn)
    return values.astype(dtype, copy=False)


def convert_file(source, target, from_layout=None, to_layout=None, activation=None,
                 samples: int = 64, seed: int = 0, *, layers=None, source_format=None,
                 target_format=None, input_shape=None) -> ConvertReport:
    """Write ``target`` from ``source`` and check it against the source file's own semantics.

    The written file replaces ``target`` only once its outputs agree with the
    source's (to 1e-4, relative to the outputs' size where they exceed 1: float32 carries ~7
    digits); otherwise nothing is written and the report says by how much.
    """
    source_format = io.detect_format(source, source_format)
    target_format = io.detect_format(target, target_format)
    weights_only = not io._architecture_file(source_format, os.fspath(source))
    if weights_only:  # the file is read once: its tensors serve the layer list and the layout
        stored = io.read_stored(source, source_format)
        specs = specs_from_state(stored, activation, from_layout, os.fspath(source), layers=layers,
                                 input_shape=input_shape)
    else:
        stored, specs = None, io.read_specs(source, source_format)
    if str(_dtype_of(specs)) == "bfloat16":  # the runners that verify a conversion take no bf16
        raise FormatError(f"{os.fspath(source)}: its weights have dtype bfloat16, which linea "
                          "loads (io.load_model) but cannot yet convert and verify; convert the "
                          "weights to float32 first; nothing was written")
    to_layout = to_layout or _default_layout(stored, source_format, target_format, from_layout)
    shape = _input_shape(source, source_format, specs, samples)
    x = _test_inputs(shape, _dtype_of(specs), seed, source)
    reference = run_independently(source, source_format, x, specs,
                                  stored.weightless if stored is not None else ())
    expected, reference_by = reference if reference is not None else (_run(specs, x), "linea")
    target_path = os.fspath(target)
    folder, name = os.path.split(os.path.abspath(target_path))
    temporary = os.path.join(folder, f".linea-convert-{os.getpid()}-{name}")
    try:
        io.write_specs(specs, temporary, target_format, layout=to_layout)
        written = _written_specs(temporary, target_format, specs, to_layout)
        candidate = run_independently(temporary, target_format, x, written)
        got, candidate_by = candidate if candidate is not None else (_run(written, x), "linea")
        difference = float(np.max(np.abs(np.asarray(got, np.float64) - expected))) \
            if np.shape(got) == np.shape(expected) else float("inf")
        tolerance = 1e-4 * max(1.0, float(np.max(np.abs(expected))) if np.size(expected) else 1.0)
        if difference <= tolerance:
            os.replace(temporary, target_path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    count = sum(1 for s in specs if s.kind == "linear")
    convs = sum(1 for s in specs if s.kind == "conv2d")
    description = f"{target_format} ({to_layout} layout), {count} linear layer(s)" + \
        (f", {convs} conv layer(s)" if convs else "")
    source_layout = "keras" if source_format == "keras" else (from_layout or _stored_layout(stored))
    report = ConvertReport(description, difference, samples, reference_by, candidate_by,
                           _assumptions(specs, activation, layers, from_layout, input_shape),
                           tolerance=tolerance)
    report.flatten_note = _flatten_note(specs, source_layout, "keras" if target_format == "keras"
                                        else to_layout if target_format != "onnx" else "torch")
    return report


def _stored_layout(stored, default: str = "torch") -> str:
    """The one layout a state dict's names say, else ``default``."""
    if stored is None:
        return default
    named = {_group_layout(p, leaves) for p, leaves in _groups(stored.tensors).items()} - {None}
    return named.pop() if len(named) == 1 else default


def _dtype_of(specs):
    first = next(s for s in specs if s.kind in ("linear", "layernorm", "conv2d"))
    return first.weight.dtype


def _written_specs(path, file_format, specs, layout):
    if io._architecture_file(file_format, path):
        return io.read_specs(path, file_format)
    # A bare state dict holds no architecture: the source's layer list gives it.
    image_shape = specs[0].extra.get("input_shape") if specs else None
    written = io.read_specs(path, file_format, layout=layout, layers=layers_of_specs(specs),
                            input_shape=image_shape)
    if any(spec.kind in IMAGE_KINDS for spec in specs):  # the entries carry every setting
        norms = iter(spec for spec in specs if spec.kind in ("layernorm", "batchnorm"))
        for copy in written:
            if copy.kind in ("layernorm", "batchnorm"):
                copy.eps = next(norms).eps
        return written
    kept = [s for s in specs if not (s.kind == "activation" and s.activation == "linear")]
    rebuilt = []
    for copy, spec in zip(written, kept):
        if spec.kind in ("linear", "layernorm"):
            copy.eps = spec.eps
            rebuilt.append(copy)
        else:  # activations keep their parameters (a leaky_relu slope, a softplus threshold)
            rebuilt.append(spec)
    return rebuilt
