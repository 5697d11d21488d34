"""linea.utils.data against torch.utils.data: collation, subsets, splits, samplers, DataLoader
arguments and errors, and worker threads that really load in parallel, in order."""
import collections
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea.utils import data

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")
tdata = torch.utils.data

Pair = collections.namedtuple("Pair", ["x", "y"])


def plain(value):
    """Batches as nested Python values, comparable across libraries."""
    if hasattr(value, "tolist") and hasattr(value, "shape"):
        return ("tensor", str(value.dtype).replace("torch.", "").replace("linea.", ""), value.tolist())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (type(value).__name__, [plain(v) for v in value])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [plain(v) for v in value])
    return value


SAMPLES = {
    "tuples": [(np.float32(i), i, float(i) / 2) for i in range(3)],
    "arrays": [np.arange(4, dtype=np.float32) * i for i in range(3)],
    "dicts": [{"image": np.ones((2, 2), np.float64) * i, "label": i, "name": f"s{i}"} for i in range(3)],
    "lists": [[i, i + 1] for i in range(3)],
    "namedtuples": [Pair(np.int64(i), [float(i), 1.0]) for i in range(3)],
    "bools": [True, False, True],
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_default_collate_matches_torch(name):
    samples = SAMPLES[name]
    assert plain(data.default_collate(samples)) == plain(tdata.default_collate(samples))


def test_default_collate_of_tensors_stacks_them():
    ours = data.default_collate([(linea.ones(2) * i, linea.tensor(i)) for i in range(3)])
    theirs = tdata.default_collate([(torch.ones(2) * i, torch.tensor(i)) for i in range(3)])
    assert plain(ours) == plain(theirs)


class Squares(data.Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, index):
        return np.float32(index) ** 2, index

    def __len__(self):
        return self.n


class TorchSquares(tdata.Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, index):
        return np.float32(index) ** 2, index

    def __len__(self):
        return self.n


LOADERS = {
    "plain": dict(batch_size=4),
    "drop_last": dict(batch_size=4, drop_last=True),
    "no-batching": dict(batch_size=None),
    "sampler": dict(batch_size=3, sampler=[9, 1, 5, 2, 7]),
    "batch_sampler": dict(batch_sampler=[[0, 1], [5], [2, 3, 4]]),
    "collate_fn": dict(batch_size=5, collate_fn=lambda batch: [b[1] * 10 for b in batch]),
    "workers": dict(batch_size=3, num_workers=2, pin_memory=True),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_dataloader_batches_match_torch(name):
    ours = data.DataLoader(Squares(10), **LOADERS[name])
    theirs = tdata.DataLoader(TorchSquares(10), **LOADERS[name])
    assert len(ours) == len(theirs)
    assert [plain(b) for b in ours] == [plain(b) for b in theirs]


def test_subsets_concatenation_and_splits():
    squares = Squares(10)
    subset = data.Subset(squares, [3, 1, 4])
    assert [subset[i] for i in range(3)] == [tdata.Subset(TorchSquares(10), [3, 1, 4])[i] for i in range(3)]
    both = squares + Squares(3)
    assert isinstance(both, data.ConcatDataset) and len(both) == 13
    assert both[10] == squares[0] and both[-1] == Squares(3)[2]
    assert both.cumulative_sizes == tdata.ConcatDataset([TorchSquares(10), TorchSquares(3)]).cumulative_sizes
    for lengths in ([3, 7], [0.3, 0.7], [0.33, 0.33, 0.34], [0.5, 0.25, 0.25]):
        ours = data.random_split(Squares(10), lengths, generator=linea.Generator().manual_seed(0))
        theirs = tdata.random_split(TorchSquares(10), lengths, generator=torch.Generator().manual_seed(0))
        assert [len(s) for s in ours] == [len(s) for s in theirs]
        indices = [i for s in ours for i in s.indices]
        assert sorted(indices) == list(range(10))  # disjoint, covering
    again = data.random_split(Squares(10), [5, 5], generator=linea.Generator().manual_seed(0))
    assert again[0].indices == data.random_split(Squares(10), [5, 5],
                                                 generator=linea.Generator().manual_seed(0))[0].indices
    with pytest.raises(ValueError, match="Sum of input lengths"):
        data.random_split(Squares(10), [3, 3])


def test_shuffling_samplers_cover_every_index_and_follow_the_generator():
    loader = data.DataLoader(Squares(20), batch_size=6, shuffle=True, generator=linea.Generator().manual_seed(3))
    first = [i for _, batch in loader for i in batch.tolist()]
    assert sorted(first) == list(range(20))
    replay = data.DataLoader(Squares(20), batch_size=6, shuffle=True, generator=linea.Generator().manual_seed(3))
    assert [i for _, batch in replay for i in batch.tolist()] == first
    draws = list(data.RandomSampler(range(5), replacement=True, num_samples=12))
    assert len(draws) == 12 and set(draws) <= set(range(5))
    assert sorted(data.SubsetRandomSampler([7, 8, 9])) == [7, 8, 9]
    assert list(data.BatchSampler(range(7), 3, drop_last=True)) == list(tdata.BatchSampler(range(7), 3, True))


class Streamed(data.IterableDataset):
    def __iter__(self):
        return iter(range(7))


class TorchStreamed(tdata.IterableDataset):
    def __iter__(self):
        return iter(range(7))


def test_iterable_datasets_batch_like_torch():
    for options in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)):
        assert [plain(b) for b in data.DataLoader(Streamed(), **options)] == \
            [plain(b) for b in tdata.DataLoader(TorchStreamed(), **options)]


class Rendezvous(data.Dataset):
    """Each item waits until ``parties`` threads are inside __getitem__ at once: only real
    parallel loading gets through (a lone loader times out)."""

    def __init__(self, parties):
        self.barrier = threading.Barrier(parties, timeout=20)

    def __getitem__(self, index):
        self.barrier.wait()
        return np.float32(index)

    def __len__(self):
        return 12


def test_workers_load_in_parallel_and_keep_the_order():
    loader = data.DataLoader(Rendezvous(4), batch_size=1, num_workers=4)
    assert [b.tolist() for b in loader] == [[float(i)] for i in range(12)]
    seen = []
    loader = data.DataLoader(Squares(9), batch_size=2, num_workers=3,
                             worker_init_fn=lambda worker: seen.append(worker))
    assert [plain(b) for b in loader] == [plain(b) for b in data.DataLoader(Squares(9), batch_size=2)]
    assert sorted(seen) == [0, 1, 2]


def test_dataloader_errors_match_torch():
    cases = [dict(batch_size=2, shuffle=True, sampler=[0, 1]),
             dict(batch_sampler=[[0]], batch_size=2),
             dict(batch_size=None, drop_last=True),
             dict(num_workers=-1),
             dict(prefetch_factor=2)]
    for options in cases:
        with pytest.raises(ValueError) as theirs:
            tdata.DataLoader(TorchSquares(4), **options)
        with pytest.raises(ValueError) as ours:
            data.DataLoader(Squares(4), **options)
        assert str(ours.value).split(";")[0].split(" option")[0] == str(theirs.value).split(";")[0].split(" option")[0]
