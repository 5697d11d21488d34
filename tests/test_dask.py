"""linea.dask.predict: the same predictions as the local model, on threads and on a cluster.

A ``dask.distributed.LocalCluster`` on loopback with two worker processes scores 10⁶ rows
and must give exactly the local model's outputs; the weights are one key of the graph
(sent once), each worker rebuilds the model at most once; a worker killed mid-computation
does not change the result; a wrong feature count raises the model's ShapeError before
any block runs.
"""
import os
import signal
import time

import numpy as np
import pytest

import linea
from linea import nn
from linea import ShapeError

da = pytest.importorskip("dask.array", reason="linea.dask needs dask (the [dask] extra)")
import linea.dask  # noqa: E402


def mlp(seed=0, n_in=8):
    linea.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 5))


def local_predictions(model, x, proba=False):
    with linea.no_grad():
        out = model(linea.from_numpy(x))
        return (linea.softmax(out, -1) if proba else out).numpy()


def weight_keys(result):
    return [key for key in dict(result.__dask_graph__()) if "linea-weights" in str(key)]


@pytest.mark.parametrize("proba", [False, True])
def test_threaded_predictions_equal_the_local_model(proba):
    model = mlp()
    x = np.random.default_rng(0).standard_normal((5000, 8)).astype(np.float32)
    result = linea.dask.predict(model, da.from_array(x, chunks=(700, 3)), batch_size=256, proba=proba)
    assert result.shape == (5000, 5) and result.dtype == np.float32
    assert result._meta.ndim == 2 and result._meta.dtype == np.float32  # Dask keeps meta 0-sized
    assert result.chunks[0] == da.from_array(x, chunks=700).chunks[0]
    np.testing.assert_array_equal(result.compute(scheduler="threads"), local_predictions(model, x, proba))


def test_weights_are_one_key_that_every_block_depends_on():
    model = mlp()
    x = da.zeros((1000, 8), chunks=(100, 8), dtype=np.float32)
    result = linea.dask.predict(model, x)
    graph = dict(result.__dask_graph__())
    (weights,) = weight_keys(result)
    payload = graph[weights]
    payload = getattr(payload, "value", payload)
    assert set(payload) == {"description", "arrays", "token"}
    assert isinstance(payload["description"], str)  # JSON, no pickled linea object
    assert all(type(array) is np.ndarray for array in payload["arrays"].values())
    dependents = [key for key, task in graph.items()
                  if "linea-predict" in str(key) and weights in getattr(task, "dependencies", ())]
    assert len(dependents) == result.numblocks[0] == 10


def test_dataframe_input_and_quantized_and_keras_models():
    dd = pytest.importorskip("dask.dataframe", reason="Dask DataFrame support needs pandas")
    pd = pytest.importorskip("pandas")
    x = np.random.default_rng(1).standard_normal((600, 8)).astype(np.float32)
    frame = dd.from_pandas(pd.DataFrame(x), npartitions=3)
    model = mlp(1)
    np.testing.assert_array_equal(linea.dask.predict(model, frame).compute(), local_predictions(model, x))
    quantized = linea.quantization.quantize_dynamic(mlp(2))
    np.testing.assert_array_equal(linea.dask.predict(quantized, da.from_array(x, chunks=200)).compute(),
                                  local_predictions(quantized, x))
    keras = linea.keras.Sequential([linea.keras.layers.Dense(16, activation="relu"),
                                    linea.keras.layers.Dense(4, activation="softmax")])
    keras.build((None, 8))
    expected = keras(linea.from_numpy(x)).numpy()
    np.testing.assert_allclose(linea.dask.predict(keras, da.from_array(x, chunks=200)).compute(),
                               expected, rtol=1e-6, atol=1e-7)


def test_a_wrong_feature_count_raises_the_models_shape_error_before_any_block():
    model = mlp()
    with pytest.raises(ShapeError) as local:
        model(linea.zeros(1, 7))
    x = da.zeros((10 ** 6, 7), chunks=(10 ** 5, 7), dtype=np.float32)
    with pytest.raises(ShapeError) as remote:
        linea.dask.predict(model, x)
    assert str(remote.value) == str(local.value)


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="dask.array"):
        linea.dask.predict(mlp(), np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        linea.dask.predict(mlp(), da.zeros((3, 8), dtype=np.float32), batch_size=0)


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed", reason="the cluster tests need dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def generated_rows(rows):
    return da.random.default_rng(7).standard_normal((rows, 8), chunks=(rows // 20, 8), dtype=np.float32)


@pytest.mark.slow
def test_a_two_worker_cluster_scores_a_million_rows_exactly(cluster_client):
    model = mlp(3)
    x = generated_rows(10 ** 6)
    result = linea.dask.predict(model, x)
    assert len(weight_keys(result)) == 1
    got = cluster_client.compute(result).result()
    np.testing.assert_array_equal(got, local_predictions(model, x.compute()))
    builds = cluster_client.run(lambda: linea.dask.BUILDS[0])
    assert len(builds) == 2 and all(count <= 1 for count in builds.values()) and sum(builds.values()) >= 1


@pytest.mark.slow
def test_a_worker_killed_mid_computation_changes_nothing(cluster_client):
    model = mlp(4)
    x = generated_rows(10 ** 6)

    def slow_identity(block):
        time.sleep(0.05)
        return block

    result = linea.dask.predict(model, x.map_blocks(slow_identity, dtype=np.float32), batch_size=10 ** 4)
    future = cluster_client.compute(result)
    time.sleep(0.3)
    victim = sorted(cluster_client.run(os.getpid).values())[0]
    os.kill(victim, signal.SIGKILL)  # abrupt: the nanny restarts it, Dask retries its tasks
    got = future.result(timeout=120)
    assert got.shape == (10 ** 6, 5)
    np.testing.assert_array_equal(got, local_predictions(model, x.compute()))
