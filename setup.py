"""Builds linea's optional C kernel (int8 matrix product); linea works without it.

The extension is ``optional``: where no C compiler is present, or it fails, pip
still installs linea and ``linea.quantization.kernel_info()`` reports the NumPy
fallback. Metadata lives in pyproject.toml.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "linea.backend._int8_kernel",
    sources=["src/linea/backend/_int8_kernel.c"],
    extra_compile_args=["-O3", "-ffp-contract=off", "-std=c11", "-pthread"],
    extra_link_args=["-pthread"],
    optional=True,
)])
