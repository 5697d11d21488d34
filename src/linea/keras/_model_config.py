"""Model configs as Keras files hold them, checked and brought to one form before anything is built.

``sequential_config`` turns every chain linea can express — a Keras 3 or Keras 2
``Sequential``, or a ``Functional`` model (``keras.Input`` → layers → ``keras.Model``)
whose graph is one path from its input to its output — into a Keras 3 Sequential
config with the layers in order. A graph with branches (``Add``, ``Concatenate``, a
layer used twice, several inputs or outputs) is refused with a ``FormatError`` naming
the layer, never read as a wrong model. ``expected_shapes`` gives the weight shapes a
config implies without building anything, so a hostile config cannot make linea
allocate what the file does not hold.
"""
from __future__ import annotations

from linea._errors import FormatError

__all__ = ["READABLE_LAYERS", "sequential_config", "expected_shapes", "check_against_weights",
           "mapping", "quantization_mode"]

#: The Keras layer classes linea reads from files (each is linea.keras.layers.<name>).
READABLE_LAYERS = ("InputLayer", "Dense", "Activation", "LeakyReLU", "Dropout", "Flatten",
                   "LayerNormalization", "BatchNormalization", "Conv2D", "MaxPooling2D",
                   "AveragePooling2D", "GlobalAveragePooling2D")
_MAX_LAYERS = 10_000


def quantization_mode(layer_config: dict):
    dtype = layer_config.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") == "QuantizedDTypePolicy":
        return (dtype.get("config") or {}).get("mode")
    return None


def _check_activation(kind, layer_config: dict, source: str) -> None:
    """A FormatError naming the layer whose activation linea does not have, with the reason."""
    from linea.keras import activations
    from linea.nn.registry import NO_TWIN

    name = layer_config.get("activation")
    if isinstance(name, dict):  # a serialized activation: {"class_name": …, "config": …}
        name = name.get("config", name.get("class_name"))
    if not isinstance(name, str):
        return
    try:
        activations.get(name)
    except ValueError:
        reason = NO_TWIN.get(name, "linea does not know it")
        raise FormatError(f"{source}: layer {layer_config.get('name')!r} ({kind}) uses the "
                          f"activation {name!r}: {reason}, so it cannot be read exactly; linea "
                          f"reads {', '.join(sorted(activations.names()))}") from None


