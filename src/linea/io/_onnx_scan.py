"""An ONNX file's initializer bytes located without parsing them, so weights are read once.

Protobuf's parser holds the whole file in memory beside the message it builds (3× the
file by the time the weights are arrays). This module walks the protobuf wire format
of ``ModelProto`` → ``graph`` (field 7) → ``initializer`` (field 5) → ``raw_data``
(field 9), notes where each initializer's raw bytes lie in the file, and returns a copy
of the file with those bytes taken out (the lengths of the enclosing messages rewritten).
That copy — the graph, names, shapes — is what protobuf parses; the weights are then
read from the file straight into their arrays.

Anything unusual (the graph given twice, group wire types, lengths past the end) makes
``strip_initializer_data`` return None, and the reader parses the whole file instead.
"""
from __future__ import annotations

import os

from linea._files import read_at

__all__ = ["strip_initializer_data"]

_GRAPH, _INITIALIZER, _RAW_DATA = 7, 5, 9
_CHUNK = 64  # bytes read to decode one tag and length


class _Unusual(Exception):
    pass


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise _Unusual("a varint runs past its field")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(descriptor: int, start: int, end: int):
    """(field number, wire type, field start, value start, value end) for each field in [start, end)."""
    position = start
    while position < end:
        head = bytes(read_at(descriptor, position, min(_CHUNK, end - position)))
        tag, offset = _varint(head, 0)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, after = _varint(head, offset)
            value_start, value_end = position + offset, position + after
        elif wire == 1:
            value_start, value_end = position + offset, position + offset + 8
        elif wire == 5:
            value_start, value_end = position + offset, position + offset + 4
        elif wire == 2:
            length, after = _varint(head, offset)
            value_start, value_end = position + after, position + after + length
        else:
            raise _Unusual(f"wire type {wire}")
        if value_end > end or number == 0:
            raise _Unusual("a field runs past its message")
        yield number, wire, position, value_start, value_end
        position = value_end


def _field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _stripped_tensor(descriptor, start, end, spans: list) -> bytes:
    """A TensorProto's bytes without raw_data; its raw bytes' (offset, length) appended to spans."""
    parts, raw = [], None
    for number, wire, field_start, value_start, value_end in _fields(descriptor, start, end):
        if number == _RAW_DATA and wire == 2:
            if raw is not None:
                raise _Unusual("raw_data given twice")
            raw = (value_start, value_end - value_start)
        else:
            parts.append(bytes(read_at(descriptor, field_start, value_end - field_start)))
    spans.append(raw)
    return b"".join(parts)


def _stripped_graph(descriptor, start, end, spans: list) -> bytes:
    parts = []
    for number, wire, field_start, value_start, value_end in _fields(descriptor, start, end):
        if number == _INITIALIZER and wire == 2:
            parts.append(_field(_INITIALIZER, _stripped_tensor(descriptor, value_start, value_end, spans)))
        else:
            parts.append(bytes(read_at(descriptor, field_start, value_end - field_start)))
    return b"".join(parts)


def strip_initializer_data(descriptor: int) -> tuple[bytes, list] | None:
    """(the model without its initializers' raw bytes, [(offset, length) or None per initializer]).

    None where the file is not laid out as ONNX writers lay it out; the caller then parses
    the whole file.
    """
    size = os.fstat(descriptor).st_size
    parts, spans, graphs = [], [], 0
    try:
        for number, wire, field_start, value_start, value_end in _fields(descriptor, 0, size):
            if number == _GRAPH and wire == 2:
                graphs += 1
                parts.append(_field(_GRAPH, _stripped_graph(descriptor, value_start, value_end, spans)))
            else:
                parts.append(bytes(read_at(descriptor, field_start, value_end - field_start)))
    except (_Unusual, ValueError, OverflowError):
        return None
    if graphs != 1:
        return None
    return b"".join(parts), spans
