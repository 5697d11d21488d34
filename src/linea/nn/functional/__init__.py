"""Pure functions: each op's forward next to its gradient rule."""
from linea.nn.functional._linear import linear

__all__ = ["linear"]
