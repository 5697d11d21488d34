"""Keras's backend helpers that matter to linea: floatx, epsilon, clear_session."""
from linea.keras._naming import clear_session
from linea.keras.config import epsilon, floatx, set_epsilon, set_floatx

__all__ = ["clear_session", "floatx", "set_floatx", "epsilon", "set_epsilon"]
