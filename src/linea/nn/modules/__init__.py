"""Layers and containers."""
from linea.nn.modules._activation import (CELU, ELU, GELU, SELU, Exp, Hardshrink, Hardsigmoid,
                                          Hardswish, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax,
                                          Mish, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softplus,
                                          Softshrink, Softsign, Tanh, Tanhshrink)
from linea.nn.modules._batchnorm import BatchNorm1d, BatchNorm2d
from linea.nn.modules._container import ModuleDict, ModuleList, ParameterList, Sequential
from linea.nn.modules._conv import Conv2d
from linea.nn.modules._linear import Identity, LazyLinear, Linear
from linea.nn.modules._loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from linea.nn.modules._module import IncompatibleKeys, Module
from linea.nn.modules._normalization import Dropout, Flatten, LayerNorm
from linea.nn.modules._pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from linea.nn.modules._parameter import Parameter, UninitializedParameter

__all__ = ["Module", "Parameter", "UninitializedParameter", "IncompatibleKeys", "Linear",
           "LazyLinear", "Identity", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ReLU", "LeakyReLU", "GELU",
           "Tanh", "Sigmoid", "SiLU", "Softplus", "Softmax", "LogSoftmax", "LayerNorm",
           "Dropout", "Flatten", "Conv2d", "BatchNorm1d", "BatchNorm2d", "MaxPool2d",
           "AvgPool2d", "AdaptiveAvgPool2d", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss",
           "BCEWithLogitsLoss", "ELU", "SELU", "CELU", "ReLU6", "Hardtanh", "Hardsigmoid",
           "Hardswish", "Softsign", "LogSigmoid", "Mish", "Tanhshrink", "Softshrink", "Hardshrink",
           "Exp"]
