"""Reading a model out of a bare state dict: which layout, which order, which layers.

A weights-only file says less than people think, and this module never fills
the gaps by guessing:

- **Layout.** Names settle it where they can (``weight`` → PyTorch (out, in),
  ``kernel`` → Keras (in, out)). Where only shapes are left, the chain of layer
  sizes usually settles it; square layers cannot be told apart and need
  ``layout="torch"`` or ``"keras"``.
- **Order.** Layers are ordered by their names, numbers compared as numbers
  (``0 < 1 < 2 < 10``; Keras's ``dense < dense_1 < … < dense_10``). Two names
  settle their order only where they differ in a number (``fc1``/``fc2``,
  ``layers.2``/``layers.10``); otherwise (``encoder``/``head``, Keras's
  ``dense``/``layer_normalization``) the order is taken from a file that records
  it (a ``.pt`` state dict, a file linea wrote) or from ``layers=``, and refused
  without either.
- **Architecture.** A state dict records no activations. ``activation=`` names
  the one between every pair of linear layers; files with norms or weightless
  layers need the whole list, ``layers=["linear", "layernorm", "relu", "linear"]``.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from linea._errors import FormatError
from linea.io._layout_images import IMAGE_ENTRIES, image_entry, image_specs_from_state
from linea.io._spec import ACTIVATION_NAMES, LayerSpec
from linea.io.kinds import KINDS, activation_settings, keras_weightless
from linea.io._spec_images import IMAGE_KINDS
from linea.keras._naming import unique_in_order

__all__ = ["StoredState", "specs_from_state", "state_from_specs", "parse_layers", "layers_of_specs",
           "ordered_groups",
           "natural_key", "LAYOUTS"]

LAYOUTS = ("torch", "keras")
#: Keras weightless layer classes (snake_case paths) and the layers= entry each one is.
_KERAS_WEIGHTLESS = dict(keras_weightless(), input_layer="input")
_NUMBERED = re.compile(r"^(.*?)_?(\d+)$")
_LAYER_ENTRY = re.compile(r"^([a-z_][a-z0-9_]*)\s*(?:\((.*)\))?$")


@dataclass
class StoredState:
    """What a weights-only file holds: tensors by name, and what the file says of order.

    ``weightless`` lists layer groups that hold no tensors (Keras files keep a
    group for every layer, ``dropout`` and ``activation`` included);
    ``ordered`` is True where the file records the order of its entries;
    ``records_weightless`` where the file would list weightless layers (Keras files).
    """
    tensors: "OrderedDict[str, np.ndarray]"
    ordered: bool = False
    weightless: list = field(default_factory=list)
    records_weightless: bool = False


def natural_key(name: str) -> list:
    """A sort key comparing the numbers in dotted or slashed paths as numbers."""
    key = []
    for part in re.split(r"[./]", name):
        match = _NUMBERED.match(part)
        key.append((match.group(1), int(match.group(2))) if match else (part, -1))
    return key


def _settled(first: str, second: str) -> bool:
    """True where the names alone say ``first`` comes before ``second``."""
    a, b = natural_key(first), natural_key(second)
    for (stem_a, number_a), (stem_b, number_b) in zip(a, b):
        if (stem_a, number_a) != (stem_b, number_b):
            return stem_a == stem_b and number_a < number_b
    return False


def _split(key: str) -> tuple[str, str]:
    cut = max(key.rfind("."), key.rfind("/"))
    return (key[:cut], key[cut + 1:]) if cut >= 0 else ("", key)


def _groups(state) -> "OrderedDict[str, dict]":
    groups: OrderedDict = OrderedDict()
    for key, array in state.items():
        prefix, leaf = _split(key)
        groups.setdefault(prefix, {})[leaf] = np.asarray(array)
    return groups


def ordered_groups(state) -> "OrderedDict[str, dict]":
    """The layer groups of a state dict in natural name order (for listing them)."""
    groups = _groups(state)
    return OrderedDict((prefix, groups[prefix]) for prefix in sorted(groups, key=natural_key))


def _group_layout(prefix: str, leaves: dict) -> str | None:
    names = set(leaves)
    if names & {"kernel", "gamma", "beta", "moving_mean", "moving_variance"}:
        return "keras"
    if names & {"weight", "running_mean", "running_var"}:
        return "torch"
    return None


def _chains(shapes: list[tuple], layout: str) -> bool:
    sizes = [(s[1], s[0]) if layout == "torch" else (s[0], s[1]) for s in shapes]
    return all(a[1] == b[0] for a, b in zip(sizes, sizes[1:]))


def parse_layers(layers) -> list[LayerSpec]:
    """``layers=`` as a layer list without weights, in model order (a comma-separated string too).

    Entries: "linear", "layernorm", "dropout", "flatten" or an activation name; settings
    in brackets where the default is not meant: "layernorm(eps=1e-6)", "dropout(p=0.1)",
    "leaky_relu(negative_slope=0.01)", "softplus(threshold=20)".
    """
    if isinstance(layers, str):
        layers = _split_entries(layers)
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"layers must be a non-empty list of layer names, got {layers!r}")
    specs = []
    for entry in layers:
        if not isinstance(entry, str):
            raise ValueError(f"layers entries are names such as 'linear', got {entry!r}")
        match = _LAYER_ENTRY.match(entry.strip().lower())
        if match is None:
            raise ValueError(f"layers entry {entry!r} is not of the form name or name(key=value)")
        name, settings = match.group(1), _settings(match.group(2), entry)
        if name in IMAGE_ENTRIES:
            specs.append(image_entry(name, settings, entry))
            continue
        allowed = {"layernorm": {"eps"}, "dropout": {"p"}}.get(name) or \
            set(activation_settings(name) if name in ACTIVATION_NAMES else ())
        if set(settings) - allowed:
            raise ValueError(f"layers entry {entry!r}: {name} takes {sorted(allowed) or 'no settings'}")
        if name in ("linear", "dense"):
            specs.append(LayerSpec("linear"))
        elif name == "layernorm":
            specs.append(LayerSpec("layernorm", eps=settings.get("eps", 0.0),
                                   extra={"eps_given": "eps" in settings}))
        elif name == "dropout":
            specs.append(LayerSpec("dropout", rate=settings.get("p", 0.0)))
        elif name == "flatten":
            specs.append(LayerSpec("flatten"))
        elif name in ACTIVATION_NAMES:
            if name == "leaky_relu" and "negative_slope" not in settings:
                raise ValueError(
                    f"layers entry {entry!r}: say the slope, e.g. 'leaky_relu(negative_slope=0.01)'"
                    " — PyTorch's LeakyReLU defaults to 0.01, Keras's leaky_relu to 0.2, and a "
                    "weights file records neither")
            specs.append(LayerSpec("activation", activation=name, extra=settings))
        else:
            raise ValueError(
                f"layers entry {entry!r} is not a layer linea knows; use 'linear', 'layernorm' "
                f"(or 'layernorm(eps=1e-6)'), 'dropout', 'flatten', one of {sorted(IMAGE_ENTRIES)} "
                f"or one of {ACTIVATION_NAMES}")
    return specs


def layers_of_specs(specs) -> list[str]:
    """The ``layers=`` entries describing a layer list (the inverse of ``parse_layers``)."""
    return [entry for spec in specs for entry in KINDS[spec.kind].layers_entries(spec)]


def _split_entries(text: str) -> list[str]:
    """Commas split entries, except inside brackets."""
    entries, depth, current = [], 0, ""
    for character in text:
        depth += {"(": 1, ")": -1}.get(character, 0)
        if character == "," and depth == 0:
            entries.append(current.strip())
            current = ""
        else:
            current += character
    return entries + [current.strip()]


def _settings(text: str | None, entry: str) -> dict:
    settings = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, equals, value = item.partition("=")
        if key.strip() == "padding" and value.strip().strip("'\"") in ("same", "valid"):
            settings["padding"] = value.strip().strip("'\"")
            continue
        try:
            settings[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"layers entry {entry!r}: {item!r} is not key=number") from None
        if not equals:
            raise ValueError(f"layers entry {entry!r}: {item!r} is not key=number")
    return settings


_WEIGHT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _check_weight_dtype(name: str, array, source: str) -> None:
    """A layer weight must be floating point of a dtype linea computes in: else a FormatError."""
    dtype = getattr(array.dtype, "name", str(array.dtype))
    if dtype not in _WEIGHT_DTYPES:
        hint = "a layer's weights must be floating point (float16, bfloat16, float32 or float64)"
        raise FormatError(f"{source}: {name} has dtype {dtype}; {hint}")


def _classify(groups, source: str) -> list[tuple]:
    """(kind, prefix, matrix-or-scale, bias) per group: "linear" or "norm"."""
    layers = []
    for prefix, leaves in groups.items():
        matrices = {k: v for k, v in leaves.items() if v.ndim == 2}
        vectors = {k: v for k, v in leaves.items() if v.ndim == 1}
        others = {k: v for k, v in leaves.items() if v.ndim not in (1, 2)}
        for name, array in leaves.items():
            _check_weight_dtype(f"{prefix + '.' if prefix else ''}{name}", array, source)
        if others:
            name = next(iter(others))
            raise FormatError(f"{source}: {prefix + '.' if prefix else ''}{name} has shape "
                              f"{others[name].shape}; linea builds MLPs of Linear/Dense and "
                              "LayerNorm layers, whose weights are 1-D or 2-D")
        if len(matrices) > 1 or len(vectors) > 2 or (matrices and len(vectors) > 1):
            raise FormatError(f"{source}: layer {prefix!r} holds {sorted(leaves)}, not one weight "
                              "matrix and an optional bias")
        if matrices:
            (_, matrix), = matrices.items()
            layers.append(("linear", prefix, matrix, next(iter(vectors.values()), None)))
            continue
        weight = leaves.get("weight", leaves.get("gamma"))
        bias = leaves.get("bias", leaves.get("beta"))
        if weight is None and bias is not None:
            raise FormatError(f"{source}: norm layer {prefix!r} holds a bias ({'beta' if 'beta' in leaves else 'bias'}) "
                              "but no scale; linea cannot tell which it is without the layer's config")
        if weight is None:
            names = sorted(vectors)
            if len(names) != 1:
                raise FormatError(f"{source}: layer {prefix!r} holds {names}: no weight matrix, and "
                                  "not a norm's weight and bias")
            raise FormatError(f"{source}: layer {prefix!r} holds only a vector {names[0]!r}; linea "
                              "reads Linear/Dense (a matrix) and LayerNorm (weight, bias) layers")
        layers.append(("norm", prefix, weight, bias))
    return layers


def _sequential_positions(prefixes: list[str]) -> list[int] | None:
    """The indices of ``nn.Sequential`` keys (``3`` or ``net.3``), where every prefix is one."""
    if not prefixes:
        return None
    stems, positions = set(), []
    for prefix in prefixes:
        stem, _, last = prefix.rpartition(".")
        if not last.isdigit():
            return None
        stems.add(stem)
        positions.append(int(last))
    return positions if len(stems) == 1 else None


def _order(layers, stored: StoredState, given: list[LayerSpec] | None, source: str) -> list:
    """The groups in model order, from their names, the file, or ``layers=``; else refuse."""
    by_name = sorted(layers, key=lambda layer: natural_key(layer[1]))
    pairs = list(zip(by_name, by_name[1:]))
    if all(_settled(a[1], b[1]) for a, b in pairs):
        if stored.ordered and [l[1] for l in layers] != [l[1] for l in by_name]:
            stored_order = [l[1] for l in layers]
            raise FormatError(f"{source}: the names order the layers {[l[1] for l in by_name]}, "
                              f"but the file stores them as {stored_order}; linea cannot tell "
                              "which is the model's order: load the file into your own model "
                              "(load_model(path, model=...))")
        return by_name
    if stored.ordered:
        return list(layers)
    if given is not None:  # layers= interleaves kinds; within a kind the names must settle it
        kinds = {"linear": [l for l in by_name if l[0] == "linear"],
                 "norm": [l for l in by_name if l[0] == "norm"]}
        for kind, members in kinds.items():
            for a, b in zip(members, members[1:]):
                if not _settled(a[1], b[1]):
                    raise FormatError(f"{source}: the names {a[1]!r} and {b[1]!r} do not say which "
                                      "layer comes first; load the file into your own model "
                                      "(load_model(path, model=...)) instead")
        wanted = ["linear" if s.kind == "linear" else "norm" for s in given
                  if s.kind in ("linear", "layernorm")]
        if sorted(wanted) != sorted(layer[0] for layer in layers):
            raise FormatError(_count_mismatch(layers, given, source))
        queues = {kind: list(members) for kind, members in kinds.items()}
        return [queues[kind].pop(0) for kind in wanted]
    a, b = next((a, b) for a, b in pairs if not _settled(a[1], b[1]))
    keras = all(re.fullmatch(r"[a-z0-9_]+", layer[1]) for layer in layers)
    hint = ("Keras numbers each layer class on its own (dense, dense_1, …; layer_normalization, …), "
            "so the file does not say how the classes interleave" if keras else
            "they differ in more than a number and the file does not record its order")
    raise FormatError(f"{source}: the layer names {a[1]!r} and {b[1]!r} do not say which comes "
                      f"first: {hint}; pass the architecture as layers=[...] (--layers in the "
                      "CLI), e.g. layers=['layernorm', 'linear', 'relu', 'linear']")


def _count_mismatch(layers, given, source) -> str:
    file_kinds = [("linear" if kind == "linear" else "layernorm") for kind, *_ in layers]
    wanted = [s.kind for s in given if s.kind in ("linear", "layernorm")]
    return (f"{source}: layers= lists {wanted.count('linear')} linear and {wanted.count('layernorm')} "
            f"layernorm layers, the file holds {file_kinds.count('linear')} and "
            f"{file_kinds.count('layernorm')} ({', '.join(prefix for _, prefix, *_ in layers)})")


def _check_weightless(stored: StoredState, given: list[LayerSpec] | None, source: str) -> None:
    # A functional model's InputLayer holds nothing and computes nothing.
    classes = [c for c in (re.sub(r"_\d+$", "", name) for name in stored.weightless)
               if _KERAS_WEIGHTLESS.get(c) != "input"]
    unknown = sorted({c for c in classes if c not in _KERAS_WEIGHTLESS})
    if unknown:
        raise FormatError(f"{source}: the file has layers of class {', '.join(unknown)} whose "
                          "settings live in the model's config, not in a weights file; linea "
                          "cannot rebuild them (read the .keras file instead, or drop them)")
    if given is None:
        placed = sorted({c for c in classes if c != "dropout"})  # dropout: identity at inference
        if placed:
            raise FormatError(f"{source}: the file has weightless {', '.join(placed)} layer(s) whose "
                              "place (and activation) a weights file does not record; pass the "
                              "architecture as layers=[...] (--layers in the CLI)")
        return
    if not stored.records_weightless:
        return
    counts = {"dropout": sum(s.kind == "dropout" for s in given),
              "flatten": sum(s.kind == "flatten" for s in given),
              "activation": sum(s.kind == "activation" for s in given)}
    classes = [_KERAS_WEIGHTLESS[c] for c in classes]
    for kind in ("dropout", "flatten"):
        if classes.count(kind) != counts[kind]:
            raise FormatError(f"{source}: the file has {classes.count(kind)} {kind} layer(s), "
                              f"layers= lists {counts[kind]}")
    if classes.count("activation") > counts["activation"]:
        raise FormatError(f"{source}: the file has {classes.count('activation')} Activation layer(s), "
                          f"layers= lists only {counts['activation']} activation(s)")


def specs_from_state(stored, activation: str | None = None, layout: str | None = None,
                     source: str = "state dict", *, layers=None, input_shape=None) -> list[LayerSpec]:
    """The layer list a state dict describes (see the module docstring).

    ``stored`` is a ``StoredState`` or a plain mapping (whose order is then not trusted).
    A model with image layers (``layers=`` with conv2d, pooling or batchnorm entries) also
    needs ``input_shape=(C, H, W)``: see ``_layout_images``.
    """
    if not isinstance(stored, StoredState):
        stored = StoredState(OrderedDict(stored))
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be 'torch' or 'keras', got {layout!r}")
    between = None  # the activation spec placed between linear layers
    if activation is not None:
        if not isinstance(activation, str) or activation.split("(")[0].strip() not in ACTIVATION_NAMES:
            raise ValueError(f"activation must be one of {ACTIVATION_NAMES} (with settings in "
                             f"brackets where needed), got {activation!r}")
        if activation != "linear":
            between, = parse_layers([activation])
    if layers is not None and activation is not None:
        raise ValueError("give layers= (the whole architecture) or activation= (one activation "
                         "between linear layers), not both")
    given = parse_layers(layers) if layers is not None else None
    groups = _groups(stored.tensors)
    if not groups:
        raise FormatError(f"{source}: holds no tensors")
    named = {_group_layout(p, leaves) for p, leaves in groups.items()} - {None}
    if len(named) > 1:
        raise FormatError(f"{source}: mixes PyTorch names (weight) and Keras names (kernel/gamma)")
    by_names = named.pop() if named else None
    if by_names and layout and layout != by_names:
        raise FormatError(f"{source}: its names ({'weight' if by_names == 'torch' else 'kernel'}) "
                          f"say {by_names} layout, but layout={layout!r} was given")
    images = any(a.ndim == 4 for leaves in groups.values() for a in leaves.values()) or \
        any(k in leaves for leaves in groups.values() for k in ("running_mean", "moving_mean"))
    if given is not None and any(spec.kind in IMAGE_KINDS for spec in given) or images:
        if given is None:
            raise FormatError(f"{source}: holds convolution or batch-norm weights; a state dict does "
                              "not record the rest of such a model (poolings, strides, paddings, "
                              "activations, the image size): pass layers=[...] and input_shape=(C, H, W) "
                              "(--layers and --input-shape in the CLI), e.g. layers=['conv2d(padding=1)', "
                              "'relu', 'maxpool2d(kernel=2)', 'flatten', 'linear']")
        if by_names is None and layout is None:
            raise FormatError(f"{source}: the names do not say PyTorch's or Keras's layout; pass "
                              "layout='torch' or layout='keras' (--from in the CLI)")
        for prefix, leaves in groups.items():
            for name, array in leaves.items():
                if name == "num_batches_tracked":  # a counter: an integer scalar
                    if array.shape != () or array.dtype.kind not in "iu":
                        raise FormatError(f"{source}: {prefix}.{name} is {array.dtype} of shape "
                                          f"{array.shape}, not an integer count")
                    continue
                _check_weight_dtype(f"{prefix}.{name}", array, source)
        return image_specs_from_state(groups, given, by_names or layout, input_shape,
                                      stored.ordered, source)
    _check_weightless(stored, given, source)
    layers_found = _order(_classify(groups, source), stored, given, source)
    resolved = by_names or layout
    linear_shapes = [m.shape for kind, _, m, _ in layers_found if kind == "linear"]
    if resolved is None:
        fits = [candidate for candidate in LAYOUTS if _chains(linear_shapes, candidate)]
        if len(fits) == 1:
            resolved = fits[0]
        elif not fits:
            raise FormatError(f"{source}: the layer shapes {linear_shapes} chain in neither "
                              "layout, so they are not one MLP")
        else:
            raise FormatError(
                f"{source}: the names do not say whether weights are PyTorch's (out, in) or "
                f"Keras's (in, out), and the shapes {linear_shapes} fit both (square layers); "
                "say which with layout='torch' or layout='keras' (--from in the CLI)"
            )
    weighted = _weighted_specs(layers_found, resolved, source)
    if given is not None:
        return _with_architecture(weighted, given, layers_found, resolved, source)
    norms = [spec.name for spec in weighted if spec.kind == "layernorm"]
    if norms:
        raise FormatError(
            f"{source}: holds norm layer(s) {norms}; a weights-only file does not record where "
            "the activations sit relative to them, so activation= cannot place them; pass the "
            "whole architecture as layers=[...] (--layers in the CLI), e.g. "
            "layers=['linear', 'layernorm', 'relu', 'linear']")
    count = len(weighted)
    if count > 1 and activation is None:
        raise FormatError(
            f"{source}: a state dict does not record the activations between its {count} linear "
            "layers; give activation= ('relu', 'tanh', 'gelu', …, or 'linear' for none; "
            "--activation in the CLI) or the whole architecture as layers=[...]"
        )
    positions = _sequential_positions([spec.name for spec in weighted])
    if positions is not None and activation not in (None, "linear"):
        for (a, b) in zip(positions, positions[1:]):
            if b == a + 1:
                raise FormatError(
                    f"{source}: layers {weighted[0].name.rpartition('.')[0] + '.' if '.' in weighted[0].name else ''}"
                    f"{a} and {b} are neighbours in nn.Sequential numbering, so no activation "
                    f"module sits between them, yet activation={activation!r} was given; pass "
                    "layers=[...] to say exactly what the model is")
    specs = []
    for index, spec in enumerate(weighted):
        specs.append(spec)
        if index + 1 < count and between is not None:
            specs.append(LayerSpec("activation", activation=between.activation,
                                   extra=dict(between.extra)))
    return specs


def _weighted_specs(layers_found, resolved: str, source: str) -> list[LayerSpec]:
    specs, previous_out = [], None
    for kind, prefix, matrix, bias in layers_found:
        if kind == "linear":
            weight = matrix if resolved == "torch" else matrix.T
            out_features, in_features = weight.shape
            if previous_out is not None and in_features != previous_out:
                raise FormatError(f"{source}: layer {prefix!r} takes {in_features} inputs but the "
                                  f"layer before it gives {previous_out}")
            if bias is not None and bias.shape != (out_features,):
                raise FormatError(f"{source}: layer {prefix!r} has a bias of shape {bias.shape} "
                                  f"for {out_features} outputs")
            specs.append(LayerSpec("linear", np.array(weight),
                                   None if bias is None else np.array(bias), name=prefix))
            previous_out = out_features
        else:
            if previous_out is not None and matrix.shape != (previous_out,):
                raise FormatError(f"{source}: norm layer {prefix!r} of size {matrix.shape[0]} "
                                  f"follows a layer of {previous_out} outputs")
            if bias is not None and bias.shape != matrix.shape:
                raise FormatError(f"{source}: norm layer {prefix!r} has a bias of shape "
                                  f"{bias.shape} for a scale of shape {matrix.shape}")
            # The file does not record epsilon: the framework's default (PyTorch 1e-5, Keras 1e-3).
            specs.append(LayerSpec("layernorm", np.array(matrix),
                                   None if bias is None else np.array(bias),
                                   eps=1e-5 if resolved == "torch" else 1e-3, name=prefix,
                                   extra={"eps_assumed": True}))
    return specs


def _with_architecture(weighted, given, layers_found, resolved, source) -> list[LayerSpec]:
    """Fill the ``layers=`` list with the file's weights, checking kinds and positions."""
    kinds = [spec.kind for spec in given if spec.kind in ("linear", "layernorm")]
    if kinds != [spec.kind for spec in weighted]:
        raise FormatError(_count_mismatch(layers_found, given, source) if sorted(kinds) !=
                          sorted(spec.kind for spec in weighted) else
                          f"{source}: layers= lists {kinds}, but the file's layers in order "
                          f"({', '.join(s.name for s in weighted)}) are {[s.kind for s in weighted]}")
    positions = _sequential_positions([spec.name for spec in weighted])
    if positions is not None:  # nn.Sequential keys say where each weighted module sits
        at = [index for index, spec in enumerate(given) if spec.kind in ("linear", "layernorm")]
        if positions != at:
            raise FormatError(f"{source}: in nn.Sequential numbering the file's layers sit at "
                              f"{positions}, but layers= puts them at {at}; list every module, "
                              "activations and dropout included, in order")
    weights = iter(weighted)
    specs = []
    for spec in given:
        if spec.kind not in ("linear", "layernorm"):
            specs.append(spec)
            continue
        filled = next(weights)
        if spec.kind == "layernorm" and spec.extra.get("eps_given"):
            filled.eps, filled.extra = spec.eps, {}
        specs.append(filled)
    return specs


