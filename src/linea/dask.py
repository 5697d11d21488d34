"""Scoring a ``dask.array`` (or Dask DataFrame) with a linea model, block by block.

::

    import dask.array as da, linea.dask
    X = da.random.random((10_000_000, 64), chunks=(250_000, 64)).astype("float32")
    y = linea.dask.predict(model, X)            # lazy (10⁷, out_features) dask.array
    p = linea.dask.predict_proba(model, X)      # softmax over the last axis
    y.compute()                                  # on whatever scheduler is active

What travels to the workers is **plain data**: the model's layer list (the one neutral list
every conversion uses, ``linea.io._spec``) as a JSON string plus a dict of NumPy arrays —
never a pickled linea object. That payload is **one** key of the task graph; every block
task depends on it, so a ``dask.distributed`` scheduler sends it to each worker once. Each
worker process rebuilds the model once per payload (cached by the payload's token) and
scores each block under ``no_grad`` through ``linea.compile``, in slices of ``batch_size``
rows when given.

Both flavours and int8-quantized models are accepted: anything ``linea.io`` can describe
(``nn.Sequential``/single modules and ``linea.keras.Sequential`` of Dense-style layers;
Keras image models are refused, their layout would need the permutation a file reader
applies). The input's feature axes are checked locally, before any block runs: a wrong
feature count raises the model's own ``ShapeError``. Needs ``pip install -e '.[dask]'``.
"""
from __future__ import annotations

import hashlib
import json
import threading

import numpy as np

from linea._errors import require

__all__ = ["predict", "predict_proba"]

#: {payload token: rebuilt, compiled model} in this process; BUILDS counts rebuilds (tests).
_MODELS: dict = {}
_LOCK = threading.Lock()
BUILDS = [0]


def _import_dask():
    require("dask.array", "dask", "linea.dask", "'dask[array]' distributed")
    return require("dask", "dask", "linea.dask", "'dask[array]' distributed")


def _describe(model) -> tuple[str, dict]:
    """The model as (JSON layer list, {name: array}); arrays never go into the JSON."""
    from linea.io._spec import spec_from_keras, spec_from_nn
    from linea.io._spec_images import IMAGE_KINDS
    from linea.keras._sequential import Sequential as KerasSequential

    if isinstance(model, KerasSequential):
        specs = spec_from_keras(model)
        if any(spec.kind in IMAGE_KINDS for spec in specs):
            raise NotImplementedError("linea.dask.predict scores Keras models of Dense-style layers; "
                                      "for a Keras image model convert it to nn first "
                                      "(linea.convert) and pass images in (N, C, H, W)")
    else:
        specs = spec_from_nn(model)
    layers, arrays = [], {}
    for index, spec in enumerate(specs):
        extra = {}
        for key, value in spec.extra.items():
            if isinstance(value, np.ndarray):
                arrays[f"{index}.extra.{key}"] = value
            else:
                extra[key] = list(value) if isinstance(value, tuple) else value
        for key in ("weight", "bias"):
            value = getattr(spec, key)
            if value is not None:
                arrays[f"{index}.{key}"] = np.ascontiguousarray(value)
        layers.append({"kind": spec.kind, "activation": spec.activation, "rate": spec.rate,
                       "eps": spec.eps, "name": spec.name, "extra": extra})
    return json.dumps(layers), arrays


def _rebuild(description: str, arrays: dict):
    from linea.io._spec import LayerSpec, nn_from_spec

    specs = []
    for index, layer in enumerate(json.loads(description)):
        extra = {key: tuple(value) if isinstance(value, list) else value
                 for key, value in layer["extra"].items()}
        prefix = f"{index}.extra."
        extra.update({name[len(prefix):]: array for name, array in arrays.items() if name.startswith(prefix)})
        specs.append(LayerSpec(layer["kind"], arrays.get(f"{index}.weight"), arrays.get(f"{index}.bias"),
                               layer["activation"], layer["rate"], layer["eps"], layer["name"], extra))
    return nn_from_spec(specs)


