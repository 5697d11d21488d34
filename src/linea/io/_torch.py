"""PyTorch ``.pt``/``.pth`` state dicts, read only through ``torch.load(weights_only=True)``.

That restricted unpickler is the one place linea lets a pickle be opened; before
it sees the bytes, the zip container is checked against the file's size, and
every failure becomes a ``FormatError``.
"""
from __future__ import annotations

import io
import os
import zipfile
from collections import OrderedDict

import numpy as np

from linea._errors import FormatError
from linea._files import atomic_write, open_regular

_MAX_MEMBERS = 100_000


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("reading or writing PyTorch .pt files needs PyTorch: pip install torch "
                          "(a CPU build is enough)") from None
    return torch


def _check_container(stream, size: int, source: str) -> None:
    """The zip directory of a torch.save file, checked against the file's size (only it is read)."""
    if bytes(stream.read(2)) != b"PK":
        raise FormatError(f"{source}: not a PyTorch zip checkpoint (files from torch.save since "
                          "PyTorch 1.6); linea does not read legacy or other pickle files")
    stream.seek(0)
    try:
        members = zipfile.ZipFile(stream).infolist()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as error:
        raise FormatError(f"{source}: corrupt PyTorch zip checkpoint: {error}") from None
    if len(members) > _MAX_MEMBERS:
        raise FormatError(f"{source}: {len(members)} zip members is more than a checkpoint holds")
    total = 0
    for member in members:
        total += member.file_size
        # torch.save stores members uncompressed, so no member can outgrow the file.
        if member.file_size > size or member.compress_type != zipfile.ZIP_STORED:
            raise FormatError(f"{source}: zip member {member.filename!r} claims {member.file_size} "
                              "bytes (or is compressed), which a torch.save file never does")
    if total > size:
        raise FormatError(f"{source}: the zip members claim {total} bytes, more than the file's "
                          f"{size}")
    stream.seek(0)


def _to_numpy(tensor, name: str, source: str):
    """The NumPy view of a loaded tensor: no copy, and never more bytes than its storage holds."""
    torch = _torch()
    if not isinstance(tensor, torch.Tensor):
        raise FormatError(f"{source}: entry {name!r} is a {type(tensor).__name__}, not a tensor")
    if tensor.device.type != "cpu":
        raise FormatError(f"{source}: tensor {name!r} is on the {tensor.device.type!r} device "
                          "(a meta tensor holds no data); save real CPU tensors")
    tensor = tensor.detach()
    stored = tensor.untyped_storage().nbytes()
    claimed = tensor.numel() * tensor.element_size()
    if claimed > stored:
        raise FormatError(
            f"{source}: tensor {name!r} of shape {list(tensor.shape)} and strides "
            f"{list(tensor.stride())} views {stored} stored bytes as {claimed}: linea materialises "
            "a tensor at most at its storage's size; save tensor.contiguous() instead")
    if tensor.dtype == torch.bfloat16:
        from linea import bfloat16

        return tensor.contiguous().view(torch.int16).numpy().view(bfloat16.numpy)
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError) as error:
        raise FormatError(f"{source}: tensor {name!r} of dtype {tensor.dtype} cannot be read: "
                          f"{error}") from None


def read(path, mapped: bool = False) -> "OrderedDict[str, np.ndarray]":
    """The state dict of a torch.save file, as NumPy views of the tensors torch loaded.

    The file is opened once as a regular file; its zip directory is checked against
    its size, then torch's restricted unpickler reads it from that descriptor (or, with
    ``mapped``, maps it: the tensors' bytes are read only where they are touched).
    """
    source = os.fspath(path)
    torch = _torch()
    with os.fdopen(open_regular(source), "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        _check_container(stream, size, source)
        try:
            loaded = torch.load(source, mmap=True, weights_only=True) if mapped else \
                torch.load(stream, map_location="cpu", weights_only=True)
        except Exception as error:  # the restricted unpickler's and zip reader's errors
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise FormatError(f"{source}: not a readable PyTorch weights file: {message[:300]}") from None
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
            break
    if not isinstance(loaded, dict):
        raise FormatError(f"{source}: holds a {type(loaded).__name__}, not a state dict of tensors")
    result = OrderedDict()
    for name, tensor in loaded.items():
        if not isinstance(name, str):
            raise FormatError(f"{source}: a state-dict key is a {type(name).__name__}, not a string")
        result[name] = _to_numpy(tensor, name, source)
    return result


def _to_torch(torch, array):
    """A torch tensor holding a copy of ``array``; bfloat16 travels as its 16-bit patterns."""
    array = np.array(array, copy=True)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def write(state: dict, path) -> None:
    torch = _torch()
    tensors = OrderedDict((name, _to_torch(torch, array)) for name, array in state.items())
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    atomic_write(os.fspath(path), buffer.getvalue())
