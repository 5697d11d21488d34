"""Neural-network layers with PyTorch's names, defaults and state-dict keys."""
from linea.nn import functional, init, utils
from linea.nn.modules import *  # noqa: F403 - the public layers, listed in modules.__all__
from linea.nn.modules import __all__ as _modules_all

__all__ = ["functional", "init", "utils"] + list(_modules_all)
