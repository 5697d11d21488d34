"""Keras's ``Sequential`` model: layers in order, compile / fit / evaluate / predict."""
from __future__ import annotations

from linea._errors import ShapeError
from linea.keras import losses as losses_module
from linea.keras import optimizers as optimizers_module
from linea.keras._summary import summary_text
from linea.keras._trainer import run_evaluate, run_fit, run_predict
from linea.keras.layers._core import InputLayer
from linea.keras.layers._layer import Layer
from linea.nn.modules._lazy import input_shape_of

__all__ = ["Sequential"]


def serialize_layer(layer: Layer) -> dict:
    entry = {"module": "keras.layers", "class_name": type(layer).__name__,
             "config": layer.get_config(), "registered_name": None}
    if layer.built and getattr(layer, "_input_shape", None) is not None:
        entry["build_config"] = {"input_shape": list(layer._input_shape)}
    return entry


class Sequential(Layer):
    """A stack of Keras-flavour layers, each feeding the next.

    ``Sequential([Input(shape=(3,)), Dense(30)])`` or a first layer with
    ``input_shape=`` builds every layer at once; otherwise the model builds at
    its first call or ``fit``. Train with ``compile(optimizer, loss, metrics)``
    then ``fit(x, y, epochs=…, batch_size=…)``.

    Example::

        >>> import numpy as np
        >>> from linea.keras import Sequential
        >>> from linea.keras.layers import Dense
        >>> model = Sequential([Dense(30, input_shape=(3,), activation=None)])
        >>> model.predict(np.ones((5, 3)), verbose=0).shape
        (5, 30)
    """

    def __init__(self, layers=None, trainable: bool = True, name: str | None = None) -> None:
        super().__init__(name=name, trainable=trainable)
        self._layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self.optimizer = None
        self.compiled_loss = None
        self.compiled_metrics: list = []
        self.history = None
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list:
        return list(self._layers)

    def add(self, layer: Layer) -> None:
        """Append a layer (an ``Input`` may only come first)."""
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("an Input can only be the first element of a Sequential model")
            self._input_layer = layer
            self._batch_input_shape = layer.batch_shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Only instances of `keras.Layer` can be added to a Sequential model. Received: "
                f"{layer!r} (of type {type(layer).__name__}); a linea.nn module belongs in "
                "linea.nn.Sequential, or convert it with linea.convert.to_keras"
            )
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in this model.")
        if not self._layers and self._batch_input_shape is None and layer._batch_input_shape is not None:
            self._batch_input_shape = layer._batch_input_shape
        self._layers.append(layer)
        self._modules[layer.name] = layer
        self.built = False
        if self._batch_input_shape is not None:
            self._ensure_built(self._batch_input_shape)

    def build(self, input_shape=None) -> None:
        shape = tuple(input_shape if input_shape is not None else self._batch_input_shape or ())
        if not shape:
            raise ValueError("Sequential.build needs an input shape, e.g. build((None, 3))")
        self._input_shape = shape
        for layer in self._layers:
            layer._input_shape = shape
            layer._ensure_built(shape)
            shape = layer.compute_output_shape(shape)
            layer._output_shape = shape
        self.built = True

    def call(self, inputs, training: bool = False):
        x = inputs
        for layer in self._layers:
            x = layer(x, training=training)
        return x

    def __call__(self, inputs, training=None, **kwargs):
        shape = input_shape_of(inputs)
        if self.built and len(shape) == len(self._input_shape) and \
                self._input_shape[-1] is not None and shape[-1] != self._input_shape[-1]:
            raise ShapeError(
                f"Sequential model '{self.name}' was built for inputs of shape {self._input_shape}, "
                f"got {tuple(shape)}"
            )
        return super().__call__(inputs, training=training, **kwargs)

    def compute_output_shape(self, input_shape) -> tuple:
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_weights(self) -> list:
        return [array for layer in self._layers for array in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Set every layer's weights from one flat list; checks all before changing any."""
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self._layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights on model '{self.name}' needs {expected} arrays, got {len(weights)}")
        position, plan = 0, []
        for layer in self._layers:
            count = len(layer.weights)
            plan.append((layer, weights[position:position + count]))
            position += count
        for layer, chunk in plan:  # validate every shape first
            for variable, array in zip(layer.weights, chunk):
                shape = tuple(getattr(array, "shape", ()))
                if shape != variable.shape:
                    raise ShapeError(f"Layer {layer.name} weight shape {variable.shape} is not "
                                     f"compatible with provided weight shape {shape}")
        for layer, chunk in plan:
            layer.set_weights(chunk)

    def quantize(self, mode=None, config=None) -> None:
        """Quantize every Dense layer in place (``Dense.quantize``); other layers stay float.

        Every layer is checked before any changes, so a refused call changes nothing.
        """
        dense = [layer for layer in self.layers if hasattr(layer, "quantization_mode")]
        if not dense:
            raise ValueError(f"model '{self.name}' has no layer that can be quantized")
        for layer in dense:
            if not layer.built or layer.quantization_mode is not None or layer.compute_dtype == "float16":
                layer.quantize(mode, config=config)  # raises Keras's error for this layer
        for layer in dense:
            layer.quantize(mode, config=config)

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs) -> None:
        """Print Keras's table of layers, output shapes and parameter counts."""
        text = summary_text(self, line_length)
        (print_fn or print)(text)

    # ---- training ---------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                auto_scale_loss: bool = True, **kwargs) -> None:
        """Choose the optimizer, loss and metrics; names mean Keras 3's defaults.

        Everything is resolved before anything is set, so a bad name changes nothing.
        """
        resolved_optimizer = optimizers_module.get(optimizer)
        resolved_loss = losses_module.get(loss) if loss is not None else None
        metrics = list(metrics or [])
        from linea.keras import metrics as metrics_module

        for metric in metrics:
            if not callable(metric) and metric not in ("accuracy", "acc") and \
                    metric not in metrics_module._BY_NAME:
                raise ValueError(f"Unknown metric {metric!r}; expected 'accuracy' or one of "
                                 f"{sorted(metrics_module._BY_NAME)}, or a function")
        if auto_scale_loss and self.dtype_policy.name == "mixed_float16" and \
                not isinstance(resolved_optimizer, optimizers_module.LossScaleOptimizer):
            resolved_optimizer = optimizers_module.LossScaleOptimizer(resolved_optimizer)
        self.optimizer, self.compiled_loss, self.compiled_metrics = resolved_optimizer, resolved_loss, metrics
        self._loss_identifier = loss
        self._compile_config = {"optimizer": optimizer if isinstance(optimizer, str) else None,
                                "loss": loss if isinstance(loss, str) else None, "metrics": metrics}

    def _check_compiled(self, what: str) -> None:
        if self.optimizer is None or self.compiled_loss is None:
            raise RuntimeError(f"You must call `compile()` with a loss before `{what}()`, e.g. "
                               "model.compile(optimizer='adam', loss='mse')")

    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True,
            initial_epoch: int = 0, **kwargs):
        """Train for ``epochs`` passes over (x, y); returns a ``History``."""
        self._check_compiled("fit")
        if kwargs:
            raise TypeError(f"fit() got unsupported argument(s) {sorted(kwargs)}")
        return run_fit(self, x, y, batch_size, epochs, 1 if verbose == "auto" else int(verbose),
                       callbacks, validation_split, validation_data, shuffle, initial_epoch)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict: bool = False,
                 **kwargs):
        """Loss (and metrics) on (x, y): a float, or [loss, *metrics], or a dict."""
        self._check_compiled("evaluate")
        logs = run_evaluate(self, x, y, batch_size)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Outputs for ``x`` in inference mode, as a NumPy array."""
        return run_predict(self, x, batch_size)

    def predict_on_batch(self, x):
        return run_predict(self, x, None)

    # ---- saving -----------------------------------------------------------
    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Write the weights to a Keras 3 ``.weights.h5`` file."""
        from linea.keras._saving import save_weights

        save_weights(self, filepath)

    def load_weights(self, filepath, skip_mismatch: bool = False) -> None:
        """Read weights from a Keras 3 ``.weights.h5`` (or ``.keras``) file; all or nothing."""
        from linea.keras._saving import load_weights

        load_weights(self, filepath)

    def save(self, filepath, overwrite: bool = True) -> None:
        """Write the model (architecture, weights) to a Keras 3 ``.keras`` file."""
        from linea.keras._saving import save_model

        save_model(self, filepath)

    def get_config(self) -> dict:
        layers = [serialize_layer(layer) for layer in self._layers]
        if self._batch_input_shape is not None:
            input_config = {"batch_shape": list(self._batch_input_shape), "dtype": self.dtype,
                            "sparse": False, "ragged": False, "optional": False,
                            "name": self._input_layer.name if self._input_layer else "input_layer"}
            layers.insert(0, {"module": "keras.layers", "class_name": "InputLayer",
                              "config": input_config, "registered_name": None})
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": super().get_config()["dtype"], "layers": layers}
        if self.built:
            config["build_input_shape"] = list(self._input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        from linea.keras._saving import deserialize_layer

        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for entry in config.get("layers", []):
            model.add(deserialize_layer(entry))
        if not model.built and config.get("build_input_shape"):
            model._ensure_built(tuple(config["build_input_shape"]))
        return model

    def extra_repr(self) -> str:
        return f"name={self.name!r}"
