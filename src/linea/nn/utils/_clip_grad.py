"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``."""
from __future__ import annotations

from linea.backend import from_host, to_host, xp
from linea._tensor import Tensor


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale gradients in place so their joint norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated; the
    scale is min(1, max_norm / (norm + 1e-6)). Returns the norm before clipping.
    """
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor._make(xp.asarray(0.0, xp.float32))
    host = [to_host(g._data) for g in grads]  # the norm is a few scalars: computed on the host
    dtype = host[0].dtype
    if norm_type == float("inf"):
        norms = [xp.abs(g).max() if g.size else 0.0 for g in host]
        total = xp.asarray(max(norms), dtype)
    else:
        norms = [xp.sum(xp.abs(g.astype(xp.float64)) ** norm_type) for g in host]
        total = xp.asarray(sum(norms) ** (1.0 / norm_type), dtype)
    if error_if_nonfinite and not xp.isfinite(total):
        raise RuntimeError(
            f"the total norm of order {norm_type} for gradients is non-finite, so it cannot be "
            "clipped; set error_if_nonfinite=False to clip anyway"
        )
    scale = min(max_norm / (float(total) + 1e-6), 1.0)
    for grad in grads:
        data = grad._data
        if isinstance(data, xp.ndarray):
            data *= data.dtype.type(scale)
        else:
            data *= scale
    return Tensor._make(from_host(total))


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    for grad in _grads(parameters):
        xp.clip(grad._data, -clip_value, clip_value, out=grad._data)
