"""safetensors files (through the ``safetensors`` package), single or HF-style sharded."""
from __future__ import annotations

import json
import os
import re
from collections import OrderedDict

import numpy as np

from linea._errors import FormatError
from linea._files import atomic_write
from linea.formats import ORDER_KEY, read_safetensors, safetensors_parts
from linea._files import read_regular
from linea.io._layout import StoredState, natural_key

_MAX_INDEX = 16 * 1024 * 1024


def read(path) -> "OrderedDict[str, np.ndarray]":
    return read_stored(path).tensors


def read_stored(path, shapes_only: bool = False) -> StoredState:
    """The tensors, ordered as recorded where a linea writer recorded the order (else not trusted)."""
    source = os.fspath(path)
    if source.endswith(".index.json"):
        return StoredState(_read_sharded(source, shapes_only))
    arrays, metadata = read_safetensors(source, shapes_only)
    if ORDER_KEY in metadata:
        return StoredState(OrderedDict(arrays), ordered=True)
    # safetensors keeps names sorted as text (0, 1, 10, 11, 2, …): layers go in natural
    # order of their paths, each layer's tensors in the file's order.
    layers = sorted(arrays, key=lambda name: natural_key(re.sub(r"[./][^./]*$", "", name)))
    return StoredState(OrderedDict((name, arrays[name]) for name in layers), ordered=False)


def _read_sharded(source: str, shapes_only: bool = False) -> "OrderedDict[str, np.ndarray]":
    try:
        index = json.loads(read_regular(source, _MAX_INDEX).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise FormatError(f"{source}: the shard index is not valid JSON: {error}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise FormatError(f"{source}: a shard index needs a 'weight_map' of tensor names to files")
    folder = os.path.dirname(os.path.abspath(source))
    shards = {}
    for shard in dict.fromkeys(weight_map.values()):
        if os.path.basename(shard) != shard or shard in (".", "..") or not shard.endswith(".safetensors"):
            raise FormatError(f"{source}: shard {shard!r} must be a .safetensors file name in the "
                              "index's own folder")
        shards[shard] = read_stored(os.path.join(folder, shard), shapes_only).tensors
    result = OrderedDict()
    for name, shard in weight_map.items():
        if name not in shards[shard]:
            raise FormatError(f"{source}: tensor {name!r} is not in its shard {shard}")
        result[name] = shards[shard][name]
    return result


def write(state: dict, path) -> None:
    source = os.fspath(path)
    if source.endswith(".index.json"):
        raise ValueError("writing sharded safetensors is not supported; give a .safetensors path")
    arrays = {name: np.asarray(array) for name, array in state.items()}
    metadata = {"format": "pt", ORDER_KEY: json.dumps(list(arrays))}
    atomic_write(source, safetensors_parts(arrays, metadata))  # header, then tensor by tensor
