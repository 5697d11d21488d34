"""Datasets, samplers and ``DataLoader`` with PyTorch's names, arguments and batches.

- ``Dataset`` (map-style: ``__getitem__`` and ``__len__``), ``IterableDataset``,
  ``TensorDataset``, ``Subset``, ``ConcatDataset`` (also ``dataset_a + dataset_b``) and
  ``random_split`` (lengths or fractions, as torch rounds them).
- Samplers: ``SequentialSampler``, ``RandomSampler``, ``SubsetRandomSampler``, ``BatchSampler``.
- ``default_collate``: tensors and NumPy arrays are stacked, numbers become tensors
  (float → float64, int → int64, as torch), tuples and lists are collated field by field
  (a tuple sample gives a list of batches, as torch), dicts key by key, strings listed.
- ``DataLoader(dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
  num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, generator=None, …)``.

``num_workers > 0`` loads batches on that many **threads**, ``2 · num_workers`` batches
ahead, and yields them in the same order as ``num_workers=0``. Threads share the dataset
(nothing is pickled) and run in parallel wherever ``__getitem__`` releases the GIL — file
reads, decoding, NumPy work; pure-Python work does not speed up. An ``IterableDataset`` is
iterated on the calling thread. ``pin_memory`` is accepted and does nothing: there is no
device memory to pin on a CPU. A ``TensorDataset`` with the default collation is gathered
with one fancy index per tensor and batch (no per-sample Python loop).
"""
from __future__ import annotations

import bisect
import collections
import itertools
import math
import numbers
import queue
import threading

from linea._creation import as_tensor, randint, randperm
from linea._random import Generator, draw_int64_seed
from linea._errors import ShapeError
from linea._ops_shape import stack
from linea._tensor import Tensor
from linea.backend import xp

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
           "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler",
           "default_collate", "default_convert", "DataLoader", "get_worker_info"]


# ---- datasets -----------------------------------------------------------------------------

