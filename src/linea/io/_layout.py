"""Reading a model out of a bare state dict: which layout, which layers, which activations.

Names settle the layout where they can (``weight`` → PyTorch (out, in),
``kernel`` → Keras (in, out)). Where only shapes are left, the chain of layer
sizes usually settles it; a model of square layers cannot be told apart and
needs ``layout="torch"`` or ``"keras"``. A state dict says nothing of the
activations between layers, so building a model from one needs ``activation=``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from linea._errors import FormatError
from linea.io._spec import ACTIVATION_NAMES, LayerSpec
from linea.keras._naming import unique_in_order

__all__ = ["specs_from_state", "state_from_specs", "LAYOUTS"]

LAYOUTS = ("torch", "keras")
_TORCH_LEAVES = {"weight", "bias"}
_KERAS_LEAVES = {"kernel", "bias", "gamma", "beta"}


def _split(key: str) -> tuple[str, str]:
    cut = max(key.rfind("."), key.rfind("/"))
    return (key[:cut], key[cut + 1:]) if cut >= 0 else ("", key)


def _groups(state) -> "OrderedDict[str, dict]":
    groups: OrderedDict = OrderedDict()
    for key, array in state.items():
        prefix, leaf = _split(key)
        groups.setdefault(prefix, {})[leaf] = np.asarray(array)
    return groups


def _group_layout(prefix: str, leaves: dict) -> str | None:
    names = set(leaves)
    if names & {"kernel", "gamma", "beta"}:
        return "keras"
    if "weight" in names:
        return "torch"
    return None


def _chains(shapes: list[tuple], layout: str) -> bool:
    sizes = [(s[1], s[0]) if layout == "torch" else (s[0], s[1]) for s in shapes]
    return all(a[1] == b[0] for a, b in zip(sizes, sizes[1:]))


def specs_from_state(state, activation: str | None = None, layout: str | None = None,
                     source: str = "state dict") -> list[LayerSpec]:
    """The layer list a state dict describes (see the module docstring)."""
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be 'torch' or 'keras', got {layout!r}")
    groups = _groups(state)
    if not groups:
        raise FormatError(f"{source}: holds no tensors")
    named = {_group_layout(p, leaves) for p, leaves in groups.items()} - {None}
    if len(named) > 1:
        raise FormatError(f"{source}: mixes PyTorch names (weight) and Keras names (kernel/gamma)")
    by_names = named.pop() if named else None
    if by_names and layout and layout != by_names:
        raise FormatError(f"{source}: its names ({'weight' if by_names == 'torch' else 'kernel'}) "
                          f"say {by_names} layout, but layout={layout!r} was given")
    layers = []
    for prefix, leaves in groups.items():
        matrices = {k: v for k, v in leaves.items() if v.ndim == 2}
        vectors = {k: v for k, v in leaves.items() if v.ndim == 1}
        others = {k: v for k, v in leaves.items() if v.ndim not in (1, 2)}
        if others:
            name = next(iter(others))
            raise FormatError(f"{source}: {prefix + '.' if prefix else ''}{name} has shape "
                              f"{others[name].shape}; linea builds MLPs of Linear/Dense and "
                              "LayerNorm layers, whose weights are 1-D or 2-D")
        if len(matrices) > 1 or len(vectors) > 2 or (matrices and len(vectors) > 1):
            raise FormatError(f"{source}: layer {prefix!r} holds {sorted(leaves)}, not one weight "
                              "matrix and an optional bias")
        if matrices:
            (matrix_name, matrix), = matrices.items()
            bias = next(iter(vectors.values()), None)
            layers.append(("linear", prefix, matrix_name, matrix, bias))
        else:
            weight = leaves.get("weight", leaves.get("gamma"))
            bias = leaves.get("bias", leaves.get("beta"))
            if weight is None:
                names = list(vectors)
                weight, bias = vectors[names[0]], (vectors[names[1]] if len(names) > 1 else None)
            layers.append(("norm", prefix, None, weight, bias))
    resolved = by_names or layout
    linear_shapes = [m.shape for kind, _, _, m, _ in layers if kind == "linear"]
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
    count = len(linear_shapes)
    if count > 1 and activation is None:
        raise FormatError(
            f"{source}: a state dict does not record the activations between its {count} linear "
            "layers; give activation= ('relu', 'tanh', 'gelu', …, or 'linear' for none; "
            "--activation in the CLI)"
        )
    if activation is not None and activation not in ACTIVATION_NAMES:
        raise ValueError(f"activation must be one of {ACTIVATION_NAMES}, got {activation!r}")
    specs, seen_linear = [], 0
    previous_out = None
    for kind, prefix, _, matrix, bias in layers:
        if kind == "linear":
            weight = matrix if resolved == "torch" else matrix.T
            out_features, in_features = weight.shape
            if previous_out is not None and in_features != previous_out:
                raise FormatError(f"{source}: layer {prefix!r} takes {in_features} inputs but the "
                                  f"layer before it gives {previous_out}")
            if bias is not None and bias.shape != (out_features,):
                raise FormatError(f"{source}: layer {prefix!r} has a bias of shape {bias.shape} "
                                  f"for {out_features} outputs")
            specs.append(LayerSpec("linear", np.array(weight), None if bias is None else np.array(bias),
                                   name=prefix))
            previous_out = out_features
            seen_linear += 1
            if seen_linear < count and activation not in (None, "linear"):
                specs.append(LayerSpec("activation", activation=activation))
        else:
            if previous_out is not None and matrix.shape != (previous_out,):
                raise FormatError(f"{source}: norm layer {prefix!r} of size {matrix.shape[0]} follows "
                                  f"a layer of {previous_out} outputs")
            specs.append(LayerSpec("layernorm", np.array(matrix), None if bias is None else np.array(bias),
                                   eps=1e-5 if resolved == "torch" else 1e-3, name=prefix))
    return specs


def state_from_specs(specs, layout: str) -> "OrderedDict[str, np.ndarray]":
    """A state dict in PyTorch's ``nn.Sequential`` keys or Keras's ``layer/variable`` paths."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'torch' or 'keras', got {layout!r}")
    state: OrderedDict = OrderedDict()
    if layout == "torch":  # every spec is one nn.Sequential module, numbered in order
        for index, spec in enumerate(specs):
            if spec.kind in ("linear", "layernorm"):
                state[f"{index}.weight"] = spec.weight
                if spec.bias is not None:
                    state[f"{index}.bias"] = spec.bias
        return state
    weighted = [spec for spec in specs if spec.kind in ("linear", "layernorm")]
    names = unique_in_order("dense" if s.kind == "linear" else "layer_normalization" for s in weighted)
    for spec, layer in zip(weighted, names):
        if spec.kind == "linear":
            state[f"{layer}/kernel"] = spec.weight.T.copy()
            if spec.bias is not None:
                state[f"{layer}/bias"] = spec.bias
        else:
            state[f"{layer}/gamma"] = spec.weight
            if spec.bias is not None:
                state[f"{layer}/beta"] = spec.bias
    return state

