"""Zip archives read with bounds: each member limited before a byte is inflated, by what the
caller says it can need and by the compressed bytes the archive really holds for it (from its
local header to the next header or the central directory), not the sizes it declares; then
inflated in pieces with that cap. ``.keras`` files are such archives.
"""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib

from linea._errors import FormatError
from linea._files import read_regular

__all__ = ["read_keras_archive", "keras_archive_bytes"]

_MAX_ZIP_MEMBER = 2 * 1024 ** 3
_MAX_JSON = 64 * 1024 ** 2
_MAX_RATIO = 20


def read_keras_archive(filepath, weights_budget) -> tuple[dict, bytes]:
    """(config dict, weights.h5 bytes) of a ``.keras`` zip, each member bounded before inflating.

    ``config.json`` is read first. ``model.weights.h5`` may then hold no more than
    ``weights_budget(config)`` bytes (what the config's layers can need: the Keras flavour's
    ``config_weights_budget``), nor more than ``_MAX_RATIO`` times the compressed bytes
    the archive really holds for it; a member claiming more is refused before a byte is
    inflated, and inflation streams with that cap, so a zip bomb costs neither time nor memory.
    """
    source = os.fspath(filepath)
    data = read_regular(source)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as error:
        raise FormatError(f"{source}: not a .keras zip archive: {error}") from None
    for needed in ("config.json", "model.weights.h5"):
        if needed not in members:
            raise FormatError(f"{source}: the archive has no {needed}: not a Keras 3 model file")
    try:
        config = json.loads(_member(archive, members["config.json"], _MAX_JSON, data, source)
                            .decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        raise FormatError(f"{source}: config.json is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise FormatError(f"{source}: config.json is not a JSON object")
    budget = weights_budget(config)
    weights = _member(archive, members["model.weights.h5"], min(budget, _MAX_ZIP_MEMBER), data,
                      source)
    return config, weights


def keras_archive_bytes(metadata: dict, config: dict, weights: bytes) -> bytes:
    """The bytes of a ``.keras`` archive: metadata.json, config.json, model.weights.h5, stored."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights)
    return buffer.getvalue()


def _stored_span(archive, info, data: bytes, source: str) -> int:
    """The compressed bytes the archive really holds for member ``info``: from its data's
    start to the next member's header (or the central directory), whatever it declares."""
    header = data[info.header_offset:info.header_offset + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise FormatError(f"{source}: member {info.filename}'s local header is missing or damaged")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    following = [other.header_offset for other in archive.infolist()
                 if other.header_offset > info.header_offset]
    end = min(following + [getattr(archive, "start_dir", len(data)), len(data)])
    return max(0, end - start)


def _member(archive, info, limit: int, data: bytes, source: str) -> bytes:
    """One member's bytes, refused before inflating if it claims more than ``limit`` or than
    ``_MAX_RATIO`` × the compressed bytes really there, then inflated in pieces with that cap."""
    held = _stored_span(archive, info, data, source)
    if info.compress_size > held:
        raise FormatError(f"{source}: member {info.filename} declares {info.compress_size} "
                          f"compressed bytes, but the archive holds at most {held} for it: "
                          "a damaged or forged archive")
    # Keras stores members uncompressed; float weights deflate by ~1.1×. A member
    # claiming more than _MAX_RATIO× what it really holds is a possible zip bomb.
    if info.file_size > 1024 ** 2 and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
        raise FormatError(f"{source}: member {info.filename} claims {info.file_size} bytes from "
                          f"{info.compress_size} compressed: refusing a possible zip bomb")
    if info.file_size > limit:
        raise FormatError(f"{source}: member {info.filename} claims {info.file_size} bytes, more "
                          f"than the {limit} the model's config can need: refusing a possible "
                          "zip bomb")
    pieces, total = [], 0
    try:
        with archive.open(info) as stream:
            while True:
                piece = stream.read(1024 ** 2)
                if not piece:
                    break
                total += len(piece)
                if total > info.file_size:  # no more than declared, which is within limit
                    raise FormatError(f"{source}: member {info.filename} inflates past the "
                                      f"{info.file_size} bytes it declares: a damaged archive")
                pieces.append(piece)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, RuntimeError, NotImplementedError,
            zlib.error) as error:  # RuntimeError: an encrypted member
        raise FormatError(f"{source}: corrupt .keras archive: {error}") from None
    return b"".join(pieces)