class Dataset:
    """A map-style dataset: subclass it with ``__getitem__(index)`` and ``__len__()``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read as a stream: subclass it with ``__iter__()``."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class TensorDataset(Dataset):
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


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices) -> None:
        self.dataset, self.indices = dataset, [int(i) for i in indices]

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Datasets one after another: index ``len(first)`` is the second's first sample."""

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for dataset in self.datasets:
            if isinstance(dataset, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Disjoint random ``Subset``s of the given lengths (or fractions summing to 1).

    Fractions are floored and the remainder handed out one by one from the first subset,
    as torch does; the permutation comes from ``linea.randperm(len(dataset), generator)``.
    """
    lengths = list(lengths)
    total = len(dataset)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1) \
            and sum(lengths) <= 1:
        for share in lengths:
            if not 0 <= share <= 1:
                raise ValueError(f"Fraction at index {lengths.index(share)} is not between 0 and 1")
        counts = [int(math.floor(total * share)) for share in lengths]
        for index in range(total - sum(counts)):
            counts[index % len(counts)] += 1
        lengths = counts
    if sum(lengths) != total:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    order = randperm(total, generator=generator).tolist()
    return [Subset(dataset, order[end - length:end])
            for end, length in zip(itertools.accumulate(lengths), lengths)]


# ---- samplers -----------------------------------------------------------------------------

class Sampler:
    """Yields dataset indices: subclass it with ``__iter__`` (and ``__len__``)."""

    def __init__(self, data_source=None) -> None:
        pass


class SequentialSampler(Sampler):
    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation (or ``replacement=True`` draws) from ``generator``."""

    def __init__(self, data_source, replacement: bool = False, num_samples=None, generator=None) -> None:
        self.data_source, self.replacement, self.generator = data_source, replacement, generator
        self._num_samples = num_samples
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        # torch's draws exactly: without a generator, one int64 from the global stream seeds a
        # fresh generator; with replacement, indices come 32 at a time; otherwise whole
        # permutations, then one more for the remainder (drawn even when it is empty).
        size = len(self.data_source)
        generator = self.generator
        if generator is None:
            generator = Generator().manual_seed(draw_int64_seed(None))
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from randint(0, size, (32,), generator=generator).tolist()
            yield from randint(0, size, (self.num_samples % 32,), generator=generator).tolist()
            return
        for _ in range(self.num_samples // size):
            yield from randperm(size, generator=generator).tolist()
        yield from randperm(size, generator=generator).tolist()[:self.num_samples % size]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """``indices`` in a random order."""

    def __init__(self, indices, generator=None) -> None:
        self.indices, self.generator = list(indices), generator

    def __iter__(self):
        for position in randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[position]

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (the last one shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        count = len(self.sampler) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)


# ---- collation ----------------------------------------------------------------------------

def default_collate(batch):
    """One batch from a list of samples, element type by element type, as torch's."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch))
    if isinstance(elem, xp.ndarray) and elem.dtype.kind in "biufc":
        return stack([as_tensor(b) for b in batch])
    if isinstance(elem, xp.generic) and elem.dtype.kind in "biufc":
        return as_tensor(xp.asarray(batch))
    if isinstance(elem, bool):
        return as_tensor(xp.asarray(batch, dtype=bool))
    if isinstance(elem, float):
        return as_tensor(xp.asarray(batch, dtype=xp.float64))
    if isinstance(elem, numbers.Integral):
        return as_tensor(xp.asarray(batch, dtype=xp.int64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return type(elem)({key: default_collate([sample[key] for sample in batch]) for key in elem}) \
            if not isinstance(elem, collections.defaultdict) else \
            {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return fields  # a list, as torch returns for tuple samples
        try:
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                    f"lists; found {type(elem).__name__}")


def default_convert(sample):
    """One sample as the loader gives it without batching: NumPy arrays and scalars become
    tensors, tuples lists, containers converted element by element (torch's rule)."""
    if isinstance(sample, (xp.ndarray, xp.generic)) and sample.dtype.kind in "biufc":
        return as_tensor(sample)
    if isinstance(sample, collections.abc.Mapping):
        return type(sample)({key: default_convert(value) for key, value in sample.items()})
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*(default_convert(value) for value in sample))
    if isinstance(sample, tuple):
        return [default_convert(value) for value in sample]
    if isinstance(sample, collections.abc.Sequence) and not isinstance(sample, (str, bytes)):
        try:
            return type(sample)([default_convert(value) for value in sample])
        except TypeError:
            return [default_convert(value) for value in sample]
    return sample


# ---- the loader ---------------------------------------------------------------------------

_WorkerInfo = collections.namedtuple("WorkerInfo", ["id", "num_workers", "seed", "dataset"])
_WORKER = threading.local()  # the loading thread's WorkerInfo


def get_worker_info():
    """In a loading thread, (id, num_workers, seed, dataset); None on the calling thread."""
    return getattr(_WORKER, "info", None)


class DataLoader:
    """Batches of a dataset, optionally shuffled, collated and loaded by worker threads."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if prefetch_factor is not None and num_workers == 0:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. "
                             "let num_workers > 0 to enable multiprocessing, otherwise set "
                             "prefetch_factor to None.")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        iterable = isinstance(dataset, IterableDataset)
        if iterable and (shuffle not in (None, False) or sampler is not None or batch_sampler is not None):
            raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle, sampler "
                             "and batch_sampler options")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                         or batch_size < 1):
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size!r}")
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if not iterable and sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if not iterable and batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.pin_memory, self.timeout = num_workers, bool(pin_memory), timeout
        self.worker_init_fn, self.prefetch_factor = worker_init_fn, prefetch_factor or 2
        self.collate_fn = collate_fn
        self._auto_collation = batch_sampler is not None or (iterable and batch_size is not None)

    @property
    def shuffle(self) -> bool:
        return isinstance(self.sampler, RandomSampler)

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            length = len(self.dataset)  # TypeError where the stream has no length, as in torch
            if self.batch_size is None:
                return length
            return length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.sampler)

    def _collate(self, samples):
        if self.collate_fn is not None:
            return self.collate_fn(samples)
        return default_collate(samples) if self._auto_collation else samples

    def _fetch(self, indices):
        """One batch (or, without batching, one sample) from the dataset."""
        dataset = self.dataset
        if not self._auto_collation:
            sample = dataset[indices]
            return self.collate_fn(sample) if self.collate_fn is not None else default_convert(sample)
        if type(dataset) is TensorDataset and self.collate_fn is None:  # one gather per tensor
            if isinstance(self.sampler, SequentialSampler) and indices and \
                    indices[-1] - indices[0] == len(indices) - 1:
                index = slice(indices[0], indices[-1] + 1)  # in order: a view, no copy
            else:
                index = xp.asarray(indices, dtype=xp.int64)
            return [Tensor._make(t._data[index]) for t in dataset.tensors]
        return self._collate([dataset[i] for i in indices])

    def __iter__(self):
        # As torch's loader iterator does when it is created: one int64 base seed from the
        # loader's generator (or the global one); workers are seeded base_seed + worker id.
        base_seed = draw_int64_seed(self.generator)
        return self._batches(base_seed)

    def _batches(self, base_seed: int):
        if isinstance(self.dataset, IterableDataset):
            yield from self._iterate_stream()
            return
        batches = iter(self.batch_sampler) if self.batch_sampler is not None else iter(self.sampler)
        if self.num_workers == 0:
            for indices in batches:
                yield self._fetch(indices)
            return
        yield from self._threaded(batches, base_seed)

    def _threaded(self, batches, seed: int):
        """Batches fetched by ``num_workers`` threads, yielded in the sampler's order."""
        jobs: queue.Queue = queue.Queue()
        done: dict = {}
        ready = threading.Condition()

        def work(worker: int) -> None:
            _WORKER.info = _WorkerInfo(worker, self.num_workers, seed + worker, self.dataset)
            try:
                if self.worker_init_fn is not None:
                    self.worker_init_fn(worker)
            except BaseException as error:  # reported to the caller with the first batch
                with ready:
                    done[-1] = (False, error)
                    ready.notify_all()
                return
            while True:
                job = jobs.get()
                if job is None:
                    return
                position, indices = job
                try:
                    outcome = (True, self._fetch(indices))
                except BaseException as error:  # the caller re-raises it in order
                    outcome = (False, error)
                with ready:
                    done[position] = outcome
                    ready.notify_all()

        threads = [threading.Thread(target=work, args=(w,), name=f"linea-loader-{w}", daemon=True)
                   for w in range(self.num_workers)]
        for thread in threads:
            thread.start()
        try:
            submitted = 0
            batches = iter(batches)
            for indices in itertools.islice(batches, self.num_workers * self.prefetch_factor):
                jobs.put((submitted, indices))
                submitted += 1
            for position in itertools.count():
                if position >= submitted:
                    return
                with ready:
                    while position not in done and -1 not in done:
                        ready.wait()
                    ok, value = done.pop(-1) if -1 in done else done.pop(position)
                if not ok:
                    raise value
                following = next(batches, None)
                if following is not None:
                    jobs.put((submitted, following))
                    submitted += 1
                yield value
        finally:
            for _ in threads:
                jobs.put(None)

    def _iterate_stream(self):
        stream = iter(self.dataset)
        if self.batch_size is None:
            for sample in stream:
                yield self.collate_fn(sample) if self.collate_fn is not None else default_convert(sample)
            return
        while True:
            chunk = list(itertools.islice(stream, self.batch_size))
            if not chunk or (self.drop_last and len(chunk) < self.batch_size):
                return
            yield self._collate(chunk)
