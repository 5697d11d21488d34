"""Neural-network layers with PyTorch's names, defaults and state-dict keys."""
from linea.nn import functional, init, utils
from linea.nn.modules import (Identity, IncompatibleKeys, LazyLinear, Linear, Module,
                              ModuleList, Parameter, Sequential, UninitializedParameter)

__all__ = ["functional", "init", "utils", "Module", "Parameter", "UninitializedParameter",
           "IncompatibleKeys", "Linear", "LazyLinear", "Identity", "Sequential", "ModuleList"]
