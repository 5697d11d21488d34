"""Keras's learning-rate schedules: the rate at every step, fit with a schedule, and .keras files
compiled with one, all against real Keras 3."""
import os

import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")

from linea import FormatError  # noqa: E402
from linea import keras as lk  # noqa: E402

RNG = np.random.default_rng(5)

SCHEDULES = {
    "exponential": ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5)),
    "exponential-staircase": ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=4,
                                                       decay_rate=0.3, staircase=True)),
    "inverse-time": ("InverseTimeDecay", dict(initial_learning_rate=0.05, decay_steps=3, decay_rate=0.7)),
    "inverse-time-staircase": ("InverseTimeDecay", dict(initial_learning_rate=0.05, decay_steps=3,
                                                        decay_rate=0.7, staircase=True)),
    "piecewise": ("PiecewiseConstantDecay", dict(boundaries=[3, 10, 11], values=[0.1, 0.05, 0.02, 0.001])),
    "polynomial": ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=12,
                                           end_learning_rate=0.01, power=2.0)),
    "polynomial-cycle": ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=5,
                                                 end_learning_rate=0.001, power=0.5, cycle=True)),
    "cosine": ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=15, alpha=0.1)),
    "cosine-warmup": ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=10, alpha=0.05,
                                          warmup_target=0.2, warmup_steps=6)),
}


def both(name):
    class_name, config = SCHEDULES[name]
    return (getattr(lk.optimizers.schedules, class_name)(**config),
            getattr(keras.optimizers.schedules, class_name)(**config))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_rate_at_every_step_matches_keras(name):
    ours, theirs = both(name)
    for step in range(40):
        expected = float(keras.ops.convert_to_numpy(theirs(step)))
        assert ours(step) == pytest.approx(expected, rel=1e-6, abs=1e-9), step


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_serialized_form_is_keras_s_and_round_trips(name):
    ours, theirs = both(name)
    assert lk.optimizers.schedules.serialize(ours)["config"] == \
        keras.optimizers.schedules.serialize(theirs)["config"]
    back = lk.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(theirs))
    assert [back(step) for step in range(20)] == [ours(step) for step in range(20)]


def twins():
    keras.utils.set_random_seed(7)  # the same initial weights whatever ran before
    layers = lambda m: [m.layers.Dense(6, activation="tanh", name="h"), m.layers.Dense(2, name="o")]  # noqa: E731
    theirs = keras.Sequential([keras.Input(shape=(4,))] + layers(keras))
    ours = lk.Sequential([lk.Input(shape=(4,))] + layers(lk))
    ours.set_weights(theirs.get_weights())
    return ours, theirs


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("name", ["exponential-staircase", "piecewise", "cosine-warmup"])
def test_fit_with_a_schedule_trains_like_keras(name, optimizer):
    ours, theirs = twins()
    schedule_ours, schedule_theirs = both(name)
    ours.compile(optimizer=getattr(lk.optimizers, optimizer)(learning_rate=schedule_ours), loss="mse")
    theirs.compile(optimizer=getattr(keras.optimizers, optimizer)(learning_rate=schedule_theirs), loss="mse")
    x, y = RNG.standard_normal((64, 4)).astype(np.float32), RNG.standard_normal((64, 2)).astype(np.float32)
    ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    theirs.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=0)
    assert ours.optimizer.iterations == 24
    assert ours.optimizer.learning_rate == pytest.approx(
        float(keras.ops.convert_to_numpy(theirs.optimizer.learning_rate)), rel=1e-6)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_keras_file_compiled_with_a_schedule_loads_and_trains_like_keras(name, tmp_path):
    ours, theirs = twins()
    _, schedule = both(name)
    theirs.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse")
    theirs.save(str(tmp_path / "m.keras"))
    loaded = lk.models.load_model(tmp_path / "m.keras")
    reloaded = keras.models.load_model(str(tmp_path / "m.keras"))
    x, y = RNG.standard_normal((32, 4)).astype(np.float32), RNG.standard_normal((32, 2)).astype(np.float32)
    loaded.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    reloaded.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), reloaded.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=0)


def test_an_unknown_schedule_is_a_format_error_with_compile_and_ignored_without(tmp_path):
    @keras.saving.register_keras_serializable(package="test")
    class Halving(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1 / (1.0 + keras.ops.cast(step, "float32"))

        def get_config(self):
            return {}

    _, theirs = twins()
    theirs.compile(optimizer=keras.optimizers.SGD(learning_rate=Halving()), loss="mse")
    theirs.save(str(tmp_path / "m.keras"))
    with pytest.raises(FormatError, match="Halving.*compile=False"):
        lk.models.load_model(tmp_path / "m.keras")
    model = lk.models.load_model(tmp_path / "m.keras", compile=False)
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), theirs.predict(x, verbose=0), atol=1e-6)
