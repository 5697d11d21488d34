"""``Optimizer``: parameter groups, per-parameter state, zero_grad and state dicts.

Works on any iterable of tensors (never imports ``linea.nn``). Updates act on
the parameters' arrays in place, outside the autograd tape.
"""
from __future__ import annotations

import copy

from linea._autograd import enable_grad, zero_grads
from linea.backend import namespace_of, quietly, xp
from linea._errors import StateDictError
from linea._tensor import Tensor, host_array
from linea._versions import mark_written

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: subclasses define ``_update(group, parameter, grad, state)``."""

    def __init__(self, params, defaults: dict) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (the rest from defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for parameter in params:
            if not isinstance(parameter, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(parameter).__name__}")
            if not parameter.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        existing = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in existing for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear in more than one parameter group")
        group = dict(self.defaults)
        group.update(param_group)
        group["params"] = params
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    def _check_hyperparameters(self, group: dict) -> None:
        lr = group.get("lr")
        if lr is None or not isinstance(lr, (int, float)) or lr < 0:
            raise ValueError(f"Invalid learning rate: {lr!r} (a non-negative number is expected)")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns closure()'s loss if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with quietly():  # a non-finite gradient gives non-finite weights, as in PyTorch, silently
            for group in self.param_groups:
                for parameter in group["params"]:
                    if parameter.grad is None:
                        continue
                    state = self.state.get(parameter)
                    if state is None:
                        state = self.state[parameter] = {}
                    self._update(group, parameter._data, parameter.grad._data, state)
                    mark_written(parameter._data)  # a graph recorded before the step is stale
        return loss

    def _update(self, group: dict, param, grad, state: dict) -> None:
        raise NotImplementedError

    # ---- state dicts ------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, …]}]} as in PyTorch."""
        index_of, groups, next_index = {}, [], 0
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            indices = []
            for parameter in group["params"]:
                if id(parameter) not in index_of:
                    index_of[id(parameter)] = next_index
                    next_index += 1
                indices.append(index_of[id(parameter)])
            packed["params"] = indices
            groups.append(packed)
        state = {}
        for parameter, values in self.state.items():
            state[index_of[id(parameter)]] = {
                key: Tensor._make(value._data.copy()) if isinstance(value, Tensor) else copy.deepcopy(value)
                for key, value in values.items()
            }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore state and hyper-parameters; checks everything before changing anything."""
        try:
            saved_groups = state_dict["param_groups"]
            saved_state = state_dict["state"]
        except (KeyError, TypeError):
            raise StateDictError(
                "an optimizer state dict needs the keys 'state' and 'param_groups'"
            ) from None
        if len(saved_groups) != len(self.param_groups):
            raise StateDictError(
                f"loaded state dict has {len(saved_groups)} parameter groups, but the optimizer "
                f"has {len(self.param_groups)}"
            )
        by_index = {}
        for ours, saved in zip(self.param_groups, saved_groups):
            if len(ours["params"]) != len(saved["params"]):
                raise StateDictError(
                    f"loaded state dict contains a parameter group of {len(saved['params'])} "
                    f"parameters that doesn't match the optimizer's group of {len(ours['params'])}"
                )
            for index, parameter in zip(saved["params"], ours["params"]):
                by_index[int(index)] = parameter
        new_state = {}
        for index, values in saved_state.items():
            parameter = by_index.get(int(index))
            if parameter is None:
                raise StateDictError(f"state for parameter index {index} has no parameter")
            restored = {}
            for key, value in values.items():
                array = host_array(value)  # linea, NumPy, or a PyTorch optimizer's tensors
                if array is not None:
                    if key != "step" and array.dtype.kind == "f":
                        if array.shape != parameter.shape:
                            raise StateDictError(
                                f"optimizer state {key!r} of parameter {index} has shape "
                                f"{array.shape}, the parameter has {parameter.shape}"
                            )
                        array = array.astype(parameter._data.dtype)
                    restored[key] = Tensor._make(array.copy())
                else:
                    restored[key] = copy.deepcopy(value)
            new_state[parameter] = restored
        self.state = new_state
        for ours, saved in zip(self.param_groups, saved_groups):
            for key, value in saved.items():
                if key != "params":
                    ours[key] = value

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def state_array(state: dict, key: str, like):
    """The array of a state entry, created as zeros like ``like`` on first use."""
    value = state.get(key)
    if value is None:
        value = state[key] = Tensor._make(xp.zeros_like(like) if type(like) is xp.ndarray else
                                          namespace_of(like).zeros_like(like))
    return value._data


def advance_step(state: dict) -> float:
    """Increment the step counter (a float32 0-d tensor, as in PyTorch) and return it."""
    step = state.get("step")
    if step is None:
        step = state["step"] = Tensor._make(xp.zeros((), xp.float32))
    count = step._data.item() + 1.0
    step._data.fill(count)  # fill, not +=: a ufunc call costs ~1 µs per parameter per step
    return count
