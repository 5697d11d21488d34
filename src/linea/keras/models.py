"""``linea.keras.models``: Sequential and loading Keras 3 model files."""
from linea.keras._saving import load_model
from linea.keras._sequential import Sequential

__all__ = ["Sequential", "load_model"]
