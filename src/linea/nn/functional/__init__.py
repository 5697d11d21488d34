"""Pure functions: each op's forward next to its gradient rule."""
from linea.nn.functional._activation import (celu, elu, gelu, hardshrink, hardsigmoid, hardswish,
                                             hardtanh, leaky_relu, log_softmax, logsigmoid, mish,
                                             relu, relu6, selu, sigmoid, silu, softmax, softplus,
                                             softshrink, softsign, tanh, tanhshrink)
from linea.nn.functional._conv import conv2d, conv2d_padding
from linea.nn.functional._encoding import one_hot
from linea.nn.functional._linear import dense, linear
from linea.nn.functional._loss import (binary_cross_entropy_with_logits, cross_entropy, l1_loss,
                                       mse_loss, nll_loss)
from linea.nn.functional._normalization import batch_norm, dropout, layer_norm
from linea.nn.functional._pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d

__all__ = ["linear", "dense", "conv2d", "relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid",
           "softplus", "softmax", "log_softmax", "layer_norm", "batch_norm", "dropout",
           "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "one_hot", "mse_loss", "l1_loss",
           "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "elu", "selu", "celu",
           "relu6", "hardtanh", "hardsigmoid", "hardswish", "softsign", "logsigmoid", "mish",
           "tanhshrink", "softshrink", "hardshrink", "conv2d_padding"]
