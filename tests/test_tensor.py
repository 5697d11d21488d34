"""linea.Tensor: creation, dtype inference, attributes, conversions and in-place writes."""
import re

import numpy as np
import pytest

import linea


class TestDtypeInference:
    def test_python_floats_are_float32(self):
        assert linea.tensor([1.0, 2.0]).dtype == linea.float32

    def test_python_ints_are_int64(self):
        assert linea.tensor([1, 2]).dtype == linea.int64

    def test_python_bools_are_bool(self):
        assert linea.tensor([True, False]).dtype == linea.bool

    def test_mixed_ints_and_floats_are_float32(self):
        assert linea.tensor([1, 2.5]).dtype == linea.float32

    @pytest.mark.numpy_only(reason="float16: the standard has no half precision")
    def test_numpy_arrays_keep_their_dtype(self):
        for dtype in (np.float64, np.float16, np.int32, np.uint8):
            assert linea.tensor(np.zeros(2, dtype)).dtype == dtype

    def test_explicit_dtype_wins(self):
        t = linea.tensor([1, 2], dtype=linea.float64)
        assert t.dtype == linea.float64 and t.tolist() == [1.0, 2.0]

    def test_tensor_copies_but_from_numpy_shares(self):
        array = np.zeros(3, np.float32)
        copied, shared = linea.tensor(array), linea.from_numpy(array)
        array[0] = 7
        assert copied[0].item() == 0 and shared[0].item() == 7

    def test_non_numeric_data_is_rejected(self):
        with pytest.raises(TypeError, match="non-numeric"):
            linea.tensor(["a", "b"])

    def test_dtype_prints_like_torch(self):
        assert repr(linea.float32) == "linea.float32"
        assert linea.float32 == np.float32 and linea.float32 != linea.float64


class TestFactories:
    @pytest.mark.parametrize("factory", [linea.zeros, linea.ones, linea.empty, linea.rand, linea.randn])
    def test_size_as_varargs_or_sequence(self, factory):
        assert factory(2, 3).shape == (2, 3)
        assert factory((2, 3)).shape == (2, 3)
        assert factory([4]).shape == (4,)
        assert factory(2, 3).dtype == linea.float32

    def test_factory_dtype_and_requires_grad(self):
        t = linea.zeros(2, dtype=linea.float64, requires_grad=True)
        assert t.dtype == linea.float64 and t.requires_grad and t.is_leaf

    def test_negative_size_is_rejected(self):
        with pytest.raises(ValueError, match="non-negative"):
            linea.zeros(2, -1)

    def test_full_infers_dtype_from_value(self):
        assert linea.full((2,), 1.5).dtype == linea.float32
        assert linea.full((2,), 3).dtype == linea.int64
        assert linea.full((2,), True).dtype == linea.bool

    def test_arange(self):
        assert linea.arange(5).tolist() == [0, 1, 2, 3, 4]
        assert linea.arange(5).dtype == linea.int64
        assert linea.arange(0, 1, 0.25).dtype == linea.float32
        assert linea.arange(1, 7, 2).tolist() == [1, 3, 5]

    def test_rand_values_lie_in_unit_interval(self):
        values = linea.rand(10000).numpy()
        assert values.min() >= 0 and values.max() < 1

    def test_integer_requires_grad_is_rejected(self):
        with pytest.raises(TypeError, match="floating point"):
            linea.zeros(2, dtype=linea.int64, requires_grad=True)

    def test_like_factories(self):
        t = linea.zeros(2, 3, dtype=linea.float64)
        assert linea.ones_like(t).dtype == linea.float64
        assert linea.zeros_like(t).shape == (2, 3)
        assert linea.full_like(t, 7).tolist() == [[7.0] * 3] * 2