def expected_shapes(config: dict, source: str) -> list:
    """The weight shapes a Sequential config implies, layer by layer, without building anything.

    Checked against the stored weights before any layer allocates, so a config
    declaring huge layers cannot make linea allocate what the file does not hold.
    """
    model_config = mapping(config.get("config", {}), "the model's config", source)
    entries = model_config.get("layers", [])
    if not isinstance(entries, list) or len(entries) > 10_000:
        raise FormatError(f"{source}: the model config's layer list is malformed")
    shape = None  # the per-sample shape flowing through the layers (no batch axis)
    build = model_config.get("build_input_shape") or \
        mapping(config.get("build_config") or {}, "the model's build_config", source).get("input_shape")
    if isinstance(build, list) and len(build) >= 2:
        shape = list(build[1:])
    shapes = []

    def integer(value, what):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2 ** 31:
            raise FormatError(f"{source}: {what} is {value!r}, not a positive integer")
        return value

    def known(what):
        if shape is None:
            raise FormatError(f"{source}: the input shape of a {what} layer is unknown")
        return [integer(size, f"an input size of {what}") for size in shape]

    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise FormatError(f"{source}: a layer entry of the model config is malformed")
        kind, layer_config = entry.get("class_name"), entry["config"]
        _check_activation(kind, layer_config, source)
        layer_build = mapping(entry.get("build_config", {}), f"the build_config of a {kind} layer",
                               source).get("input_shape")
        if isinstance(layer_build, list) and len(layer_build) >= 2:
            if shape is not None and list(layer_build[1:]) != shape:
                raise FormatError(f"{source}: a {kind} layer's build_config says its input is "
                                  f"{layer_build[1:]}, but the layers before it give {shape}")
            shape = list(layer_build[1:])  # what deserializing the layer builds it for
        declared = _declared_input(layer_config, source)  # Keras 2's input_dim / input_shape keys
        if declared is not None:
            shape = declared
        if kind == "InputLayer":
            batch_shape = layer_config.get("batch_shape") or layer_config.get("batch_input_shape")
            if not isinstance(batch_shape, list) or len(batch_shape) < 2:
                raise FormatError(f"{source}: InputLayer has no batch_shape")
            shape = list(batch_shape[1:])
        elif kind == "Dense":
            units = integer(layer_config.get("units"), "Dense units")
            width = known("Dense")[-1]
            shapes.append([(width, units)] + ([(units,)] if layer_config.get("use_bias", True) else [])
                          + ([(units,)] if quantization_mode(layer_config) == "int8" else []))
            shape = shape[:-1] + [units]
        elif kind == "LayerNormalization":
            width = known("LayerNormalization")[-1]
            count = int(bool(layer_config.get("scale", True))) + int(bool(layer_config.get("center", True)))
            shapes.append([(width,)] * count)
        elif kind == "BatchNormalization":
            sizes = known("BatchNormalization")
            axis = layer_config.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
            if isinstance(axis, bool) or not isinstance(axis, int) or not (1 <= axis <= len(sizes) or -len(sizes) <= axis <= -1):
                raise FormatError(f"{source}: BatchNormalization axis {axis!r} does not fit an input "
                                  f"of per-sample shape {sizes}")
            width = sizes[axis - 1 if axis > 0 else axis]  # the file's axis counts the batch axis
            count = int(bool(layer_config.get("scale", True))) + int(bool(layer_config.get("center", True)))
            shapes.append([(width,)] * (count + 2))
        elif kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D"):
            weights, shape = _image_layer_shapes(kind, layer_config, known(kind), integer, source)
            shapes.append(weights)
        elif kind == "Flatten":
            total = 1
            for size in known("Flatten"):
                total *= size
            shape = [integer(total, "the flattened size")]
            shapes.append([])
        elif kind in ("Activation", "LeakyReLU", "Dropout"):
            shapes.append([])
        else:
            raise FormatError(f"{source}: layer {layer_config.get('name')!r} of type {kind!r} is "
                              f"not supported by linea (it reads {', '.join(READABLE_LAYERS)})")
    return shapes


