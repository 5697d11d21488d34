"""One sequence of seeded draws, written once for both libraries: ``run(torch, seed)`` made the
golden file (``make_torch_stream.py``); ``run(linea, seed)`` must give the same bytes."""
import numpy as np

SEEDS = (0, 42)


def _numpy(value):
    value = value.detach() if hasattr(value, "detach") else value
    return np.ascontiguousarray(value.numpy())


def run(lib, seed: int) -> dict:
    """The draws after ``lib.manual_seed(seed)``, by name, as NumPy arrays (order matters)."""
    nn, data = lib.nn, lib.utils.data
    lib.manual_seed(seed)
    out = {"rand_1000": lib.rand(1000), "randn_7": lib.randn(7), "randn_17": lib.randn(17),
           "randn_1000": lib.randn(1000), "randn_64_float64": lib.randn(64, dtype=lib.float64),
           "rand_33_float64": lib.rand(33, dtype=lib.float64), "randint": lib.randint(-4, 10, (50,)),
           "randperm_100": lib.randperm(100), "uniform_": lib.empty(5, 6).uniform_(-0.5, 2.0),
           "normal_": lib.empty(40).normal_(0.1, 3.0)}
    layer = nn.Linear(3, 30)
    out["linear_weight"], out["linear_bias"] = layer.weight, layer.bias
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    for index, parameter in enumerate(model.parameters()):
        out[f"sequential_{index}"] = parameter
    out["trunc_normal_"] = nn.init.trunc_normal_(lib.empty(300), std=0.02, a=-0.04, b=0.04)
    out["xavier_normal_"] = nn.init.xavier_normal_(lib.empty(20, 10))
    out["dropout"] = nn.functional.dropout(lib.ones(200), 0.3)
    loader = data.DataLoader(data.TensorDataset(lib.arange(100)), batch_size=16, shuffle=True)
    out["loader_epochs"] = lib.cat([batch[0] for _ in range(3) for batch in loader])
    out["random_split"] = lib.tensor(list(data.random_split(range(20), [0.25, 0.75])[0].indices))
    out["state"] = lib.get_rng_state()
    return {f"{seed}/{name}": _numpy(value) for name, value in out.items()}
