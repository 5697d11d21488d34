"""Helpers that act on a model's parameters."""
from linea.nn.utils._clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
