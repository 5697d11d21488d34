"""nn.Module, Sequential, ModuleList, Identity and clip_grad_norm_."""
from collections import OrderedDict

import numpy as np
import pytest

import linea
from linea import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 30)
        self.fc2 = nn.Linear(30, 2)
        self.register_buffer("scale", linea.ones(2))
        self.register_buffer("cache", linea.zeros(1), persistent=False)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()) * self.scale


class TestRegistration:
    def test_parameters_children_modules(self):
        net = Net()
        assert [n for n, _ in net.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
        assert len(list(net.parameters())) == 4
        assert [n for n, _ in net.named_children()] == ["fc1", "fc2"]
        assert len(list(net.modules())) == 3
        assert [n for n, _ in net.named_buffers()] == ["scale", "cache"]

    def test_state_dict_keys_include_persistent_buffers_only(self):
        # PyTorch's order: a module's own parameters and buffers, then its children's.
        assert list(Net().state_dict()) == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]

    def test_shared_parameters_are_listed_once(self):
        layer = nn.Linear(2, 2)
        model = nn.Sequential(layer, layer)
        assert len(list(model.parameters())) == 2
        assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]

    def test_assigning_a_tensor_over_a_parameter_is_an_error(self):
        layer = nn.Linear(2, 2)
        with pytest.raises(TypeError, match="Parameter or None expected"):
            layer.weight = linea.ones(2, 2)
        layer.bias = None
        assert layer.bias is None and list(layer.state_dict()) == ["weight"]

    def test_assignment_before_init_is_explained(self):
        class Broken(nn.Module):
            def __init__(self):
                self.fc = nn.Linear(2, 2)

        with pytest.raises(AttributeError, match="super\\(\\).__init__"):
            Broken()

    def test_forward_is_required(self):
        with pytest.raises(NotImplementedError, match="forward"):
            nn.Module()(1)

    def test_get_submodule_and_delattr(self):
        net = Net()
        assert net.get_submodule("fc2") is net.fc2
        del net.fc2
        assert [n for n, _ in net.named_children()] == ["fc1"]


class TestStateDict:
    def test_round_trip(self):
        a, b = Net(), Net()
        result = b.load_state_dict(a.state_dict())
        assert result.missing_keys == [] and result.unexpected_keys == []
        for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert np.array_equal(pa.numpy(), pb.numpy()), name

    def test_state_dict_shares_memory_but_is_detached(self):
        layer = nn.Linear(2, 2)
        weight = layer.state_dict()["weight"]
        assert not weight.requires_grad
        assert np.shares_memory(weight.numpy(), layer.weight.numpy())

    def test_loaded_values_are_copied(self):
        source = {"weight": np.ones((2, 2), np.float64), "bias": np.zeros(2)}
        layer = nn.Linear(2, 2)
        layer.load_state_dict(source)
        source["weight"][0, 0] = 9
        assert layer.weight.dtype == linea.float32 and layer.weight.numpy()[0, 0] == 1

    def test_every_problem_is_listed_and_nothing_changes(self):
        net = Net()
        before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
        bad = {k: v for k, v in Net().state_dict().items() if k != "fc1.bias"}
        bad["fc2.weight"] = linea.zeros(3, 30)
        bad["extra"] = linea.zeros(1)
        with pytest.raises(linea.StateDictError) as info:
            net.load_state_dict(bad)
        message = str(info.value)
        assert '"fc1.bias"' in message and '"extra"' in message
        assert "size mismatch for fc2.weight" in message and "(3, 30)" in message and "(2, 30)" in message
        for key, value in net.state_dict().items():
            assert np.array_equal(value.numpy(), before[key]), key

    def test_state_dict_error_is_value_and_runtime_error(self):
        with pytest.raises(ValueError):
            nn.Linear(2, 2).load_state_dict({})
        with pytest.raises(RuntimeError):
            nn.Linear(2, 2).load_state_dict({})

    def test_non_strict_reports_missing_and_unexpected(self):
        layer = nn.Linear(2, 2)
        result = layer.load_state_dict({"weight": linea.zeros(2, 2), "junk": linea.ones(1)}, strict=False)
        assert result.missing_keys == ["bias"] and result.unexpected_keys == ["junk"]
        assert layer.weight.numpy().sum() == 0

    def test_non_strict_still_rejects_size_mismatch(self):
        with pytest.raises(linea.StateDictError, match="size mismatch"):
            nn.Linear(2, 2).load_state_dict({"weight": linea.zeros(3, 2)}, strict=False)

    def test_non_tensor_values_are_reported(self):
        with pytest.raises(linea.StateDictError, match="not a tensor"):
            nn.Linear(2, 2).load_state_dict({"weight": "zeros", "bias": linea.zeros(2)})