def _image_layer_shapes(kind: str, config: dict, sizes: list, integer, source: str):
    """(weight shapes, per-sample output shape) of a Conv2D or pooling layer, from its config."""
    from linea.keras.layers._conv import data_format_of, padding_of, spatial_pair

    if len(sizes) != 3:
        raise FormatError(f"{source}: a {kind} layer needs images (H, W, C), got per-sample shape {sizes}")
    try:
        channels_last = data_format_of(config.get("data_format")) == "channels_last"
        if kind == "GlobalAveragePooling2D":
            channels = sizes[2] if channels_last else sizes[0]
            keep = bool(config.get("keepdims", False))
            out = ([1, 1, channels] if channels_last else [channels, 1, 1]) if keep else [channels]
            return [], out
        window = spatial_pair(config.get("kernel_size" if kind == "Conv2D" else "pool_size",
                                         (2, 2)), "kernel_size")
        default_stride = (1, 1) if kind == "Conv2D" else window
        stride = spatial_pair(config.get("strides") or default_stride, "strides")
        dilation = spatial_pair(config.get("dilation_rate", (1, 1)), "dilation_rate")
        padding = padding_of(config.get("padding", "valid"))
    except (ValueError, TypeError) as error:
        raise FormatError(f"{source}: a {kind} layer's config is invalid: {error}") from None
    height, width, channels = sizes if channels_last else (sizes[1], sizes[2], sizes[0])
    spatial = []
    for size, k, st, d in zip((height, width), window, stride, dilation):
        out = -(-size // st) if padding == "same" else (size - d * (k - 1) - 1) // st + 1
        spatial.append(integer(out, f"the output size of a {kind} layer"))
    if kind != "Conv2D":
        return [], (spatial + [channels] if channels_last else [channels] + spatial)
    filters = integer(config.get("filters"), "Conv2D filters")
    groups = integer(config.get("groups", 1), "Conv2D groups")
    if channels % groups:
        raise FormatError(f"{source}: Conv2D groups={groups} does not divide its {channels} input channels")
    weights = [tuple(window) + (channels // groups, filters)]
    if config.get("use_bias", True):
        weights.append((filters,))
    return weights, (spatial + [filters] if channels_last else [filters] + spatial)


def mapping(value, what: str, source: str) -> dict:
    if not isinstance(value, dict):
        raise FormatError(f"{source}: {what} is a {type(value).__name__}, not a JSON object")
    return value


def _declared_input(layer_config: dict, source: str):
    """The per-sample input shape a layer's own config declares (batch_input_shape,
    input_shape or input_dim, as Keras 2 wrote them), or None."""
    batch_shape = layer_config.get("batch_input_shape") or layer_config.get("batch_shape")
    if batch_shape is not None:
        if not isinstance(batch_shape, list) or len(batch_shape) < 2:
            raise FormatError(f"{source}: batch_input_shape {batch_shape!r} is not a list of sizes")
        return list(batch_shape[1:])
    if layer_config.get("input_shape") is not None:
        if not isinstance(layer_config["input_shape"], list) or not layer_config["input_shape"]:
            raise FormatError(f"{source}: input_shape {layer_config['input_shape']!r} is not a list")
        return list(layer_config["input_shape"])
    if layer_config.get("input_dim") is not None:
        return [layer_config["input_dim"]]
    return None


def check_against_weights(shapes: list, stored: dict, source: str) -> None:
    stored_shapes = [[tuple(a.shape) for a in arrays] for arrays in stored.values()]
    wanted = [[tuple(s) for s in layer] for layer in shapes if layer]
    found = [layer for layer in stored_shapes if layer]
    if sorted(map(str, wanted)) != sorted(map(str, found)):
        raise FormatError(f"{source}: the config implies weights {wanted}, the weights file holds "
                          f"{found}")




# ---- every chain as one Sequential config ------------------------------------------------

def sequential_config(config: dict, source: str) -> dict:
    """A Keras 3 Sequential config (layers in order) for a Sequential or a Functional chain."""
    kind = config.get("class_name")
    if kind == "Sequential":
        model = config.get("config", {})
        if isinstance(model, list):  # Keras 2.0–2.2 wrote the layer list itself
            model = {"layers": model}
        return {"class_name": "Sequential", "config": mapping(model, "the model's config", source),
                "build_config": config.get("build_config")}
    if kind in ("Functional", "Model"):
        return _chain_config(mapping(config.get("config", {}), "the model's config", source), source)
    raise FormatError(f"{source}: linea reads Sequential models and Functional models whose layers "
                      f"form one chain; this file holds a {kind!r}")


def _entry_name(entry, source: str) -> str:
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise FormatError(f"{source}: a layer entry of the model config is malformed: {str(entry)[:200]}")
    name = entry.get("name", entry["config"].get("name"))
    if not isinstance(name, str) or not name:
        raise FormatError(f"{source}: a {entry.get('class_name')!r} layer of the model has no name")
    return name


def _endpoint(value, what: str, source: str) -> str:
    """The one layer named by input_layers / output_layers: ["x", 0, 0] or [["x", 0, 0]]."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    elif isinstance(value, list) and value and isinstance(value[0], list):
        raise FormatError(f"{source}: the model has {len(value)} {what}s; linea reads models with one "
                          f"input and one output")
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)):
        raise FormatError(f"{source}: the model's {what}_layers entry {str(value)[:200]} is malformed")
    if value[1:] != [0, 0]:
        raise FormatError(f"{source}: the model's {what} is output {value[1:]} of layer {value[0]!r}; "
                          f"linea reads layers called once, with one output")
    return value[0]


def _is_keras_tensor(value) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _node_sources(node, layer: str, source: str) -> list:
    """The (layer, node, tensor) histories one call of ``layer`` takes, Keras 3 or Keras 2 form."""
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        found = []

        def collect(value):
            if _is_keras_tensor(value):
                history = (value.get("config") or {}).get("keras_history")
                if not (isinstance(history, list) and len(history) == 3):
                    raise FormatError(f"{source}: an input of layer {layer!r} has no keras_history")
                found.append(history)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    collect(item)
            elif isinstance(value, dict):
                for item in value.values():
                    collect(item)

        collect(node.get("args", []))
        kwargs = node.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise FormatError(f"{source}: the call of layer {layer!r} is malformed")
        for key, value in kwargs.items():
            if key not in ("training", "mask") or (key == "mask" and value is not None):
                raise FormatError(f"{source}: layer {layer!r} is called with {key}={str(value)[:80]}, "
                                  f"which linea cannot express")
        return found
    if isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        found = []
        for item in node:
            if not (isinstance(item, list) and len(item) in (3, 4)):
                raise FormatError(f"{source}: an inbound node of layer {layer!r} is malformed")
            if len(item) == 4 and item[3] not in ({}, None) and set(item[3]) - {"training"}:
                raise FormatError(f"{source}: layer {layer!r} is called with {item[3]}, which linea "
                                  f"cannot express")
            found.append(list(item[:3]))
        return found
    raise FormatError(f"{source}: an inbound node of layer {layer!r} is malformed")


def _chain_config(model: dict, source: str) -> dict:
    entries = model.get("layers")
    if not isinstance(entries, list) or len(entries) > _MAX_LAYERS:
        raise FormatError(f"{source}: the model config's layer list is malformed")
    by_name, listed = {}, []
    for entry in entries:
        name = _entry_name(entry, source)
        if name in by_name:
            raise FormatError(f"{source}: two layers of the model are named {name!r}")
        by_name[name] = entry
        listed.append(name)
    first = _endpoint(model.get("input_layers"), "input", source)
    last = _endpoint(model.get("output_layers"), "output", source)
    if by_name.get(first, {}).get("class_name") != "InputLayer":
        raise FormatError(f"{source}: the model's input {first!r} is not an InputLayer of the model")
    feeds = {}
    for name, entry in by_name.items():
        nodes = entry.get("inbound_nodes") or []
        if entry.get("class_name") == "InputLayer":
            continue
        if not isinstance(nodes, list) or len(nodes) != 1:
            raise FormatError(f"{source}: layer {name!r} ({entry.get('class_name')}) is called "
                              f"{len(nodes) if isinstance(nodes, list) else '?'} times; linea reads "
                              f"models whose layers are each called once, in one chain")
        histories = _node_sources(nodes[0], name, source)
        if len(histories) != 1:
            raise FormatError(f"{source}: layer {name!r} ({entry.get('class_name')}) takes "
                              f"{len(histories)} inputs: the model branches there, and linea reads "
                              f"only models whose layers form one chain (no Add, Concatenate or "
                              f"other merges)")
        parent, node_index, tensor_index = histories[0]
        if parent not in by_name or node_index != 0 or tensor_index != 0:
            raise FormatError(f"{source}: layer {name!r} takes output {[node_index, tensor_index]} of "
                              f"{parent!r}, which the model does not have once")
        feeds[name] = parent
    order, current = [], last
    while current != first:
        if current in order or current not in feeds:
            raise FormatError(f"{source}: the layers do not lead from the input {first!r} to the "
                              f"output {last!r} in one chain (stuck at {current!r})")
        order.append(current)
        current = feeds[current]
    order.reverse()
    off_path = [name for name in listed if name not in order and name != first]
    if off_path:
        raise FormatError(f"{source}: layer {off_path[0]!r} ({by_name[off_path[0]].get('class_name')}) "
                          f"is not on the one path from the input to the output: the model branches, "
                          f"which linea does not read")
    if [name for name in listed if name != first] != order:
        raise FormatError(f"{source}: the model lists its layers in another order than they are "
                          f"called ({order}); linea cannot match its weights safely")
    layers = [{k: v for k, v in by_name[name].items() if k != "inbound_nodes"}
              for name in [first] + order]
    return {"class_name": "Sequential",
            "config": {"name": model.get("name"), "trainable": model.get("trainable", True),
                       "layers": layers},
            "build_config": None}
