"""Mixed precision: ``linea.amp.autocast`` (also ``linea.autocast``) and ``GradScaler``.

See ``linea._autocast`` for the op table and its PyTorch CPU semantics.
"""
from linea._autocast import FLOAT32, LOW_PRECISION, autocast
from linea.amp._grad_scaler import GradScaler

__all__ = ["autocast", "GradScaler", "LOW_PRECISION", "FLOAT32"]