class TestModesDtypesGrads:
    def test_train_eval(self):
        net = Net()
        assert net.training and net.fc1.training
        assert net.eval() is net
        assert not net.training and not net.fc1.training
        net.train()
        assert net.fc2.training

    def test_to_double_and_back(self):
        net = Net().double()
        assert all(p.dtype == linea.float64 for p in net.parameters())
        assert net(linea.ones(1, 5, dtype=linea.float64)).dtype == linea.float64
        net.to(linea.float32)
        assert net.fc1.weight.dtype == linea.float32 and net.scale.dtype == linea.float32

    def test_zero_grad_and_requires_grad(self):
        net = Net()
        net(linea.ones(3, 5)).sum().backward()
        assert all(p.grad is not None for p in net.parameters())
        net.zero_grad()
        assert all(p.grad is None for p in net.parameters())
        net.requires_grad_(False)
        assert not net(linea.ones(1, 5)).requires_grad

    def test_repr_prints_the_tree(self):
        text = repr(Net())
        assert text.startswith("Net(\n  (fc1): Linear(in_features=5, out_features=30, bias=True)")
        model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Identity()))
        assert repr(model) == (
            "Sequential(\n  (0): Linear(in_features=3, out_features=4, bias=True)\n"
            "  (1): Sequential(\n    (0): Identity()\n  )\n)"
        )

    def test_modules_are_never_pickled(self):
        import pickle

        with pytest.raises(TypeError, match="never pickles"):
            pickle.dumps(nn.Linear(2, 2))


class TestContainers:
    def test_sequential_indexing_len_iteration(self):
        model = nn.Sequential(nn.Linear(3, 4), nn.Identity(), nn.Linear(4, 1))
        assert len(model) == 3 and isinstance(model[-1], nn.Linear)
        assert len(model[:2]) == 2 and list(model[:2].state_dict()) == ["0.weight", "0.bias"]
        assert [type(m).__name__ for m in model] == ["Linear", "Identity", "Linear"]
        assert model(linea.ones(2, 3)).shape == (2, 1)

    def test_sequential_from_ordered_dict(self):
        model = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("out", nn.Linear(3, 1))]))
        assert list(model.state_dict()) == ["fc.weight", "fc.bias", "out.weight", "out.bias"]

    def test_append_insert_delete(self):
        model = nn.Sequential(nn.Linear(2, 2))
        model.append(nn.Identity())
        model.insert(0, nn.Identity())
        assert [type(m).__name__ for m in model] == ["Identity", "Linear", "Identity"]
        del model[0]
        assert list(model.state_dict()) == ["0.weight", "0.bias"]

    def test_module_list(self):
        layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        holder = nn.Sequential()
        holder.add_module("layers", layers)
        assert len(list(holder.parameters())) == 6
        assert list(holder.state_dict())[0] == "layers.0.weight"


class TestClipGradNorm:
    def test_clips_to_max_norm_and_returns_the_total(self):
        a = linea.ones(3, requires_grad=True)
        b = linea.ones(4, requires_grad=True)
        a.grad, b.grad = linea.full((3,), 3.0), linea.full((4,), 4.0)
        total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
        expected = np.sqrt(3 * 9 + 4 * 16)
        assert np.isclose(total.item(), expected, rtol=1e-6)
        joint = np.sqrt((a.grad.numpy() ** 2).sum() + (b.grad.numpy() ** 2).sum())
        assert np.isclose(joint, 1.0, rtol=1e-5)

    def test_no_clipping_below_max(self):
        a = linea.ones(2, requires_grad=True)
        a.grad = linea.tensor([0.3, 0.4])
        nn.utils.clip_grad_norm_(a, 1.0)
        assert np.allclose(a.grad.numpy(), [0.3, 0.4])

    def test_inf_norm_and_nonfinite(self):
        a = linea.ones(2, requires_grad=True)
        a.grad = linea.tensor([-5.0, 2.0])
        assert nn.utils.clip_grad_norm_(a, 1.0, norm_type="inf" and float("inf")).item() == 5.0
        a.grad = linea.tensor([float("nan"), 1.0])
        with pytest.raises(RuntimeError, match="non-finite"):
            nn.utils.clip_grad_norm_(a, 1.0, error_if_nonfinite=True)
