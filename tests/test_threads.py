"""Threads: grad mode is per thread (as in PyTorch), and shared models give single-threaded results.

``LINEA_THREAD_REPEATS`` runs the mixed workload more times (100 in a row was checked by hand).
"""
import os
import threading

import numpy as np
import pytest

import linea
from linea import nn

REPEATS = int(os.environ.get("LINEA_THREAD_REPEATS", "10"))


def mlp(seed):
    linea.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))


def test_no_grad_in_one_thread_does_not_switch_off_another():
    inside, checked = threading.Event(), threading.Event()
    seen = {}

    def quiet():
        with linea.no_grad():
            inside.set()
            checked.wait(5)
            seen["quiet"] = linea.is_grad_enabled()

    def recording():
        inside.wait(5)
        w = linea.ones(3, requires_grad=True)
        seen["enabled"] = linea.is_grad_enabled()
        seen["requires_grad"] = (w * 2).sum().requires_grad
        checked.set()

    threads = [threading.Thread(target=quiet), threading.Thread(target=recording)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"quiet": False, "enabled": True, "requires_grad": True}


def test_a_new_thread_starts_with_grad_enabled_as_in_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for thread semantics")
    results = {}

    def probe():
        results["linea"], results["torch"] = linea.is_grad_enabled(), torch.is_grad_enabled()

    with linea.no_grad(), torch.no_grad():
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
    assert results == {"linea": True, "torch": True}


def _train_steps(model, x, y, steps=5):
    optimizer = linea.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_mixed_inference_training_and_compiled_calls_match_one_thread(repeat):
    rng = np.random.default_rng(repeat)
    inputs = [rng.standard_normal((b, 16)).astype(np.float32) for b in (1, 3, 8, 1, 5, 8)]
    x_train = rng.standard_normal((8, 16)).astype(np.float32)
    y_train = rng.standard_normal((8, 4)).astype(np.float32)
    shared = mlp(0).eval()
    compiled = linea.compile(shared)
    with linea.no_grad():
        expected_eager = [shared(x).numpy() for x in inputs]
    expected_compiled = [compiled(x).numpy() for x in inputs]
    expected_training = _train_steps(mlp(1), x_train, y_train)
    results, errors = {}, []
    start = threading.Barrier(6)

    def infer(key):
        start.wait(5)
        with linea.no_grad():
            results[key] = [shared(x).numpy() for x in inputs * 3][: len(inputs)]

    def run_compiled(key):
        start.wait(5)
        results[key] = [compiled(x).numpy() for x in inputs * 3][-len(inputs):]

    fresh = {"train-0": mlp(1), "train-1": mlp(1)}  # the global generator is shared: seed here

    def train(key):
        start.wait(5)
        results[key] = _train_steps(fresh[key], x_train, y_train)

    jobs = [(infer, "eager-0"), (infer, "eager-1"), (run_compiled, "compiled-0"),
            (run_compiled, "compiled-1"), (train, "train-0"), (train, "train-1")]

    def guarded(function, key):
        try:
            function(key)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append((key, error))

    threads = [threading.Thread(target=guarded, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    for key in ("eager-0", "eager-1"):
        for got, want in zip(results[key], expected_eager):
            np.testing.assert_array_equal(got, want)
    for key in ("compiled-0", "compiled-1"):
        for got, want in zip(results[key], expected_compiled):
            np.testing.assert_array_equal(got, want)
    for key in ("train-0", "train-1"):
        losses, parameters = results[key]
        assert losses == expected_training[0]
        for got, want in zip(parameters, expected_training[1]):
            np.testing.assert_array_equal(got, want)


def test_one_compiled_model_called_from_four_threads_at_once():
    """Large enough that BLAS releases the GIL mid-call: shared plan buffers would be overwritten."""
    linea.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.Tanh(),
                          nn.Linear(512, 8)).eval()
    compiled = linea.compile(model)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((32, 64)).astype(np.float32) for _ in range(4)]
    expected = [compiled(x).numpy() for x in inputs]
    mismatches = []

    def hammer(offset):
        for k in range(100):
            index = (offset + k) % len(inputs)
            if not np.array_equal(compiled(inputs[index]).numpy(), expected[index]):
                mismatches.append(index)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert mismatches == []


def test_a_no_grad_generator_consumed_from_two_threads_while_a_third_trains():
    model = nn.Linear(4, 3)
    inputs = linea.ones(2, 4)

    @linea.no_grad()
    def predictions(count):
        for _ in range(count):
            yield model(inputs)

    generator = predictions(400)
    lock = threading.Lock()
    recorded, trained, errors = [], [], []

    def consume():
        try:
            while True:
                with lock:
                    output = next(generator, None)
                if output is None:
                    return
                recorded.append(output.requires_grad)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    def train():
        try:
            for _ in range(200):
                loss = model(inputs).sum()
                trained.append(loss.requires_grad)
                loss.backward()
        except Exception as error:  # pragma: no cover
            errors.append(error)

    threads = [threading.Thread(target=consume), threading.Thread(target=consume),
               threading.Thread(target=train)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(recorded) == 400 and not any(recorded)
    assert len(trained) == 200 and all(trained)
