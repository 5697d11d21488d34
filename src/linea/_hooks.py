"""Removable hook handles, as ``torch.utils.hooks.RemovableHandle``."""
from __future__ import annotations

import itertools

__all__ = ["RemovableHandle", "add_hook"]

_IDS = itertools.count()


class RemovableHandle:
    """What ``register_*_hook`` returns: ``handle.remove()`` (or a ``with`` block) unregisters."""

    def __init__(self, registry: dict, key: int) -> None:
        self._registry, self.id = registry, key

    def remove(self) -> None:
        self._registry.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


def add_hook(registry: dict, entry, prepend: bool = False) -> RemovableHandle:
    """Store ``entry`` in the ordered ``registry`` (first if ``prepend``); its handle."""
    key = next(_IDS)
    registry[key] = entry
    if prepend:
        registry_items = list(registry.items())
        registry.clear()
        registry[key] = entry
        registry.update((k, v) for k, v in registry_items if k != key)
    return RemovableHandle(registry, key)
