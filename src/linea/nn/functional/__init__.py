"""Pure functions: each op's forward next to its gradient rule."""
from linea.nn.functional._activation import (gelu, leaky_relu, log_softmax, relu, sigmoid, silu,
                                             softmax, softplus, tanh)
from linea.nn.functional._conv import conv2d
from linea.nn.functional._linear import dense, linear
from linea.nn.functional._loss import (binary_cross_entropy_with_logits, cross_entropy, l1_loss,
                                       mse_loss, nll_loss)
from linea.nn.functional._normalization import dropout, layer_norm

__all__ = ["linear", "dense", "conv2d", "relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid",
           "softplus", "softmax", "log_softmax", "layer_norm", "dropout", "mse_loss", "l1_loss",
           "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits"]
