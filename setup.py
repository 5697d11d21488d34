"""Builds linea's optional C kernels (int8 matrix product, one-pass Adam,
torch's normal_ and randperm); linea works without them.

Both extensions are ``optional``: where no C compiler is present, or it fails, pip
still installs linea, and ``linea.quantization.kernel_info()`` and
``linea.optim.kernel_info()`` report the NumPy fallback. Metadata lives in pyproject.toml.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "linea.backend._int8_kernel",
    sources=["src/linea/backend/_int8_kernel.c"],
    extra_compile_args=["-O3", "-ffp-contract=off", "-std=c11", "-pthread"],
    extra_link_args=["-pthread"],
    optional=True,
), Extension(
    "linea.backend._adam_kernel",
    sources=["src/linea/backend/_adam_kernel.c"],
    # -fno-math-errno lets sqrt vectorise; it changes no result (sqrt is correctly rounded).
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-std=c11"],
    optional=True,
), Extension(
    "linea.backend._torch_random_kernel",
    sources=["src/linea/backend/_torch_random_kernel.c"],
    # -ffp-contract=off: every fused multiply-add is an explicit fmaf, placed as torch's build fuses.
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-std=gnu11"],
    optional=True,
)])
