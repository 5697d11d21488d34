"""one_hot: integer class labels to indicator vectors."""
from __future__ import annotations

from linea._tensor import Tensor
from linea.backend import kind_of, space_of, to_host, xp

__all__ = ["one_hot"]


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """(*) int64 labels → (*, num_classes) int64 with a 1 at each label (torch's F.one_hot).

    ``num_classes=-1`` takes max(labels) + 1.
    """
    if not isinstance(tensor, Tensor) or kind_of(tensor._data) not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    labels = tensor._data
    host = to_host(labels)
    if host.size and int(host.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if host.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(host.max()) + 1
    elif host.size and int(host.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    space = space_of(labels)
    classes = space.arange(num_classes, dtype=space.int64) if space is not xp else \
        xp.arange(num_classes, dtype=xp.int64)
    expanded = space.reshape(labels, tuple(labels.shape) + (1,))
    return Tensor._make(space.astype(expanded == classes, space.int64))
