"""The kinds table: one row per layer kind, every fact a driver needs, drivers looping over it."""
import pathlib
import re

import pytest

from linea import nn
from linea.io import LayerSpec, layers_of, specs_of
from linea.io.kinds import KINDS, LayerKind, keras_groups

SOURCE = pathlib.Path(__file__).resolve().parents[2] / "src" / "linea"
#: A line of a driver that branches on a layer kind's name (or on a list of them).
BRANCH = re.compile(r"\bkind (==|!=|in|not in) .*(\"(" + "|".join(KINDS) + r")\"|IMAGE_KINDS|_WEIGHTED|"
                    r"_PER_FEATURE)")
#: Branches left outside io/kinds while the drivers move onto the table (issue 28): may only shrink.
BRANCHES_LEFT = 111


def test_every_kind_is_one_row_with_every_fact():
    for name, kind in KINDS.items():
        assert isinstance(kind, LayerKind) and kind.name == name
        assert callable(kind.inspect_row) and callable(kind.layers_entries)
    assert keras_groups() == {"linear": "dense", "qlinear": "dense", "layernorm": "layer_normalization",
                              "batchnorm": "batch_normalization", "conv2d": "conv2d"}


def test_every_kind_the_layer_lists_hold_has_a_row():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.MaxPool2d(2), nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Dropout(0.1),
                          nn.Linear(2, 4), nn.LayerNorm(4), nn.GELU(), nn.Linear(4, 3))
    specs = specs_of(model, input_shape=(1, 6, 6))
    assert {spec.kind for spec in specs} <= set(KINDS)
    for index, spec in enumerate(specs):
        row = KINDS[spec.kind].inspect_row(spec, index, "torch")
        assert set(row) == {"layer", "type", "convention", "shapes", "dtype", "params"}
    assert layers_of(model)[:3] == ["conv2d(stride=1, padding=same, dilation=1, groups=1)",
                                    "batchnorm(eps=1e-05, momentum=0.1)", "relu"]


def test_a_row_refuses_what_a_layers_entry_cannot_say():
    pooling = LayerSpec("maxpool2d", extra={"kernel": (2, 3), "stride": (2, 2), "padding4": (0, 0, 0, 0)})
    with pytest.raises(ValueError, match="window \\(2, 3\\) cannot be written"):
        KINDS["maxpool2d"].layers_entries(pooling)


def test_no_driver_grows_a_new_branch_on_a_kinds_name():
    found = [f"{path.relative_to(SOURCE)}:{number}" for path in SOURCE.rglob("*.py")
             if "kinds" not in path.parts
             for number, line in enumerate(path.read_text().splitlines(), 1) if BRANCH.search(line)]
    assert len(found) <= BRANCHES_LEFT, f"a new branch on a kind's name: ask KINDS instead ({found})"
    assert len(found) == BRANCHES_LEFT, f"{len(found)} left: lower BRANCHES_LEFT to it"
