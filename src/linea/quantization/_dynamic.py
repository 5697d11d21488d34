"""``quantize_dynamic``: a copy of a model with every Linear replaced by a QuantizedLinear."""
from __future__ import annotations

from linea._dtype import is_floating
from linea.nn.modules._linear import Linear
from linea.nn.modules._module import Module
from linea.quantization._linear import QuantizedLinear

__all__ = ["quantize_dynamic", "model_size"]


def _quantized_copy(module: Module, memo: dict):
    if id(module) in memo:  # a layer shared between two places stays shared
        return memo[id(module)]
    if type(module) is Linear:
        copy = QuantizedLinear.from_float(module)
        copy.training = module.training
    else:
        copy = module.__class__.__new__(module.__class__)
        state = dict(module.__dict__)
        state.pop("_watchers", None)  # the original's caches do not watch the copy
        for registry in ("_parameters", "_buffers", "_modules"):
            state[registry] = dict(state[registry])
        object.__setattr__(copy, "__dict__", state)
        for name, parameter in module._parameters.items():
            if parameter is not None:
                copy._parameters[name] = parameter.__class__(parameter.detach().numpy().copy(),
                                                             requires_grad=parameter.requires_grad)
        for name, buffer in module._buffers.items():
            if buffer is not None:
                copy._buffers[name] = buffer.detach().clone()
        for name, child in module._modules.items():
            copy._modules[name] = None if child is None else _quantized_copy(child, memo)
    memo[id(module)] = copy
    return copy


def quantize_dynamic(model: Module, qconfig_spec=None, dtype="int8", *, inplace: bool = False) -> Module:
    """A copy of ``model`` whose ``Linear`` layers hold int8 weights (inference only).

    Each weight is quantized symmetrically per output channel and each input row at run
    time (see ``QuantizedLinear``); products accumulate exactly in int32. ``model`` is
    left untouched unless ``inplace=True``. Unlike torch's, a bare ``Linear`` is
    quantized too (torch returns it unchanged). ``qconfig_spec``, when given, is a set of
    layer types and may only name ``linea.nn.Linear``.
    """
    import linea

    if dtype not in ("int8", linea.int8):
        raise ValueError(f"quantize_dynamic supports dtype='int8' (linea.int8), got {dtype!r}")
    if qconfig_spec is not None and set(qconfig_spec) - {Linear}:
        raise ValueError(f"quantize_dynamic quantizes only linea.nn.Linear layers; got "
                         f"{sorted(getattr(t, '__name__', str(t)) for t in qconfig_spec)}")
    if not isinstance(model, Module):
        raise TypeError(f"quantize_dynamic expects a linea.nn.Module, got {type(model).__name__}")
    for name, module in model.named_modules():
        if type(module) is Linear and not is_floating(module.weight._data.dtype):
            raise TypeError(f"layer {name or 'model'} has a {module.weight.dtype} weight; "
                            f"quantize a floating-point model")
    quantized = _quantized_copy(model, {})
    if not inplace:
        return quantized  # the copy keeps every module's train/eval mode
    if type(model) is Linear:
        raise ValueError("inplace=True cannot turn a bare Linear into a QuantizedLinear; "
                         "use the returned copy")
    for name, child in quantized._modules.items():
        model._modules[name] = child
    return model


def model_size(model: Module) -> int:
    """Bytes held by a model's parameters, buffers and packed int8 weights."""
    total = 0
    for module in model.modules():
        if isinstance(module, QuantizedLinear):
            total += module.nbytes
            continue
        for tensor in list(module._parameters.values()) + list(module._buffers.values()):
            if tensor is not None:
                total += tensor._data.nbytes
    return total
