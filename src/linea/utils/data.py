"""``TensorDataset`` and ``DataLoader``: mini-batches of tensors, as in PyTorch.

The loader gathers each batch with one fancy index per tensor (no per-sample
Python loop), and shuffles with ``linea.randperm`` from the given (or default)
generator, so a seeded run sees the same batches every time.
"""
from __future__ import annotations

import math

from linea._creation import as_tensor, randperm
from linea._errors import ShapeError
from linea._tensor import Tensor

__all__ = ["TensorDataset", "DataLoader"]


class TensorDataset:
    """Tensors (or arrays) of equal first dimension, indexed together."""

    def __init__(self, *tensors) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else as_tensor(t) for t in tensors)
        sizes = {t.shape[0] if t.ndim else None for t in self.tensors}
        if len(sizes) != 1 or None in sizes:
            raise ShapeError(
                "Size mismatch between tensors: every tensor needs the same first dimension, "
                f"got shapes {[t.shape for t in self.tensors]}"
            )

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)


class DataLoader:
    """Iterate a ``TensorDataset`` in batches of ``batch_size``, optionally shuffled."""

    def __init__(self, dataset: TensorDataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, generator=None) -> None:
        if not isinstance(dataset, TensorDataset):
            raise TypeError(f"DataLoader takes a linea TensorDataset, got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator

    def __len__(self) -> int:
        count = len(self.dataset) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self):
        size = len(self.dataset)
        order = randperm(size, generator=self.generator)._data if self.shuffle else None
        arrays = [t._data for t in self.dataset.tensors]
        for batch in range(len(self)):
            start = batch * self.batch_size
            if order is None:
                index = slice(start, start + self.batch_size)
            else:
                index = order[start:start + self.batch_size]
            yield tuple(Tensor._make(array[index]) for array in arrays)
