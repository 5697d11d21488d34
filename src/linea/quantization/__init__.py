"""int8 dynamic quantization of Linear layers, for inference.

``quantize_dynamic(model)`` returns a copy whose Linear layers are ``QuantizedLinear``:
int8 weights with a float32 scale per output channel, each input row quantized at
run time, products summed exactly in int32 by a C kernel (AVX-512 VNNI, AVX-VNNI or
AVX2, chosen at run time) or the exact NumPy fallback. ``kernel_info()`` says which
path runs; ``LINEA_INT8_KERNEL`` forces one. The scheme is Keras 3's ``int8``::

    W ≈ wq / w_scale[:, None],  w_scale = 127 / (max|W[n, :]| + 1e-7)   (per output channel)
    x ≈ xq / x_scale[:, None],  x_scale = 127 / (max|x[m, :]| + 1e-7)   (per input row)
    y = float32(xq @ wqᵀ) / (x_scale[:, None] · w_scale) + b
"""
from linea.backend._int8 import kernel_info
from linea.quantization._dynamic import model_size, quantize_dynamic
from linea.quantization._linear import QuantizedLinear

__all__ = ["quantize_dynamic", "QuantizedLinear", "kernel_info", "model_size"]
