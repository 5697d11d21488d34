"""``Module``: the base class that holds parameters, buffers and sub-modules.

Parameters and sub-modules assigned as attributes are registered in order,
which gives ``parameters()``, ``state_dict()`` keys like ``fc1.weight`` and the
printed tree. Attribute reads stay plain Python attribute reads (no
``__getattr__`` on the hot path).
"""
from __future__ import annotations

import weakref
from collections import OrderedDict, namedtuple

from linea import _dtype
from linea._autograd import zero_grads
from linea.backend import copy_into, kind_of, namespace_of, xp
from linea._dtype import is_floating
from linea._errors import StateDictError
from linea._tensor import Tensor, check_device, cuda_device_name, host_array, is_device_argument
from linea.nn.modules._parameter import Parameter, UninitializedParameter
from linea._versions import mark_written

__all__ = ["Module", "IncompatibleKeys"]

#: What ``load_state_dict`` returns, as in PyTorch.
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])



def _astype(array, target):
    """``array`` cast to the linea dtype ``target``, in its own namespace."""
    if isinstance(array, xp.ndarray):
        return array.astype(target.numpy)
    space = namespace_of(array)
    return space.astype(array, target.in_namespace(space))


class Module:
    """Base class of every layer and model: subclass it and define ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    #: Whoever caches something derived from this module's structure (``linea.compile``'s
    #: plans) and must hear of a change to it: a WeakSet of objects whose ``stale`` is set
    #: True by any change of this module's attributes, children, parameters, buffers, mode
    #: or hooks. Empty (no cost) until a cache watches the module, so a change to one model
    #: never invalidates another's plan.
    _watchers = ()

    def _watch_structure(self, watcher) -> None:
        """Tell ``watcher`` (``watcher.stale = True``) of every later change of this module."""
        if not self._watchers:
            object.__setattr__(self, "_watchers", weakref.WeakSet())
        self._watchers.add(watcher)

    def _structure_changed(self) -> None:
        for watcher in tuple(self._watchers):
            watcher.stale = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    _hooks = None  # a ModuleHooks once a hook is registered

    def __call__(self, *args, **kwargs):
        if not self._hooks:
            return self.forward(*args, **kwargs)
        from linea.nn.modules._module_hooks import call_with_hooks

        return call_with_hooks(self, args, kwargs)

    # ---- hooks (PyTorch's names, arguments and order) -----------------------
    def _hook_registry(self):
        from linea.nn.modules._module_hooks import ModuleHooks

        self._structure_changed()  # linea.compile re-surveys: a hooked module runs eagerly
        if self._hooks is None:
            object.__setattr__(self, "_hooks", ModuleHooks())
        return self._hooks

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False):
        """Call ``hook(module, args)`` (``with_kwargs``: ``hook(module, args, kwargs)``) before
        ``forward``; a non-None result replaces the inputs. Returns a removable handle."""
        from linea._hooks import add_hook

        return add_hook(self._hook_registry().forward_pre, (hook, bool(with_kwargs)), prepend)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False):
        """Call ``hook(module, args, output)`` (``with_kwargs``: ``hook(module, args, kwargs,
        output)``) after ``forward``; a non-None result replaces the output."""
        from linea._hooks import add_hook

        return add_hook(self._hook_registry().forward, (hook, bool(with_kwargs)), prepend)

    def register_full_backward_hook(self, hook, prepend: bool = False):
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to the
        module's inputs are computed; a non-None result replaces ``grad_input``."""
        from linea._hooks import add_hook

        return add_hook(self._hook_registry().backward, hook, prepend)

    def register_backward_hook(self, hook):
        raise NotImplementedError("register_backward_hook is deprecated in PyTorch and not in "
                                  "linea; use register_full_backward_hook")

    # ---- registration -----------------------------------------------------
    def _registries(self):
        try:
            return self.__dict__["_parameters"], self.__dict__["_buffers"], self.__dict__["_modules"]
        except KeyError:
            raise AttributeError(
                f"cannot assign parameters or modules before Module.__init__() is called: "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            ) from None

    def __setattr__(self, name: str, value) -> None:
        self._structure_changed()
        if isinstance(value, Parameter):
            parameters, buffers, modules = self._registries()
            buffers.pop(name, None)
            modules.pop(name, None)
            parameters[name] = value
        elif isinstance(value, Module):
            parameters, buffers, modules = self._registries()
            parameters.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif "_parameters" in self.__dict__:
            parameters, buffers, modules = self._registries()
            if name in parameters:
                if value is not None:
                    raise TypeError(
                        f"cannot assign {type(value).__name__} as parameter '{name}' "
                        "(linea.nn.Parameter or None expected)"
                    )
                parameters[name] = None
            elif name in modules:
                if value is not None:
                    raise TypeError(
                        f"cannot assign {type(value).__name__} as child module '{name}' "
                        "(linea.nn.Module or None expected)"
                    )
                modules[name] = None
            elif name in buffers:
                if value is not None and not isinstance(value, Tensor):
                    raise TypeError(
                        f"cannot assign {type(value).__name__} as buffer '{name}' "
                        "(linea.Tensor or None expected)"
                    )
                buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._structure_changed()
        for registry in self._registries():
            registry.pop(name, None)
        self._non_persistent_buffers.discard(name)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._structure_changed()
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter '{name}'")
        self._check_name(name)
        parameters, _, _ = self._registries()
        parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is state but not learnt (saved in state_dict if persistent)."""
        self._structure_changed()
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer '{name}'")
        self._check_name(name)
        _, buffers, _ = self._registries()
        buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: "Module | None") -> None:
        self._structure_changed()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name)
        _, _, modules = self._registries()
        modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f'attribute name must be a non-empty string without ".", got {name!r}')

    def get_submodule(self, target: str) -> "Module":
        module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r}")
            module = child
        return module

    # ---- traversal --------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            child_prefix = f"{prefix}.{name}" if prefix else name
            yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, function) -> "Module":
        for module in self.children():
            module.apply(function)
        function(self)
        return self

    # ---- modes and gradients ----------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        for module in self.modules():
            if module.training != mode:
                module._structure_changed()  # a traced linea.compile plan depends on the mode
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads(self.parameters(), set_to_none)

    # ---- dtype ------------------------------------------------------------
    def to(self, *args, dtype=None, device=None) -> "Module":
        """Convert floating parameters and buffers to ``dtype`` in place; returns self."""
        for arg in args:
            if is_device_argument(arg):
                device = arg
            else:
                dtype = arg
        check_device(device)
        if dtype is None:
            return self
        target = _dtype.as_dtype(dtype)
        if not target.is_floating_point:
            raise TypeError(f"Module.to() only accepts floating point dtypes, got {target}")
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.dtype.is_floating_point:
                tensor._data = _astype(tensor._data, target)
                if tensor.grad is not None:
                    tensor.grad._data = _astype(tensor.grad._data, target)
        return self

    def float(self) -> "Module":
        return self.to(_dtype.float32)

    def double(self) -> "Module":
        return self.to(_dtype.float64)

    def half(self) -> "Module":
        return self.to(_dtype.float16)

    def bfloat16(self) -> "Module":
        return self.to(_dtype.bfloat16)

    def cpu(self) -> "Module":
        return self

    def cuda(self, device=None) -> "Module":
        """Raises, saying what is missing: linea's CUDA backend (CuPy) is not built yet."""
        return self.to(cuda_device_name(device))

    # ---- state dict -------------------------------------------------------
    def _state_entries(self, prefix: str = ""):
        """(key, owning module, attribute name, tensor) for every state-dict entry."""
        for name, parameter in self._parameters.items():
            if parameter is not None:
                yield prefix + name, self, name, parameter
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                yield prefix + name, self, name, buffer
        for name, module in self._modules.items():
            if module is not None:
                yield from module._state_entries(f"{prefix}{name}.")

    def state_dict(self, *, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered mapping of every parameter and persistent buffer, by dotted name."""
        state = OrderedDict() if destination is None else destination
        for key, _, _, tensor in self._state_entries(prefix):
            state[key] = tensor if keep_vars else tensor.detach()
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Everything is checked first; on any problem a ``StateDictError`` lists
        them all and the module is left exactly as it was. Returns
        ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"expected a mapping of names to tensors, got {type(state_dict).__name__}")
        entries = list(self._state_entries())
        expected = {key for key, _, _, _ in entries}
        missing = [key for key, _, _, _ in entries if key not in state_dict]
        unexpected = [key for key in state_dict.keys() if key not in expected]
        problems, updates = [], []
        for key, module, name, tensor in entries:
            if key not in state_dict:
                continue
            value = _host_array(state_dict[key])
            if value is None:
                problems.append(f'value for "{key}" is a {type(state_dict[key]).__name__}, '
                                "not a tensor or array")
            elif isinstance(tensor, UninitializedParameter):
                fits = module._accepts_lazy_shape(name, value.shape)
                if fits is not None:
                    problems.append(f"size mismatch for {key}: {fits}")
                else:
                    updates.append((module, name, tensor, value))
            elif value.shape != tensor.shape:
                problems.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(tensor.shape)}."
                )
            elif kind_of(value) not in "biuf" and not is_floating(value.dtype):
                problems.append(f"dtype of {key} is {value.dtype}, not a number type")
            elif module._state_problem(name, value) is not None:
                problems.append(f"{key}: {module._state_problem(name, value)}")
            else:
                updates.append((module, name, tensor, value))
        if strict:
            if unexpected:
                problems.insert(0, "Unexpected key(s) in state_dict: "
                                + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                problems.insert(0, "Missing key(s) in state_dict: "
                                + ", ".join(f'"{k}"' for k in missing) + ".")
        if problems:
            raise StateDictError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(problems)
            )
        for module, name, tensor, value in updates:
            if isinstance(tensor, UninitializedParameter):
                # Materialising one lazy weight may already have replaced this one.
                tensor = getattr(module, name)
                if isinstance(tensor, UninitializedParameter):
                    module._materialize_from(name, value)
                    continue
            module._load_value(name, tensor, value, assign)
        return IncompatibleKeys(missing, unexpected)

    def _state_problem(self, name: str, value) -> str | None:
        """Why ``value`` cannot be loaded into entry ``name`` beyond its shape, or None."""
        return None

    def _load_value(self, name: str, tensor, value, assign: bool) -> None:
        """Write a checked state-dict ``value`` into this module's entry ``name``."""
        if assign:
            mark_written(tensor._data)
            tensor._data = value.astype(tensor._data.dtype, copy=True)
        else:
            copy_into(tensor._data, value)
            mark_written(tensor._data)

    def _accepts_lazy_shape(self, name: str, shape) -> str | None:
        return f"{type(self).__name__}.{name} is uninitialized and cannot be loaded"

    # ---- printing ---------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            text = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def __reduce__(self):
        raise TypeError("linea never pickles modules; save model.state_dict() with linea.save()")


def _host_array(value):
    """A NumPy array for a state-dict value (linea, torch, NumPy or a number), or None."""
    if isinstance(value, (int, float)):
        return xp.asarray(value)
    return host_array(value)