def _token(description: str, arrays: dict) -> str:
    digest = hashlib.sha256(description.encode())
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(str(arrays[name].dtype).encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _model_for(payload: dict):
    """This process's model for the payload, rebuilt (and compiled) once."""
    import linea

    with _LOCK:
        compiled = _MODELS.get(payload["token"])
        if compiled is None:
            model = _rebuild(payload["description"], payload["arrays"])
            kinds = {layer["kind"] for layer in json.loads(payload["description"])}
            # int8 layers have their own kernel, which compile does not plan: they run as built.
            compiled = model if "qlinear" in kinds else linea.compile(model)
            _MODELS[payload["token"]] = compiled
            BUILDS[0] += 1
    return compiled


def _score(model, block: np.ndarray, batch_size, proba: bool) -> np.ndarray:
    import linea

    with linea.no_grad():
        pieces = []
        step = len(block) if not batch_size else int(batch_size)
        for start in range(0, max(len(block), 1), max(step, 1)):
            out = model(linea.from_numpy(np.ascontiguousarray(block[start:start + step])))
            if proba:
                out = linea.softmax(out, -1)
            pieces.append(out.numpy())
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _score_block(block, payload, batch_size, proba):
    return _score(_model_for(payload), block, batch_size, proba)


def predict(model, X, batch_size: int | None = None, *, proba: bool = False):
    """A lazy ``dask.array`` of ``model``'s outputs for every row of ``X``.

    X: a ``dask.array`` of shape (N, *features) or a Dask DataFrame (N rows, features as
    columns). Returns (N, *out) with the dtype the model gives locally; chunks follow X's
    row chunks. ``batch_size`` bounds the rows scored at once inside a block; ``proba``
    applies softmax over the last axis (see ``predict_proba``).
    """
    dask = _import_dask()
    import dask.array as da

    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if hasattr(X, "to_dask_array"):  # a Dask DataFrame: its columns are the features
        X = X.to_dask_array()
    if not isinstance(X, da.Array):
        raise TypeError(f"linea.dask.predict takes a dask.array or a Dask DataFrame, got "
                        f"{type(X).__name__}; for NumPy arrays call the model itself")
    if X.ndim < 2:
        raise ValueError(f"X must have a row axis and feature axes, got shape {X.shape}")
    if any(np.isnan(size) for size in X.shape[1:]):
        raise ValueError(f"X's feature axes must have known sizes, got shape {X.shape}")
    if any(len(chunks) > 1 for chunks in X.chunks[1:]):
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    description, arrays = _describe(model)
    # The caller's model is untouched (scoring uses a rebuilt copy, in eval mode).
    # Checked here, before any block runs: the model raises its own ShapeError for X's features.
    local = _rebuild(description, arrays)
    probe = _score(local, np.zeros((1,) + tuple(int(s) for s in X.shape[1:]), X.dtype), None, proba)
    payload = {"description": description, "arrays": arrays, "token": _token(description, arrays)}
    weights = dask.delayed(payload, pure=True, name=f"linea-weights-{payload['token'][:16]}")
    out_tail = probe.shape[1:]
    drop_axis = list(range(2, X.ndim)) if len(out_tail) < X.ndim - 1 else []
    new_axis = list(range(X.ndim, 1 + len(out_tail))) if len(out_tail) > X.ndim - 1 else []
    chunks = (X.chunks[0],) + tuple((size,) for size in out_tail)
    return da.map_blocks(_score_block, X, weights, batch_size, proba, dtype=probe.dtype,
                         chunks=chunks, drop_axis=drop_axis or None, new_axis=new_axis or None,
                         meta=np.empty((0,) + out_tail, probe.dtype),
                         token="linea-predict")


def predict_proba(model, X, batch_size: int | None = None):
    """``predict`` with softmax over the last axis: class probabilities per row."""
    return predict(model, X, batch_size, proba=True)
