"""Version counters: in-place writes to memory a recorded op saved for backward are caught.

PyTorch gives every tensor a version counter, shared with its views, that every
in-place op bumps; a tensor saved for backward remembers its version, and
``backward()`` refuses if it changed. linea keeps the same contract on the arrays
themselves, because views of one NumPy buffer (``detach()``, ``.data``, slices,
reshapes) all lead to the array that owns the memory:

- every in-place write (``add_``, ``x[i] = v``, ``copy_``, ``fill_``, optimizer
  steps, ``load_state_dict``, ``.data = ...``) calls ``mark_written(array)``, which
  stamps the owning array with a fresh tick from one global clock and counts its version;
- a recorded op's node keeps the tick of the latest write (``_LATEST``, read by ``Node``);
- ``backward()`` checks a node's saved arrays only when some write happened after the
  node was recorded (one integer comparison otherwise), and raises if one of its
  saved arrays was written since.

A stamp is keyed by ``id`` of the owning array and holds a weak reference to it, so
a stamp is never mistaken for that of a later array at the same address.
"""
from __future__ import annotations

import itertools
import weakref

from linea.backend import owner

__all__ = ["mark_written", "version_of", "check_saved", "written_since"]

_CLOCK = itertools.count(1)  # next() is atomic in CPython: threads never share a tick
#: id(owning array) -> [tick of the last write, version, weak reference (None: trust the id)]
_STAMPS: dict = {}
#: The tick of the latest write anywhere: nodes recorded after it need no check.
_LATEST = [0]
_PRUNE_AT = [4096]


def _reference(array):
    try:
        return weakref.ref(array)
    except TypeError:  # an array type without weak references: trust the id alone
        return None


def _alive(stamp, array) -> bool:
    reference = stamp[2]
    return reference is None or reference() is array


def mark_written(array) -> None:
    """Record an in-place write to ``array`` (and so to every view of its memory)."""
    base = owner(array)
    key = id(base)
    now = next(_CLOCK)
    stamp = _STAMPS.get(key)
    if stamp is not None and _alive(stamp, base):
        stamp[0] = now
        stamp[1] += 1
    else:
        _STAMPS[key] = [now, 1, _reference(base)]
        if len(_STAMPS) > _PRUNE_AT[0]:
            _prune()
    _LATEST[0] = now


def _prune() -> None:
    for key, stamp in list(_STAMPS.items()):
        if stamp[2] is not None and stamp[2]() is None:
            del _STAMPS[key]
    _PRUNE_AT[0] = max(4096, 2 * len(_STAMPS))


def version_of(array) -> int:
    """How many in-place writes the memory of ``array`` has had (PyTorch's ``_version``)."""
    base = owner(array)
    stamp = _STAMPS.get(id(base))
    return stamp[1] if stamp is not None and _alive(stamp, base) else 0


def written_since(array, since: int) -> bool:
    """Whether the memory of ``array`` was written after tick ``since``."""
    base = owner(array)
    stamp = _STAMPS.get(id(base))
    return stamp is not None and stamp[0] > since and _alive(stamp, base)


def check_saved(node) -> None:
    """Raise if an array ``node`` saved for backward was written in place after it was recorded."""
    if node.tick >= _LATEST[0]:
        return
    for index, array in enumerate(node.saved):
        if written_since(array, node.tick):
            shape = list(array.shape)
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{array.dtype}{shape}] (saved tensor {index} of "
                f"{node.name}Backward) was written after the forward pass recorded it, is at "
                f"version {version_of(array)}. Make the in-place change after backward(), or "
                f"use the out-of-place operation (x = x + 1 instead of x.add_(1), x.clone() "
                f"before writing into it)."
            )
