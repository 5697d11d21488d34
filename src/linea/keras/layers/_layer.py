"""The Keras ``Layer`` base and ``Variable``: Keras's API over linea's Module and Parameter.

A Keras layer is a ``linea.nn.Module`` (so it has parameters(), state_dict(),
the same autograd and optimizers); it adds Keras's lazy ``build`` at the first
call, names, ``get_weights``/``set_weights``, trainable flags, regularizer
losses and configs.
"""
from __future__ import annotations

from linea.backend import copy_into, xp
from linea._errors import ShapeError
from linea._tensor import Tensor
from linea.keras import initializers, regularizers
from linea.keras import constraints as constraints_module
from linea.keras._naming import unique_name
from linea.keras.config import resolve_policy
from linea.nn.modules._lazy import input_shape_of
from linea.nn.modules._module import Module
from linea.nn.modules._parameter import Parameter
from linea._versions import mark_written

__all__ = ["Layer", "Variable"]


class Variable(Parameter):
    """A Keras weight: a Parameter with a ``path``, ``assign()``, and its regularizer/constraint."""

    def __init__(self, data, name: str, path: str, trainable: bool = True, regularizer=None,
                 constraint=None) -> None:
        super().__init__(data, requires_grad=trainable)
        self.name, self.path = name, path
        self.always_frozen = not trainable  # moving statistics, int8 kernels: never trained
        self.regularizer, self.constraint = regularizer, constraint

    @property
    def trainable(self) -> bool:
        return self.requires_grad

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.requires_grad = bool(value)

    @property
    def value(self) -> "Variable":
        return self

    def assign(self, value) -> "Variable":
        array = xp.asarray(getattr(value, "_data", value))
        if array.shape != self.shape:
            raise ShapeError(
                f"cannot assign a value of shape {array.shape} to variable {self.path} of "
                f"shape {self.shape}"
            )
        copy_into(self._data, array)
        mark_written(self._data)
        return self

    def __repr__(self) -> str:
        return (f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype.name}, "
                f"value={self._data!r}>")


