"""Mixed precision: ``linea.amp.autocast`` (also ``linea.autocast``).

See ``linea._autocast`` for the op table and its PyTorch CPU semantics.
"""
from linea._autocast import FLOAT32, LOW_PRECISION, autocast

__all__ = ["autocast", "LOW_PRECISION", "FLOAT32"]
