"""The benchmark cases, one function per (section, competitor), each run in a fresh process.

Every function returns a dict of measurements (seconds, bytes). Inputs are
seeded, so each competitor does exactly the same work.
"""
from __future__ import annotations

import numpy as np

from linea._bench._timing import measure, peak_kib, reset_peak, rss_kib

LINEAR_SHAPES = [(1, 512, 512), (64, 512, 512), (256, 1024, 4096), (4096, 1024, 1024),
                 ((32, 128), 512, 1024)]
MLP_SIZES = (64, 128, 128, 10)


def set_threads(threads: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def _batch_shape(batch) -> tuple:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def _linear_data(batch, n_in, n_out):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(_batch_shape(batch) + (n_in,)).astype(np.float32)
    w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    g = rng.standard_normal(_batch_shape(batch) + (n_out,)).astype(np.float32)
    return x, w, b, g


def _linea_linear(w, b):
    """A linea Linear holding weight ``w`` (out, in) and bias ``b``."""
    import linea

    layer = linea.nn.Linear(w.shape[1], w.shape[0])
    with linea.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    return layer


def _torch_linear(w, b):
    """The torch Linear twin of ``_linea_linear``."""
    import torch

    layer = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        layer.bias.copy_(torch.from_numpy(b))
    return layer


# ---- environment -------------------------------------------------------------------------

def environment(params: dict) -> dict:
    import platform

    from threadpoolctl import threadpool_info

    set_threads(params["threads"])
    pools = [{k: pool.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "architecture")}
             for pool in threadpool_info()]
    result = {"python": platform.python_version(), "numpy": np.__version__, "pools": pools,
              "cpu": platform.processor() or platform.machine()}
    for size in (2048, 4096):
        a = np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)
        seconds = measure(lambda: a @ a, budget=params["budget"] * 3, repeats=3)
        result[f"numpy_gemm_{size}"] = 2 * size ** 3 / seconds / 1e9
    return result


def torch_environment(params: dict) -> dict:
    import torch

    torch.set_num_threads(params["threads"])
    result = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    for size in (2048, 4096):
        a = torch.randn(size, size)
        seconds = measure(lambda: a @ a, budget=params["budget"] * 3, repeats=3)
        result[f"torch_gemm_{size}"] = 2 * size ** 3 / seconds / 1e9
    return result


# ---- Linear forward, forward+backward ---------------------------------------------------------

def linear_linea(params: dict) -> dict:
    import linea

    set_threads(params["threads"])
    x, w, b, g = _linear_data(*params["shape"])
    layer = _linea_linear(w, b)
    xt, gt = linea.from_numpy(x), linea.from_numpy(g)
    forward = measure(lambda: layer(xt), params["budget"])
    xg = linea.tensor(x, requires_grad=True)

    def step():
        layer(xg).backward(gt)
        layer.weight.grad = layer.bias.grad = xg.grad = None

    return {"forward": forward, "forward_backward": measure(step, params["budget"])}


def linear_torch(params: dict) -> dict:
    import torch

    torch.set_num_threads(params["threads"])
    x, w, b, g = _linear_data(*params["shape"])
    layer = _torch_linear(w, b)
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)
    forward = measure(lambda: layer(xt), params["budget"])
    xg = torch.from_numpy(x.copy()).requires_grad_()

    def step():
        layer(xg).backward(gt)
        layer.weight.grad = layer.bias.grad = xg.grad = None

    return {"forward": forward, "forward_backward": measure(step, params["budget"])}


def linear_numpy(params: dict) -> dict:
    set_threads(params["threads"])
    x, w, b, g = _linear_data(*params["shape"])
    x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    wt = np.ascontiguousarray(w.T)
    forward = min(measure(lambda: x @ w.T + b, params["budget"]),
                  measure(lambda: x2 @ wt + b, params["budget"]))

    def step():
        y = x2 @ w.T
        y += b
        return g2.T @ x2, g2 @ w, g2.sum(0)

    return {"forward": forward, "forward_backward": measure(step, params["budget"])}


# ---- MLP inference ----------------------------------------------------------------------------

def _mlp_weights():
    rng = np.random.default_rng(2)
    sizes = MLP_SIZES
    return [((rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32),
             (rng.standard_normal(o) * 0.1).astype(np.float32)) for i, o in zip(sizes, sizes[1:])]


