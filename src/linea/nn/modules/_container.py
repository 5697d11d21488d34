"""Containers: ``Sequential`` and ``ModuleList``."""
from __future__ import annotations

from collections import OrderedDict

from linea.nn.modules._module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList"]

_plain_call = Module.__call__


class _IndexedModules(Module):
    """Modules stored under the keys "0", "1", … (shared by Sequential and ModuleList)."""

    def _index(self, index: int) -> str:
        size = len(self._modules)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range for {type(self).__name__} of length {size}")
        return list(self._modules.keys())[index % size]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(*list(self._modules.values())[index])
        return self._modules[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(self._index(index), module)

    def __delitem__(self, index) -> None:
        keys = list(self._modules.keys())
        doomed = keys[index] if isinstance(index, slice) else [self._index(index)]
        for key in doomed:
            delattr(self, key)
        self._renumber()

    def _renumber(self) -> None:
        modules = list(self._modules.values())
        for key in list(self._modules.keys()):
            delattr(self, key)
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def append(self, module: Module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules.insert(index, module)
        for key in list(self._modules.keys()):
            delattr(self, key)
        for i, item in enumerate(modules):
            self.add_module(str(i), item)


class Sequential(_IndexedModules):
    """Chains modules: ``Sequential(Linear(3, 30), ReLU(), Linear(30, 1))``.

    Keys are "0", "1", … (or the names of an OrderedDict), so the state dict
    reads ``0.weight``, ``2.bias`` as in PyTorch.

    Example::

        >>> import linea
        >>> model = linea.nn.Sequential(linea.nn.Linear(3, 30), linea.nn.Linear(30, 1))
        >>> model(linea.ones(5, 3)).shape
        (5, 1)
    """

    def __init__(self, *args) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return super().__getitem__(index)

    def forward(self, input):
        for module in self._modules.values():
            # A module whose __call__ is Module's plain one is called through forward
            # directly: the *args frame costs ~0.45 µs a module (a quarter of a small MLP).
            if type(module).__call__ is _plain_call and not module._hooks:
                input = module.forward(input)
            else:
                input = module(input)
        return input


class ModuleList(_IndexedModules):
    """A list of modules whose parameters the parent registers."""

    def __init__(self, modules=None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __add__(self, other) -> "ModuleList":
        return ModuleList(list(self) + list(other))


class ModuleDict(Module):
    """Modules under string keys, registered (``model.blocks["head"]``), in insertion order."""

    def __init__(self, modules=None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        module = self._modules[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            del self[key]

    def update(self, modules) -> None:
        pairs = modules.items() if hasattr(modules, "items") else modules
        for entry in pairs:
            key, module = entry
            self[key] = module


class ParameterList(Module):
    """Parameters under the keys "0", "1", …, registered with the parent (``0``, ``1`` in its
    state dict)."""

    def __init__(self, values=None) -> None:
        super().__init__()
        self._size = 0
        for value in values or []:
            self.append(value)

    def _as_parameter(self, value):
        from linea.nn.modules._parameter import Parameter
        from linea._tensor import Tensor

        if isinstance(value, Parameter):
            return value
        if isinstance(value, Tensor):
            return Parameter(value._data)
        raise TypeError(f"ParameterList holds parameters or tensors, got {type(value).__name__}")

    def append(self, value) -> "ParameterList":
        self.register_parameter(str(self._size), self._as_parameter(value))
        object.__setattr__(self, "_size", self._size + 1)
        return self

    def extend(self, values) -> "ParameterList":
        for value in values:
            self.append(value)
        return self

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ParameterList([self[i] for i in range(self._size)[index]])
        if not -self._size <= index < self._size:
            raise IndexError(f"index {index} is out of range for ParameterList of length {self._size}")
        return self._parameters[str(index % self._size)]

    def __setitem__(self, index: int, value) -> None:
        if not -self._size <= index < self._size:
            raise IndexError(f"index {index} is out of range for ParameterList of length {self._size}")
        self.register_parameter(str(index % self._size), self._as_parameter(value))

    def __iter__(self):
        return (self[i] for i in range(self._size))

    def extra_repr(self) -> str:
        return "\n".join(f"({i}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                         for i, p in enumerate(self))
