"""Keras 3 dtype policies in linea's Keras flavour against real Keras (torch backend):
variable vs compute dtypes, outputs within one ulp of the compute dtype, configs, the
global policy, LossScaleOptimizer's scale sequence, and fit under mixed_float16."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

import linea
from linea import keras as lk

keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
torch = pytest.importorskip("torch", reason="Keras's torch backend needs PyTorch")

RNG = np.random.default_rng(33)
ULP = {"bfloat16": 2.0 ** -7, "float16": 2.0 ** -10, "float32": 2.0 ** -23}


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16", "bfloat16", "float16", "float32"])
def test_dense_under_each_policy_matches_keras(policy):
    kernel = RNG.standard_normal((10, 6)).astype(np.float32)
    bias = RNG.standard_normal(6).astype(np.float32)
    x = RNG.standard_normal((5, 10)).astype(np.float32)
    ours = lk.layers.Dense(6, activation="relu", dtype=policy)
    theirs = keras.layers.Dense(6, activation="relu", dtype=policy)
    ours.build((None, 10))
    theirs.build((None, 10))
    ours.set_weights([kernel, bias])
    theirs.set_weights([kernel, bias])
    for name in ("dtype", "compute_dtype", "variable_dtype"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.dtype_policy.name == theirs.dtype_policy.name == policy
    assert ours.kernel.dtype.name == theirs.kernel.dtype
    y_ours, y_theirs = ours(x), theirs(x)
    assert y_ours.dtype.name == keras.backend.standardize_dtype(y_theirs.dtype) == ours.compute_dtype
    a = y_ours.float().numpy()
    b = keras.ops.convert_to_numpy(keras.ops.cast(y_theirs, "float32"))
    ulp = ULP[ours.compute_dtype]
    assert np.all(np.abs(a - b) <= 2 * ulp * np.maximum(np.abs(b), 1.0)), np.abs(a - b).max()
    assert ours.get_config()["dtype"] == theirs.get_config()["dtype"]


def test_gradients_reach_float32_variables_under_mixed_bfloat16():
    layer = lk.layers.Dense(3, dtype="mixed_bfloat16")
    x = linea.tensor(RNG.standard_normal((4, 5)).astype(np.float32))
    loss = (layer(x).float() ** 2).sum()
    loss.backward()
    assert layer.kernel.grad.dtype == linea.float32 and layer.bias.grad.dtype == linea.float32


def test_the_global_policy_applies_to_new_layers():
    try:
        lk.config.set_dtype_policy("mixed_bfloat16")
        keras.config.set_dtype_policy("mixed_bfloat16")
        assert lk.config.dtype_policy().name == keras.config.dtype_policy().name
        ours, theirs = lk.layers.Dense(2), keras.layers.Dense(2)
        assert (ours.compute_dtype, ours.variable_dtype) == (theirs.compute_dtype, theirs.variable_dtype)
        with pytest.raises(ValueError, match="Cannot convert 'mixed_int8'"):
            lk.config.set_dtype_policy("mixed_int8")
    finally:
        lk.config.set_dtype_policy("float32")
        keras.config.set_dtype_policy("float32")
    assert lk.layers.Dense(2).compute_dtype == "float32"


def test_loss_scale_optimizer_scales_and_skips_as_keras_does():
    steps, poisoned = 14, {2: np.inf, 3: np.nan, 9: -np.inf}
    start = RNG.standard_normal(4).astype(np.float32)
    grads = [RNG.standard_normal(4).astype(np.float32) for _ in range(steps)]
    for step, value in poisoned.items():
        grads[step] = grads[step].copy()
        grads[step][1] = value

    theirs = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=64.0,
                                                 dynamic_growth_steps=3)
    variable = keras.Variable(start.copy())
    ours = lk.optimizers.LossScaleOptimizer(lk.optimizers.SGD(0.1), initial_scale=64.0,
                                            dynamic_growth_steps=3)
    parameter = linea.nn.Parameter(start.copy())
    for grad in grads:
        theirs.apply([torch.from_numpy(grad * float(keras.ops.convert_to_numpy(theirs.dynamic_scale)))
                      if theirs.built else torch.from_numpy(grad * 64.0)], [variable])
        ours.apply_gradients([(linea.tensor(grad * ours.dynamic_scale), parameter)])
        assert ours.dynamic_scale == float(keras.ops.convert_to_numpy(theirs.dynamic_scale))
        assert ours.step_counter == int(keras.ops.convert_to_numpy(theirs.step_counter))
        np.testing.assert_allclose(parameter.numpy(), keras.ops.convert_to_numpy(variable), rtol=1e-6)
    assert ours.iterations == int(keras.ops.convert_to_numpy(theirs.iterations))


def test_fit_under_mixed_float16_wraps_the_optimizer_and_learns():
    x = RNG.standard_normal((64, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32))[:, None]
    model = lk.Sequential([lk.Input((4,)), lk.layers.Dense(8, activation="tanh", dtype="mixed_float16"),
                           lk.layers.Dense(1, dtype="mixed_float16")])
    try:
        lk.config.set_dtype_policy("mixed_float16")
        keras.config.set_dtype_policy("mixed_float16")
        wrapped = lk.Sequential([lk.Input((4,)), lk.layers.Dense(8, activation="tanh"), lk.layers.Dense(1)])
        twin = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        wrapped.compile(optimizer=lk.optimizers.Adam(0.01), loss="mse")
        twin.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        assert isinstance(wrapped.optimizer, lk.optimizers.LossScaleOptimizer)
        assert isinstance(twin.optimizer, keras.optimizers.LossScaleOptimizer)
        history = wrapped.fit(x, y, epochs=15, batch_size=16, verbose=0)
        assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
        assert wrapped.layers[0].kernel.dtype == linea.float32
    finally:
        lk.config.set_dtype_policy("float32")
        keras.config.set_dtype_policy("float32")
    model.compile(optimizer="adam", loss="mse")
    assert not isinstance(model.optimizer, lk.optimizers.LossScaleOptimizer)  # its policy is float32
