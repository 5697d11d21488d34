"""Seeded hostile files: generic byte mutations plus attacks aimed at each container."""
from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np


def byte_mutation(data: bytes, rng: np.random.Generator) -> bytes:
    """Truncate, flip, overwrite, delete, duplicate or append: one of these, seeded."""
    data = bytearray(data)
    kind = int(rng.integers(0, 7))
    if kind == 0:  # truncate
        return bytes(data[:int(rng.integers(0, len(data)))])
    if kind == 1:  # flip a few bits
        for position in rng.integers(0, len(data), int(rng.integers(1, 9))):
            data[position] ^= 1 << int(rng.integers(0, 8))
        return bytes(data)
    if kind == 2:  # overwrite a span with noise
        start = int(rng.integers(0, len(data)))
        span = int(rng.integers(1, 64))
        data[start:start + span] = rng.bytes(span)
        return bytes(data)
    if kind == 3:  # delete a span
        start = int(rng.integers(0, len(data)))
        del data[start:start + int(rng.integers(1, 64))]
        return bytes(data)
    if kind == 4:  # duplicate a span in place
        start = int(rng.integers(0, len(data)))
        chunk = data[start:start + int(rng.integers(1, 256))]
        return bytes(data[:start] + chunk + data[start:])
    if kind == 5:  # append junk
        return bytes(data) + rng.bytes(int(rng.integers(1, 512)))
    # write large little-endian integers at random places (sizes, offsets, lengths)
    for position in rng.integers(0, max(1, len(data) - 8), int(rng.integers(1, 4))):
        data[position:position + 8] = struct.pack("<Q", int(rng.choice([2 ** 31, 2 ** 40, 2 ** 63 - 1, 0])))
    return bytes(data)


# ---- safetensors ---------------------------------------------------------------------

def _safetensors_file(header: dict, payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def safetensors_attack(rng: np.random.Generator) -> bytes:
    kind = int(rng.integers(0, 9))
    payload = b"\0" * 64
    if kind == 0:  # a tensor declaring a huge shape
        return _safetensors_file({"w": {"dtype": "F32", "shape": [2 ** 20, 2 ** 20], "data_offsets": [0, 64]}}, payload)
    if kind == 1:  # offsets past the end
        return _safetensors_file({"w": {"dtype": "F32", "shape": [16], "data_offsets": [2 ** 40, 2 ** 40 + 64]}}, payload)
    if kind == 2:  # overlapping tensors
        return _safetensors_file({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                                  "b": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]}}, payload[:48])
    if kind == 3:  # a dtype that does not exist, or one that disagrees with the size
        return _safetensors_file({"w": {"dtype": rng.choice(["F33", "U1", "", "float32"]), "shape": [16],
                                        "data_offsets": [0, 64]}}, payload)
    if kind == 4:  # non-UTF-8 bytes in a name
        raw = b'{"\xff\xfeweight": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]}}'
        return struct.pack("<Q", len(raw)) + raw + payload
    if kind == 5:  # deeply nested JSON
        depth = int(rng.integers(1000, 200000))
        raw = (b"[" * depth) + (b"]" * depth)
        return struct.pack("<Q", len(raw)) + raw
    if kind == 6:  # a header length past the end
        return struct.pack("<Q", int(rng.integers(100, 2 ** 62))) + b"{}"
    if kind == 7:  # nested JSON in linea's own metadata tree
        depth = int(rng.integers(1000, 100000))
        tree = '{"list": [' * depth + "]}" * depth
        return _safetensors_file({"__metadata__": {"linea.tree": tree}}, b"")
    return _safetensors_file({"w": {"dtype": "F32", "shape": [3.5], "data_offsets": [0, 14]}}, payload[:14])


# ---- zip containers (.keras, .pt) ------------------------------------------------------

def _zip(members: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def keras_attack(valid: bytes, rng: np.random.Generator) -> bytes:
    members = {i.filename: zipfile.ZipFile(io.BytesIO(valid)).read(i.filename)
               for i in zipfile.ZipFile(io.BytesIO(valid)).infolist()}
    config = json.loads(members["config.json"])
    kind = int(rng.integers(0, 8))
    if kind == 0:  # a zip bomb in place of the weights
        members["model.weights.h5"] = b"\0" * (64 * 1024 * 1024)
        return _zip(members)
    if kind == 1:  # a config declaring an enormous layer
        config["config"]["layers"][1]["config"]["units"] = int(rng.choice([2 ** 30, 10 ** 9, 2 ** 31 - 1]))
        members["config.json"] = json.dumps(config)
        return _zip(members)
    if kind == 2:  # deeply nested config
        depth = int(rng.integers(1000, 100000))
        members["config.json"] = "[" * depth + "]" * depth
        return _zip(members)
    if kind == 3:  # unknown layer class
        config["config"]["layers"][1]["class_name"] = "Lambda"
        members["config.json"] = json.dumps(config)
        return _zip(members)
    if kind == 4:  # a member missing
        members.pop(rng.choice(["config.json", "model.weights.h5"]))
        return _zip(members)
    if kind == 5:  # weights of the wrong shape
        config["config"]["layers"][1]["config"]["units"] = 5
        members["config.json"] = json.dumps(config)
        return _zip(members)
    if kind == 6:  # a config that is not an object
        members["config.json"] = json.dumps(rng.choice(["x", "[]", "null", "1"]).item())
        return _zip(members)
    return byte_mutation(valid, rng)


def torch_attack(valid: bytes, rng: np.random.Generator, marker: str) -> bytes:
    kind = int(rng.integers(0, 5))
    if kind == 0:  # a pickle that would run code if unpickled without restriction
        payload = (b"\x80\x02cposix\nsystem\nq\x00X" + struct.pack("<I", len(f"touch {marker}")) +
                   f"touch {marker}".encode() + b"q\x01\x85q\x02Rq\x03.")
        return _zip({"archive/data.pkl": payload, "archive/version": b"3\n"}, zipfile.ZIP_STORED)
    if kind == 1:  # a compressed member (torch.save never compresses)
        return _zip({"archive/data.pkl": b"\0" * 100000, "archive/version": b"3\n"})
    if kind == 2:  # a legacy (non-zip) pickle
        return b"\x80\x02}q\x00." + rng.bytes(int(rng.integers(0, 64)))
    if kind == 3:  # a valid pickle of the wrong type
        return _zip({"archive/data.pkl": b"\x80\x02K\x05.", "archive/version": b"3\n"}, zipfile.ZIP_STORED)
    return byte_mutation(valid, rng)


# ---- ONNX ---------------------------------------------------------------------------------

def onnx_attack(valid: bytes, rng: np.random.Generator) -> bytes:
    import onnx

    model = onnx.load_model_from_string(valid)
    kind = int(rng.integers(0, 6))
    if kind == 0:  # an initializer declaring huge dims over small data
        tensor = model.graph.initializer[0]
        del tensor.dims[:]
        tensor.dims.extend([2 ** 20, 2 ** 20])
    elif kind == 1:  # external data, which would read other files
        tensor = model.graph.initializer[0]
        tensor.data_location = onnx.TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "/etc/passwd"
    elif kind == 2:  # an unsupported op in the chain
        model.graph.node[1].op_type = str(rng.choice(["Loop", "If", "Conv", "Custom"]))
    elif kind == 3:  # a broken chain
        model.graph.node[1].input[0] = "nowhere"
    elif kind == 4:  # a wrong element type
        model.graph.initializer[0].data_type = onnx.TensorProto.INT8
    else:
        return byte_mutation(valid, rng)
    return model.SerializeToString()