def state_from_specs(specs, layout: str) -> "OrderedDict[str, np.ndarray]":
    """A state dict in PyTorch's ``nn.Sequential`` keys or Keras's ``layer/variable`` paths."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'torch' or 'keras', got {layout!r}")
    state: OrderedDict = OrderedDict()
    if layout == "torch":  # each spec takes its places in an nn.Sequential, numbered in order
        index = 0
        for spec in specs:
            kind = KINDS[spec.kind]
            for leaf, value in kind.torch_entries(spec):
                state[f"{index}.{leaf}"] = value
            index += kind.nn_count(spec)
        return state
    if any(spec.kind in IMAGE_KINDS for spec in specs):  # Keras's own paths and feature order
        from linea.io._spec import keras_from_spec
        from linea.keras._saving import saved_weights, weight_paths

        model = keras_from_spec(specs)
        for layer, path in zip(model.layers, weight_paths(model)):
            for variable in saved_weights(layer):
                state[f"{path}/{variable.name}"] = variable._data.copy()
        return state
    weighted = [spec for spec in specs if KINDS[spec.kind].keras_entries is not None]
    names = unique_in_order(KINDS[spec.kind].keras_group for spec in weighted)
    for spec, layer in zip(weighted, names):
        for variable, value in KINDS[spec.kind].keras_entries(spec):
            state[f"{layer}/{variable}"] = value
    return state
