"""Keras-flavour layers with Keras 3's names, defaults and weight layouts."""
from linea.keras.layers._core import (Activation, Dropout, Flatten, Input, InputLayer,
                                      LayerNormalization, LeakyReLU)
from linea.keras.layers._batch_normalization import BatchNormalization
from linea.keras.layers._conv import Conv2D
from linea.keras.layers._dense import Dense
from linea.keras.layers._pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from linea.keras.layers._layer import Layer, Variable

__all__ = ["Layer", "Variable", "Dense", "Activation", "LeakyReLU", "Dropout", "Flatten",
           "LayerNormalization", "Input", "InputLayer", "BatchNormalization", "Conv2D", "MaxPooling2D",
           "AveragePooling2D", "GlobalAveragePooling2D"]
