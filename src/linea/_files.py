"""Files as a careful tool reads and writes them.

Reading: only regular files are opened. The path is checked with ``stat`` before
``open`` (a device, FIFO, socket or directory is a FormatError naming what it is),
opened with ``O_NONBLOCK`` so a FIFO that appears in between cannot hang the open,
and checked again on the open descriptor; reads never go past the size the file had
when it was opened, so ``/dev/zero`` or a file that grows cannot exhaust memory.

Writing (``atomic_write``): the bytes go to a temporary file beside the target, are
flushed to disk, renamed over the target, and the folder is flushed so the rename
itself survives a crash. A symlink is written through to its target (the link stays);
the target keeps its permission bits (a new file gets 0666 minus the umask, as
``open`` would give it). Each temporary file is named after its target and its
writer's process, so a save interrupted by ``kill -9`` leaves at most one behind per
target and process, and the next save of that target removes those whose process is gone.
"""
from __future__ import annotations

import os
import stat
import threading

from linea._errors import FormatError

__all__ = ["open_regular", "read_regular", "read_at", "atomic_write"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(source: str, mode: int) -> FormatError:
    return FormatError(f"{source}: is {_kind(mode)}, not a regular file; linea reads model files "
                       "only from regular files (copy the data to a file first)")


def open_regular(path) -> int:
    """A read-only descriptor of the regular file ``path``; FormatError for anything else."""
    source = os.fspath(path)
    try:
        before = os.stat(source)
    except OSError as error:
        raise FormatError(f"{source}: cannot read the file: {error.strerror or error}") from None
    if not stat.S_ISREG(before.st_mode):
        raise _not_regular(source, before.st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | \
        getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(source, flags)
    except OSError as error:
        raise FormatError(f"{source}: cannot read the file: {error.strerror or error}") from None
    after = os.fstat(descriptor)
    if not stat.S_ISREG(after.st_mode):  # swapped for something else between stat and open
        os.close(descriptor)
        raise _not_regular(source, after.st_mode)
    if hasattr(os, "set_blocking"):
        os.set_blocking(descriptor, True)
    return descriptor


def read_at(descriptor: int, offset: int, size: int, into=None, source: str = "") -> bytes | None:
    """``size`` bytes at ``offset`` (into the writable buffer ``into`` if given); FormatError if short."""
    view = memoryview(into).cast("B") if into is not None else memoryview(bytearray(size))
    done = 0
    while done < size:
        count = os.preadv(descriptor, [view[done:]], offset + done) if hasattr(os, "preadv") else \
            _pread_into(descriptor, view[done:], offset + done)
        if count == 0:
            raise FormatError(f"{source}: the file ended after {offset + done} bytes; "
                              f"{offset + size} were expected (truncated?)")
        done += count
    return None if into is not None else view.obj


def _pread_into(descriptor: int, view, offset: int) -> int:
    chunk = os.pread(descriptor, len(view), offset)
    view[:len(chunk)] = chunk
    return len(chunk)


def read_regular(path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``: at most its size at open, and at most ``limit``."""
    source = os.fspath(path)
    with os.fdopen(open_regular(source), "rb", buffering=0) as stream:
        size = os.fstat(stream.fileno()).st_size
        if limit is not None and size > limit:
            raise FormatError(f"{source}: {size} bytes is more than the {limit} this reader accepts")
        data = stream.read(size)  # one buffer of the file's size, never more
    if len(data) != size:
        raise FormatError(f"{source}: the file shrank while it was read ({len(data)} of {size} bytes)")
    return data


# ---- writing ---------------------------------------------------------------------------------

_TEMPORARY_SUFFIX = ".linea-tmp"


def _temporary_name(target: str) -> str:
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}.{os.getpid()}-{threading.get_ident()}{_TEMPORARY_SUFFIX}")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its file alone
    return True


def _remove_stale_temporaries(target: str) -> None:
    """Delete temporary files of ``target`` left by saves whose process has died."""
    folder, name = os.path.split(target)
    prefix = f".{name}."
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(_TEMPORARY_SUFFIX)):
            continue
        writer = entry[len(prefix):-len(_TEMPORARY_SUFFIX)].split("-", 1)[0]
        if writer.isdigit() and not _process_alive(int(writer)):
            try:
                os.unlink(os.path.join(folder, entry))
            except OSError:
                pass


def _existing_mode(target: str) -> int | None:
    """The permission bits of ``target``, or None for a file not yet there."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return None


def _fsync_folder(folder: str) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # platforms without directory descriptors (Windows)
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write(path, data) -> None:
    """Write ``data`` so that ``path`` is either the old file or the whole new one, never a part.

    ``data`` is bytes, or an iterable of byte buffers written in turn (a header, then each
    tensor's memory), so a large file is written without first being assembled in memory;
    an error while they are produced leaves the old file as it was.
    """
    target = os.path.realpath(os.fspath(path))  # through a symlink to the file it names
    if os.path.isdir(target):
        raise IsADirectoryError(f"{os.fspath(path)} is a directory; give a file name to write to")
    folder = os.path.dirname(target)
    _remove_stale_temporaries(target)
    temporary = _temporary_name(target)
    mode = _existing_mode(target)
    try:
        # A new file: 0666, which the kernel narrows by the umask, as open() would. An existing
        # one: private while written, then given the target's own bits.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC |
                             getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0),
                             0o666 if mode is None else 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            for part in (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data:
                stream.write(part)
            stream.flush()
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_folder(folder)
