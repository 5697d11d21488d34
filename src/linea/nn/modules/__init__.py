"""Layers and containers."""
from linea.nn.modules._container import ModuleList, Sequential
from linea.nn.modules._linear import Identity, LazyLinear, Linear
from linea.nn.modules._module import IncompatibleKeys, Module
from linea.nn.modules._parameter import Parameter, UninitializedParameter

__all__ = ["Module", "Parameter", "UninitializedParameter", "IncompatibleKeys", "Linear",
           "LazyLinear", "Identity", "Sequential", "ModuleList"]