def _linea_mlp():
    import linea
    from linea import nn

    layers = []
    for weight, bias in _mlp_weights():
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        with linea.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def mlp_linea(params: dict) -> dict:
    import linea

    set_threads(params["threads"])
    model = _linea_mlp()
    x = linea.from_numpy(np.random.default_rng(3).standard_normal((params["batch"], MLP_SIZES[0])).astype(np.float32))

    def plain():
        with linea.no_grad():
            return model(x)

    compiled = linea.compile(model)

    def planned():  # inference, as torch's is measured: under no_grad (else the call records a graph)
        with linea.no_grad():
            return compiled(x)

    return {"no_grad": measure(plain, params["budget"]), "compiled": measure(planned, params["budget"])}


def mlp_torch(params: dict) -> dict:
    import torch

    torch.set_num_threads(params["threads"])
    layers = []
    for weight, bias in _mlp_weights():
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).eval()
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((params["batch"], MLP_SIZES[0])).astype(np.float32))

    def run():
        with torch.no_grad():
            return model(x)

    return {"eager": measure(run, params["budget"])}


def mlp_onnxruntime(params: dict) -> dict:
    import os
    import tempfile

    import onnxruntime as ort

    from linea import io

    path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
    io.save_model(_linea_mlp(), path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = params["threads"]
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).standard_normal((params["batch"], MLP_SIZES[0])).astype(np.float32)
    feeds = {"input": x}
    return {"session.run": measure(lambda: session.run(None, feeds), params["budget"])}


def _numpy_weights():
    """The benchmark MLP's weights as hand-written NumPy uses them: (W.T contiguous, b)."""
    return [(np.ascontiguousarray(w.T), b) for w, b in _mlp_weights()]


def _numpy_forward(weights, x):
    """The MLP's forward in hand-written NumPy: x @ W.T + b, ReLU between layers."""
    h = x
    last = len(weights) - 1
    for i, (wt, b) in enumerate(weights):
        h = h @ wt
        h += b
        if i < last:
            np.maximum(h, 0, out=h)
    return h


def mlp_numpy(params: dict) -> dict:
    set_threads(params["threads"])
    weights = _numpy_weights()
    x = np.random.default_rng(3).standard_normal((params["batch"], MLP_SIZES[0])).astype(np.float32)
    return {"hand-written": measure(lambda: _numpy_forward(weights, x), params["budget"])}


# ---- training an epoch on the digits ------------------------------------------------------------

def _digits():
    from linea.data import load_digits

    images, labels = load_digits()
    return (images / 16.0).astype(np.float32), labels