class TestGenerators:
    def test_manual_seed_repeats_the_sequence(self):
        linea.manual_seed(3)
        first = linea.randn(5).tolist()
        linea.manual_seed(3)
        assert linea.randn(5).tolist() == first

    def test_generator_manual_seed_returns_the_generator(self):
        generator = linea.Generator()
        assert generator.manual_seed(1) is generator

    def test_explicit_generators_are_independent_of_the_global_one(self):
        a = linea.randn(4, generator=linea.Generator().manual_seed(9)).tolist()
        linea.manual_seed(0)
        linea.randn(100)
        b = linea.randn(4, generator=linea.Generator().manual_seed(9)).tolist()
        assert a == b

    def test_get_state_set_state_resumes_the_stream(self):
        generator = linea.Generator().manual_seed(5)
        linea.rand(3, generator=generator)
        state = generator.get_state()
        expected = linea.rand(6, generator=generator).tolist()
        other = linea.Generator().manual_seed(99)
        other.set_state(state)
        assert linea.rand(6, generator=other).tolist() == expected
        assert state.dtype == linea.uint8

    def test_set_state_rejects_garbage(self):
        with pytest.raises(ValueError, match="not a generator state"):
            linea.Generator().set_state(linea.tensor(np.frombuffer(b"junk", np.uint8).copy()))


class TestAttributes:
    def test_shape_ndim_dtype(self):
        t = linea.zeros(2, 3, 4)
        assert t.shape == (2, 3, 4) and t.ndim == 3 and t.dim() == 3
        assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.numel() == 24
        assert str(t.device) == "cpu"

    def test_numpy_item_tolist_array(self):
        t = linea.tensor([[1.0, 2.0]])
        assert isinstance(t.numpy(), np.ndarray)
        assert t.tolist() == [[1.0, 2.0]]
        assert linea.tensor(3.5).item() == 3.5
        assert np.asarray(t).shape == (1, 2)
        assert np.asarray(linea.ones(2, requires_grad=True) * 2).tolist() == [2.0, 2.0]

    def test_item_needs_one_element(self):
        with pytest.raises(ValueError, match="2 elements"):
            linea.ones(2).item()

    def test_bool_of_many_elements_is_ambiguous(self):
        with pytest.raises(RuntimeError, match="ambiguous"):
            bool(linea.ones(2))

    def test_repr_looks_like_torch(self):
        assert repr(linea.tensor([1.0, 2.0])) == "tensor([1., 2.])"
        assert repr(linea.tensor([1, 2])) == "tensor([1, 2])"
        assert "dtype=linea.float64" in repr(linea.tensor([1.0], dtype=linea.float64))
        assert "requires_grad=True" in repr(linea.ones(1, requires_grad=True))
        assert "grad_fn=<MulBackward>" in repr(linea.ones(1, requires_grad=True) * 2)

    @pytest.mark.numpy_only(reason="float16: the standard has no half precision")
    def test_conversions(self):
        t = linea.tensor([1.7, -2.2])
        assert t.double().dtype == linea.float64
        assert t.long().tolist() == [1, -2]
        assert t.to(linea.float16).dtype == linea.float16
        assert linea.tensor([1, 0]).bool().tolist() == [True, False]
        assert t.float() is t

    def test_tensors_are_never_pickled(self):
        import pickle

        with pytest.raises(TypeError, match="never pickles"):
            pickle.dumps(linea.ones(2))


class TestInPlace:
    def test_fill_zero_copy(self):
        t = linea.empty(2, 2)
        t.fill_(3.0)
        assert t.tolist() == [[3.0, 3.0]] * 2
        t.zero_()
        assert t.sum().item() == 0
        t.copy_(linea.tensor([1.0, 2.0]))  # broadcasts like PyTorch
        assert t.tolist() == [[1.0, 2.0]] * 2

    def test_copy_with_bad_shape_names_both_shapes(self):
        with pytest.raises(linea.ShapeError, match=r"\(3,\).*\(2, 2\)"):
            linea.zeros(2, 2).copy_(linea.ones(3))

    def test_in_place_on_leaf_requiring_grad_needs_no_grad(self):
        w = linea.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="no_grad"):
            w.fill_(0)
        with linea.no_grad():
            w.fill_(0)
            w += 1
        assert w.tolist() == [1.0, 1.0] and w.requires_grad

    def test_uniform_and_normal_fill_in_place(self, generator):
        t = linea.empty(1000)
        t.uniform_(-2, 3, generator=generator)
        assert -2 <= t.min().item() and t.max().item() < 3
        t.normal_(5.0, 0.1, generator=generator)
        assert abs(t.mean().item() - 5.0) < 0.05

    def test_data_is_assignable_and_detached(self):
        w = linea.nn.Parameter(linea.zeros(2, 2))
        w.data = linea.ones(3)
        assert w.shape == (3,) and w.requires_grad
        assert not w.data.requires_grad
        w.data.fill_(5.0)  # .data shares memory, outside the graph
        assert w.tolist() == [5.0, 5.0, 5.0]

    @pytest.mark.numpy_only(reason="integer-array __setitem__ is not in the standard")
    def test_setitem(self):
        t = linea.zeros(3)
        t[1] = 4.0
        t[linea.tensor([0, 2])] = linea.tensor([1.0, 2.0])
        assert t.tolist() == [1.0, 4.0, 2.0]


