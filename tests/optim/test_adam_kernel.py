"""The one-pass C Adam step: bit-identical to the NumPy path it replaces.

The NumPy path (``LINEA_ADAM_KERNEL=numpy``) is the reference: every element of the
parameter and of both moments must have the same bits after many steps, for float32 and
float64, with amsgrad, weight decay (L2 and decoupled), maximize, and values that
overflow to inf or are NaN. (Against torch both paths agree to round-off, not bits:
torch's CPU ``lerp_`` uses a fused multiply-add, which NumPy cannot express; the
trajectories are checked in tests/optim/test_torch_training.py.)
"""
import numpy as np
import pytest

import linea
from linea.backend._adam import kernel_info

pytestmark = pytest.mark.numpy_only

needs_kernel = pytest.mark.skipif(kernel_info()["path"] != "c" and "not built" in kernel_info()["reason"],
                                  reason="the optional C Adam kernel was not built here")

CONFIGS = {
    "plain": dict(lr=0.01),
    "amsgrad-l2": dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
    "maximize": dict(lr=0.003, maximize=True),
}


def run_steps(monkeypatch, path, dtype, optimizer, options, gradients, start):
    monkeypatch.setenv("LINEA_ADAM_KERNEL", path)
    parameter = linea.nn.Parameter(linea.tensor(start.copy()))
    opt = optimizer([parameter], **options)
    for gradient in gradients:
        parameter.grad = linea.tensor(gradient)
        opt.step()
    state = opt.state[parameter]
    moments = [state[k].numpy() for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if k in state]
    return [parameter.detach().numpy()] + moments


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("optimizer", [linea.optim.Adam, linea.optim.AdamW])
def test_c_kernel_is_bit_identical_to_the_numpy_path(monkeypatch, dtype, config, optimizer):
    rng = np.random.default_rng(5)
    shape = (37, 53)  # odd sizes: the vectorised loop's remainder runs too
    start = rng.standard_normal(shape).astype(dtype)
    gradients = [(rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 4)).astype(dtype) for _ in range(12)]
    gradients[3][0, :4] = [np.inf, -np.inf, np.nan, np.finfo(dtype).max]
    ours = run_steps(monkeypatch, "", dtype, optimizer, CONFIGS[config], gradients, start)
    assert kernel_info()["path"] == "c"
    reference = run_steps(monkeypatch, "numpy", dtype, optimizer, CONFIGS[config], gradients, start)
    assert kernel_info()["path"] == "numpy"
    for a, b in zip(ours, reference, strict=True):
        assert a.dtype == dtype
        assert a.tobytes() == b.tobytes()


@needs_kernel
def test_c_kernel_leaves_non_contiguous_and_other_dtypes_to_numpy(monkeypatch):
    from linea.backend._adam import adam_step

    base = np.ones((4, 6), np.float32)
    view = base[:, ::2]
    same = [np.zeros_like(view) for _ in range(3)]
    assert not adam_step(view, *same, None, 0.1, 0.999, 1.0, 1e-8, 0.01)
    halves = [np.ones(5, np.float16) for _ in range(4)]
    assert not adam_step(*halves, None, 0.1, 0.999, 1.0, 1e-8, 0.01)
    mixed = [np.ones(5, np.float32), np.ones(5, np.float64), np.ones(5, np.float32), np.ones(5, np.float32)]
    assert not adam_step(*mixed, None, 0.1, 0.999, 1.0, 1e-8, 0.01)
    assert (base == 1).all()
