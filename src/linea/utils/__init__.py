"""Training utilities (``linea.utils.data``)."""
from linea.utils import data

__all__ = ["data"]
