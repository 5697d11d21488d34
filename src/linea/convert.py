"""Whole-model conversion between the Keras flavour and the PyTorch flavour.

``to_nn(keras_model)`` turns a ``linea.keras.Sequential`` of Dense / Activation /
Dropout / LayerNormalization / Flatten layers into a ``linea.nn.Sequential``:
each Dense becomes a ``Linear`` holding kernelᵀ, followed by its activation as a
module of its own, so ``[Dense(relu), Dense]`` becomes ``Sequential(Linear, ReLU,
Linear)`` with PyTorch keys ``0.*`` and ``2.*``. ``to_keras(nn_model)`` goes
back, folding an activation module that follows a Linear into its Dense.
Epsilons and dropout rates carry over; weights are copied, never shared.
"""
from __future__ import annotations

from linea import nn
from linea.keras import activations
from linea.keras import layers as keras_layers
from linea.keras._sequential import Sequential as KerasSequential

__all__ = ["to_nn", "to_keras", "activation_module", "activation_name"]


def activation_module(name: str) -> nn.Module | None:
    """The ``nn`` module computing Keras activation ``name`` (None for "linear")."""
    modules = {
        "linear": None, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU, "silu": nn.SiLU, "softmax": lambda: nn.Softmax(dim=-1),
        "log_softmax": lambda: nn.LogSoftmax(dim=-1), "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "softplus": lambda: nn.Softplus(beta=1.0, threshold=float("inf")),
    }
    if name not in modules:
        raise ValueError(
            f"the Keras activation {name!r} has no linea.nn module; supported: {sorted(modules)}"
        )
    factory = modules[name]
    return None if factory is None else factory()


def activation_name(module: nn.Module) -> str | None:
    """The Keras activation name equal to ``module``, or None if there is none."""
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.Tanh):
        return "tanh"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.SiLU):
        return "silu"
    if isinstance(module, nn.GELU):
        return "gelu" if module.approximate == "none" else None
    if isinstance(module, nn.Softmax) and module.dim in (-1,):
        return "softmax"
    if isinstance(module, nn.LogSoftmax) and module.dim in (-1,):
        return "log_softmax"
    if isinstance(module, nn.LeakyReLU) and module.negative_slope == 0.2:
        return "leaky_relu"
    return None


def _keras_layer_to_modules(layer) -> list:
    if isinstance(layer, keras_layers.Dense):
        linear = nn.Linear.from_dense(layer)
        follow = activation_module(activations.serialize(layer.activation))
        return [linear] + ([follow] if follow is not None else [])
    if isinstance(layer, keras_layers.Activation):
        module = activation_module(activations.serialize(layer.activation))
        return [module if module is not None else nn.Identity()]
    if isinstance(layer, keras_layers.Dropout):
        return [nn.Dropout(layer.rate)]
    if isinstance(layer, keras_layers.Flatten):
        return [nn.Flatten()]
    if isinstance(layer, keras_layers.LayerNormalization):
        shape = tuple(layer.gamma.shape if layer.gamma is not None else layer.beta.shape)
        norm = nn.LayerNorm(shape, eps=layer.epsilon, elementwise_affine=True,
                            dtype=layer._dtype)
        norm.weight._data[...] = layer.gamma._data if layer.gamma is not None else 1
        norm.bias._data[...] = layer.beta._data if layer.beta is not None else 0
        return [norm]
    raise TypeError(f"to_nn cannot convert a {type(layer).__name__} layer ('{layer.name}'); it "
                    "converts Dense, Activation, Dropout, Flatten and LayerNormalization")


def to_nn(keras_model) -> nn.Sequential:
    """A ``linea.nn.Sequential`` computing the same function (returned in eval mode)."""
    if not isinstance(keras_model, KerasSequential):
        raise TypeError(f"to_nn expects a linea.keras.Sequential, got {type(keras_model).__name__}")
    if not keras_model.built:
        raise ValueError(f"model '{keras_model.name}' is not built: call or build it first, so its "
                         "weights exist")
    modules = []
    for layer in keras_model.layers:
        modules.extend(_keras_layer_to_modules(layer))
    return nn.Sequential(*modules).eval()


def to_keras(nn_model, input_shape=None) -> KerasSequential:
    """A built ``linea.keras.Sequential`` computing the same function as ``nn_model``."""
    modules = list(nn_model) if isinstance(nn_model, nn.Sequential) else [nn_model]
    layers, index = [], 0
    in_features = None
    while index < len(modules):
        module = modules[index]
        if isinstance(module, nn.Linear):
            following = modules[index + 1] if index + 1 < len(modules) else None
            name = activation_name(following) if following is not None else None
            layers.append(keras_layers.Dense.from_linear(module, activation=name))
            in_features = in_features or module.in_features
            index += 2 if name is not None else 1
            continue
        name = activation_name(module)
        if name is not None:
            layers.append(keras_layers.Activation(name))
        elif isinstance(module, nn.Dropout):
            layers.append(keras_layers.Dropout(module.p))
        elif isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                raise ValueError("to_keras converts Flatten(start_dim=1, end_dim=-1) only")
            layers.append(keras_layers.Flatten())
        elif isinstance(module, nn.LayerNorm):
            norm = keras_layers.LayerNormalization(
                axis=list(range(-len(module.normalized_shape), 0)) if len(module.normalized_shape) > 1 else -1,
                epsilon=module.eps, center=module.bias is not None,
                scale=module.weight is not None, dtype=module.weight.dtype.name if module.weight is not None else None)
            norm._ensure_built((None,) + module.normalized_shape)
            if module.weight is not None:
                norm.gamma._data[...] = module.weight._data
            if module.bias is not None:
                norm.beta._data[...] = module.bias._data
            layers.append(norm)
        elif isinstance(module, nn.Identity):
            pass
        else:
            raise TypeError(f"to_keras cannot convert {type(module).__name__}; it converts Linear, "
                            "ReLU/Tanh/Sigmoid/GELU/SiLU/Softmax(dim=-1)/LeakyReLU(0.2), Dropout, "
                            "Flatten, LayerNorm and Identity")
        index += 1
    model = KerasSequential(layers)
    shape = input_shape or ((None, in_features) if in_features is not None else None)
    if shape is not None:
        model._ensure_built(tuple(shape))
    return model