class Layer(Module):
    """Base of every Keras-flavour layer: build at the first call, then ``call``."""

    _accepted_kwargs = ("name", "trainable", "dtype", "input_shape", "input_dim", "batch_size",
                        "batch_input_shape")

    def __init__(self, *, activity_regularizer=None, **kwargs) -> None:
        super().__init__()
        unknown = sorted(set(kwargs) - set(self._accepted_kwargs))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword argument(s) {unknown}")
        name = kwargs.get("name")
        if name is not None and (not isinstance(name, str) or not name or "/" in name or "." in name):
            raise ValueError(f"a layer name must be a non-empty string without '/' or '.', got {name!r}")
        self.name = name or unique_name(type(self).__name__)
        self._policy = resolve_policy(kwargs.get("dtype"))
        self._dtype = self._policy.variable          # weights are created in this dtype
        self._compute_dtype = self._policy.compute   # inputs, weights in use and outputs
        self._trainable = bool(kwargs.get("trainable", True))
        self.built = False
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._activity_losses: list = []
        shape = kwargs.get("batch_input_shape")
        if shape is None and kwargs.get("input_dim") is not None:
            shape = (kwargs.get("batch_size"), int(kwargs["input_dim"]))
        elif shape is None and kwargs.get("input_shape") is not None:
            shape = (kwargs.get("batch_size"),) + tuple(kwargs["input_shape"])
        self._batch_input_shape = None if shape is None else tuple(shape)

    # ---- weights ----------------------------------------------------------
    @property
    def dtype(self) -> str:
        """The variables' dtype (Keras's ``layer.dtype``)."""
        return self._dtype.name

    @property
    def dtype_policy(self):
        return self._policy

    @property
    def compute_dtype(self) -> str:
        return self._compute_dtype.name

    @property
    def variable_dtype(self) -> str:
        return self._dtype.name

    def compute_weight(self, variable):
        """``variable`` as ``call`` uses it: cast to the compute dtype under a mixed policy."""
        if variable is None or variable._data.dtype == self._compute_dtype.numpy:
            return variable
        return variable.to(self._compute_dtype)

    def add_weight(self, name: str, shape, initializer="zeros", regularizer=None,
                   constraint=None, trainable: bool = True) -> Variable:
        """Create, initialise and register a weight of ``shape``."""
        tensor = initializers.get(initializer)(tuple(shape), self._dtype.numpy)
        variable = Variable(tensor._data, name, f"{self.name}/{name}", trainable,
                            regularizers.get(regularizer), constraints_module.get(constraint))
        variable.requires_grad = trainable and self._trainable
        setattr(self, name, variable)
        return variable

    @property
    def weights(self) -> list:
        return [p for p in self.parameters()]

    variables = weights

    @property
    def trainable_weights(self) -> list:
        return [p for p in self.parameters() if p.requires_grad]

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self) -> list:
        return [p for p in self.parameters() if not p.requires_grad]

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for module in self.modules():
            if isinstance(module, Layer):
                module._trainable = bool(value)
        for parameter in self.parameters():
            parameter.requires_grad = bool(value) and not getattr(parameter, "always_frozen", False)

    def get_weights(self) -> list:
        """Copies of the weights as NumPy arrays, in Keras's order (kernel, bias)."""
        return [p._data.copy() for p in self.weights]

    def set_weights(self, weights) -> None:
        """Set every weight from NumPy arrays; checks all shapes before changing any."""
        current = self.weights
        weights = list(weights)
        if len(weights) != len(current):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list of "
                f"length {len(weights)}, but the layer was expecting {len(current)} weights"
                + ("" if self.built else " (it is not built yet: call it once or build() it)")
            )
        arrays = [xp.asarray(getattr(w, "_data", w)) for w in weights]
        for variable, array in zip(current, arrays):
            if array.shape != variable.shape:
                raise ShapeError(
                    f"Layer {self.name} weight shape {variable.shape} is not compatible with "
                    f"provided weight shape {array.shape}"
                    + (" (a PyTorch weight (out, in) is the transpose of a Keras kernel "
                       "(in, units): pass weight.T)" if array.shape[::-1] == variable.shape else "")
                )
        for variable, array in zip(current, arrays):
            copy_into(variable._data, array)
            mark_written(variable._data)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't "
                "built. You can build it manually via: `layer.build(input_shape)`."
            )
        return sum(p.numel() for p in self.weights)

    @property
    def losses(self) -> list:
        """Regularization penalties of this layer's weights and its last outputs."""
        penalties = []
        for module in self.modules():
            if isinstance(module, Layer):
                for variable in module._parameters.values():
                    if isinstance(variable, Variable) and variable.regularizer is not None:
                        penalties.append(variable.regularizer(variable))
                penalties.extend(module._activity_losses)
        return penalties

    # ---- building and calling ---------------------------------------------
    def build(self, input_shape) -> None:
        self.built = True

    def _ensure_built(self, input_shape) -> None:
        if not self.built:
            self.build(tuple(input_shape))
            self.built = True

    def call(self, inputs, training: bool = False):
        raise NotImplementedError(f"{type(self).__name__} must define call()")

    def __call__(self, inputs, training=None, **kwargs):
        self._ensure_built(input_shape_of(inputs))
        outputs = self.call(inputs, training=bool(training), **kwargs)
        self._activity_losses = []
        if self.activity_regularizer is not None:
            penalty = self.activity_regularizer(outputs)
            batch = outputs.shape[0] if outputs.ndim else 1
            self._activity_losses = [penalty / batch if batch else penalty]
        return outputs

    forward = __call__

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    # ---- configs ----------------------------------------------------------
    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "dtype": {"module": "keras", "class_name": "DTypePolicy",
                          "config": {"name": self._policy.name}, "registered_name": None}}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if "batch_shape" in config:
            config["batch_input_shape"] = tuple(config.pop("batch_shape"))
        return cls(**config)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def check_shape_rank(layer: Layer, shape, min_ndim: int, hint: str = "") -> None:
    """Keras's InputSpec(min_ndim) check, with a message that says what to do."""
    if len(shape) < min_ndim:
        raise ShapeError(
            f'Input 0 of layer "{layer.name}" is incompatible with the layer: expected '
            f"min_ndim={min_ndim}, found ndim={len(shape)}. Full shape received: {tuple(shape)}"
            + (f". {hint}" if hint else "")
        )


def as_compute_tensor(inputs, dtype) -> Tensor:
    """Keras's autocast: inputs become tensors of the layer's compute dtype (differentiably)."""
    if isinstance(inputs, Tensor):
        return inputs if inputs._data.dtype == dtype.numpy else inputs.to(dtype)
    try:
        return Tensor._make(xp.asarray(inputs, dtype=dtype.numpy))
    except (TypeError, ValueError) as error:
        raise TypeError(f"a Keras layer expects a tensor or an array of numbers, got "
                        f"{type(inputs).__name__}: {error}") from None
