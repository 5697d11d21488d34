"""Looking up Keras objects (initializers, regularizers, constraints) by name or config."""
from __future__ import annotations


def lookup(identifier, kind: str, base: type, names: dict, classes: dict):
    """An instance from a snake_case name, a class name, a Keras config dict, a class or itself.

    ``None`` stays None; other callables are returned as they are.
    """
    if identifier is None or isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        cls = names.get(identifier) or classes.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown {kind} {identifier!r}; expected one of {sorted(names)}")
        return cls()
    if isinstance(identifier, dict):
        cls = classes.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown {kind} config {identifier!r}; expected a class_name "
                             f"among {sorted(classes)}")
        return cls.from_config(identifier.get("config") or {})
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"cannot interpret {identifier!r} as a {kind}")


def serialize(instance, module: str):
    """Keras's config form: {"module", "class_name", "config", "registered_name"}."""
    if instance is None:
        return None
    return {"module": module, "class_name": type(instance).__name__,
            "config": instance.get_config(), "registered_name": None}
