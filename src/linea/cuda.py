"""``linea.cuda``: PyTorch's ``torch.cuda`` questions — is a GPU usable, how many.

>>> import linea
>>> linea.cuda.is_available() in (True, False)
True
"""
from linea.backend._cuda import device_count, is_available, unavailable_reason

__all__ = ["is_available", "device_count", "unavailable_reason"]