def train_linea(params: dict) -> dict:
    import linea
    from linea import nn

    set_threads(params["threads"])
    images, labels = _digits()
    linea.manual_seed(0)
    sizes = MLP_SIZES
    model = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2]),
                          nn.ReLU(), nn.Linear(sizes[2], sizes[3]))
    optimizer = linea.optim.Adam(model.parameters(), lr=1e-3)
    batches = [(linea.from_numpy(images[i:i + 32]), linea.from_numpy(labels[i:i + 32]))
               for i in range(0, len(labels), 32)]

    def epoch(forward=model):
        for x, y in batches:
            loss = nn.functional.cross_entropy(forward(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    compiled = linea.compile(model)
    return {"epoch": measure(epoch, params["budget"] * 4, repeats=5),
            "compiled": measure(lambda: epoch(compiled), params["budget"] * 4, repeats=5)}


def train_torch(params: dict) -> dict:
    import torch

    torch.set_num_threads(params["threads"])
    images, labels = _digits()
    torch.manual_seed(0)
    sizes = MLP_SIZES
    model = torch.nn.Sequential(torch.nn.Linear(sizes[0], sizes[1]), torch.nn.ReLU(),
                                torch.nn.Linear(sizes[1], sizes[2]), torch.nn.ReLU(),
                                torch.nn.Linear(sizes[2], sizes[3]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [(torch.from_numpy(images[i:i + 32]), torch.from_numpy(labels[i:i + 32]))
               for i in range(0, len(labels), 32)]

    def epoch():
        for x, y in batches:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return {"epoch": measure(epoch, params["budget"] * 4, repeats=5)}


def train_sklearn(params: dict) -> dict:
    import warnings

    from sklearn.neural_network import MLPClassifier

    set_threads(params["threads"])
    images, labels = _digits()
    classifier = MLPClassifier(hidden_layer_sizes=MLP_SIZES[1:-1], solver="adam", batch_size=32,
                               learning_rate_init=1e-3, random_state=0, shuffle=False)
    classes = np.unique(labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.partial_fit(images, labels, classes=classes)
        return {"epoch": measure(lambda: classifier.partial_fit(images, labels), params["budget"] * 4,
                                 repeats=5)}


def train_numpy(params: dict) -> dict:
    """A hand-written NumPy loop (forward, backward, Adam) for the same MLP: the floor."""
    set_threads(params["threads"])
    images, labels = _digits()
    rng = np.random.default_rng(0)
    sizes = MLP_SIZES
    params_list = []
    for i, o in zip(sizes, sizes[1:]):
        bound = 1 / np.sqrt(i)
        params_list += [rng.uniform(-bound, bound, (i, o)).astype(np.float32),
                        rng.uniform(-bound, bound, o).astype(np.float32)]
    m = [np.zeros_like(p) for p in params_list]
    v = [np.zeros_like(p) for p in params_list]
    state = {"t": 0}
    onehot = np.eye(sizes[-1], dtype=np.float32)[labels]
    batches = [(images[i:i + 32], onehot[i:i + 32]) for i in range(0, len(labels), 32)]

    def epoch():
        for x, y in batches:
            activations = [x]
            h = x
            for layer in range(len(sizes) - 1):
                h = h @ params_list[2 * layer] + params_list[2 * layer + 1]
                if layer < len(sizes) - 2:
                    h = np.maximum(h, 0)
                activations.append(h)
            e = np.exp(h - h.max(1, keepdims=True))
            grad = (e / e.sum(1, keepdims=True) - y) / len(x)
            grads = [None] * len(params_list)
            for layer in reversed(range(len(sizes) - 1)):
                grads[2 * layer] = activations[layer].T @ grad
                grads[2 * layer + 1] = grad.sum(0)
                if layer:
                    grad = (grad @ params_list[2 * layer].T) * (activations[layer] > 0)
            state["t"] += 1
            t = state["t"]
            for p, g, mi, vi in zip(params_list, grads, m, v):
                mi *= 0.9
                mi += 0.1 * g
                vi *= 0.999
                vi += 0.001 * g * g
                p -= (1e-3 / (1 - 0.9 ** t)) * mi / (np.sqrt(vi / (1 - 0.999 ** t)) + 1e-8)

    return {"epoch": measure(epoch, params["budget"] * 4, repeats=5)}


# ---- peak memory of a training step ---------------------------------------------------------------

MEMORY_SHAPE = (256, 1024, 4096)


def memory_linea(params: dict) -> dict:
    import linea
    from linea import nn

    set_threads(params["threads"])
    batch, n_in, hidden = MEMORY_SHAPE
    model = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_in))
    optimizer = linea.optim.Adam(model.parameters())
    x = linea.from_numpy(np.random.default_rng(4).standard_normal((batch, n_in)).astype(np.float32))
    baseline = rss_kib()
    supported = reset_peak()
    loss = (model(x) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"peak_bytes": (peak_kib() - baseline) * 1024, "peak_reset": supported}


def memory_torch(params: dict) -> dict:
    import torch

    torch.set_num_threads(params["threads"])
    batch, n_in, hidden = MEMORY_SHAPE
    model = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_in))
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((batch, n_in)).astype(np.float32))
    baseline = rss_kib()
    supported = reset_peak()
    loss = (model(x) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"peak_bytes": (peak_kib() - baseline) * 1024, "peak_reset": supported}


# ---- precision: int8 dynamic quantization and bf16 autocast ----------------------------------

PRECISION_SHAPES = [(1, 1024, 1024), (256, 1024, 1024), (64, 4096, 4096), (32, 512, 512)]


def precision_linea(params: dict) -> dict:
    import os

    import linea
    from linea.quantization import kernel_info, quantize_dynamic

    set_threads(params["threads"])
    linea.set_num_threads(params["threads"])  # the int8 kernel's threads too
    x, w, b, _ = _linear_data(*params["shape"])
    layer = _linea_linear(w, b)
    xt = linea.from_numpy(x)
    quantized = quantize_dynamic(layer)
    result = {"path": kernel_info()["path"], "threads_int8": params["threads"]}
    with linea.no_grad():
        result["float32"] = measure(lambda: layer(xt), params["budget"])
        result["int8"] = measure(lambda: quantized(xt), params["budget"])
        os.environ["LINEA_INT8_KERNEL"] = "numpy"
        result["int8_fallback"] = measure(lambda: quantized(xt), params["budget"])
        del os.environ["LINEA_INT8_KERNEL"]
        with linea.autocast("cpu", dtype=linea.bfloat16):
            result["bf16_autocast"] = measure(lambda: layer(xt), params["budget"])
    return result