class TestNoGradAndThreads:
    def test_no_grad_context_and_decorator(self):
        x = linea.ones(2, requires_grad=True)
        with linea.no_grad():
            y = x * 2
            with linea.enable_grad():
                z = x * 2
        assert not y.requires_grad and y.grad_fn is None
        assert z.requires_grad

        @linea.no_grad()
        def double(t):
            return t * 2

        assert not double(x).requires_grad
        assert linea.is_grad_enabled()

    def test_set_grad_enabled(self):
        with linea.set_grad_enabled(False):
            assert not linea.is_grad_enabled()
        assert linea.is_grad_enabled()

    def test_threads_round_trip(self):
        before = linea.get_num_threads()
        linea.set_num_threads(1)
        assert linea.get_num_threads() == 1
        linea.set_num_threads(before)
        assert linea.get_num_threads() == before

    def test_set_num_threads_rejects_nonsense(self):
        with pytest.raises(ValueError, match="positive int"):
            linea.set_num_threads(0)


def test_cuda_without_a_gpu_says_which_piece_is_missing():
    """No CuPy or no device here: every way of asking for CUDA raises the same specific error."""
    import importlib.util

    if linea.cuda.is_available():
        pytest.skip("a CUDA device is present")
    reason = linea.cuda.unavailable_reason()
    assert linea.cuda.device_count() == 0 and reason
    if importlib.util.find_spec("cupy") is None:
        assert "CuPy is not installed" in reason and "pip install -e '.[cuda]'" in reason
    attempts = [lambda: linea.device("cuda"), lambda: linea.tensor([1.0], device="cuda:0"),
                lambda: linea.ones(2).to("cuda"), lambda: linea.ones(2).cuda(),
                lambda: linea.nn.Linear(2, 3).cuda(), lambda: linea.nn.Linear(2, 3).to("cuda:1")]
    for attempt in attempts:
        with pytest.raises(RuntimeError, match="is not available: " + reason.split(";")[0]):
            attempt()
    layer = linea.nn.Linear(2, 3)
    before = layer.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError):
        layer.to("cuda", dtype=linea.float64)
    assert layer.weight.dtype == linea.float32 and (layer.weight.detach().numpy() == before).all()


class TestObjectArraysOfNumbers:
    """A NumPy object array (a pandas frame of mixed columns gives one) converts when every
    element is a real number, inferred as Python numbers are; else the first bad one is named."""

    def test_numbers_convert_with_python_inference(self):
        mixed = np.array([[1, 2.5], [np.float64(3), np.int32(4)]], dtype=object)
        made = linea.tensor(mixed)
        assert made.dtype == linea.float32
        np.testing.assert_array_equal(made.numpy(), [[1, 2.5], [3, 4]])
        assert linea.tensor(np.array([1, 2], dtype=object)).dtype == linea.int64
        assert linea.tensor(np.array([True, False], dtype=object)).dtype == linea.bool
        assert linea.tensor(np.array([1, 2], dtype=object), dtype=linea.float64).dtype == linea.float64

    @pytest.mark.parametrize("bad, where, shown", [
        (np.array([[1, "a"], [3, 4]], dtype=object), "[0, 1]", "'a' (str)"),
        (np.array([1.0, None], dtype=object), "[1]", "None (NoneType)"),
        (np.array([1, 2j], dtype=object), "[1]", "2j (complex)")])
    def test_anything_else_is_named(self, bad, where, shown):
        with pytest.raises(TypeError, match=re.escape(f"element {where} is {shown}, not a real number")):
            linea.tensor(bad)