def precision_torch(params: dict) -> dict:
    import warnings

    import torch

    torch.set_num_threads(params["threads"])
    x, w, b, _ = _linear_data(*params["shape"])
    layer = _torch_linear(w, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(layer), {torch.nn.Linear}, dtype=torch.qint8)
    xt = torch.from_numpy(x)
    result = {}
    with torch.no_grad():
        result["float32"] = measure(lambda: layer(xt), params["budget"])
        result["int8"] = measure(lambda: quantized(xt), params["budget"])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            result["bf16_autocast"] = measure(lambda: layer(xt), params["budget"])
    return result


# ---- Dask scoring throughput ---------------------------------------------------------------------

DASK_CHUNK = 250_000


def dask_linea(params: dict) -> dict:
    """Rows/s of linea.dask.predict over generated rows on a LocalCluster of N processes."""
    import time

    try:
        import dask.array as da
        import distributed
    except ImportError:
        return {"skipped": "dask/distributed not installed (pip install -e '.[dask]')"}
    import linea.dask

    rows, workers = params["rows"], params["workers"]
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None, silence_logs=40,
                                  env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}) as cluster, \
            distributed.Client(cluster) as client:
        x = da.random.default_rng(0).standard_normal((rows, MLP_SIZES[0]), chunks=(DASK_CHUNK, MLP_SIZES[0]),
                                                      dtype=np.float32)
        model = _linea_mlp()
        scores = linea.dask.predict(model, x).sum()  # reduce on the workers: no 10⁷-row transfer
        client.compute(linea.dask.predict(model, x[:DASK_CHUNK]).sum()).result()  # warm-up
        start = time.perf_counter()
        client.compute(scores).result()
        seconds = time.perf_counter() - start
    return {"rows_per_s": rows / seconds, "seconds": seconds}


def dask_numpy(params: dict) -> dict:
    """The same rows generated and scored block by block by hand-written NumPy, one process."""
    import time

    set_threads(1)
    weights = _numpy_weights()
    rows = params["rows"]
    start = time.perf_counter()
    total = 0.0
    for index, first in enumerate(range(0, rows, DASK_CHUNK)):
        x = np.random.default_rng(index).standard_normal((min(DASK_CHUNK, rows - first), MLP_SIZES[0]),
                                                         dtype=np.float32)
        total += float(_numpy_forward(weights, x).sum())
    seconds = time.perf_counter() - start
    return {"rows_per_s": rows / seconds, "seconds": seconds}


# ---- seeded random draws (torch's stream) --------------------------------------------------------

def random_linea(params: dict) -> dict:
    """Times of linea's torch-compatible draws: normal_ of 10⁶ and of 64, randperm(60000), nn.Linear(784, 256)."""
    import linea
    from linea.backend._box_muller import kernel_info

    set_threads(params["threads"])
    budget = params["budget"]
    big, small = linea.empty(10 ** 6), linea.empty(64)
    return {"normal_1e6": measure(lambda: big.normal_(), budget),
            "normal_64": measure(lambda: small.normal_(), budget),
            "randperm_60000": measure(lambda: linea.randperm(60000), budget),
            "linear_init": measure(lambda: linea.nn.Linear(784, 256), budget),
            "kernel": kernel_info()["path"]}


def random_numpy(params: dict) -> dict:
    """NumPy's PCG64 for the same sizes (the bulk-noise baseline)."""
    generator = np.random.default_rng(0)
    big, budget = np.empty(10 ** 6, np.float32), params["budget"]
    return {"normal_1e6": measure(lambda: generator.standard_normal(out=big, dtype=np.float32), budget),
            "randperm_60000": measure(lambda: generator.permutation(60000), budget)}


def random_torch(params: dict) -> dict:
    try:
        import torch
    except ImportError:
        return {"skipped": "torch not installed (pip install -e '.[test]')"}
    torch.set_num_threads(params["threads"])
    budget = params["budget"]
    big, small = torch.empty(10 ** 6), torch.empty(64)
    return {"normal_1e6": measure(lambda: big.normal_(), budget),
            "normal_64": measure(lambda: small.normal_(), budget),
            "randperm_60000": measure(lambda: torch.randperm(60000), budget),
            "linear_init": measure(lambda: torch.nn.Linear(784, 256), budget)}
