"""The Flatten-order trap, closed: Keras CNNs (channels-last) and PyTorch CNNs (channels-first)
converted by linea give the other framework's real predictions; copying the kernels without
permuting the features after Flatten is shown to be wrong."""
import numpy as np
import pytest

pytestmark = pytest.mark.oracle  # runs the real framework as the reference

keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the test extra")
torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the test extra")

import linea  # noqa: E402
from linea import convert, nn  # noqa: E402
from linea import keras as lk  # noqa: E402
from _helpers import assert_close  # noqa: E402

RNG = np.random.default_rng(53)


def jitter(model):
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w + 0.3 * RNG.random(w.shape).astype(w.dtype) for w in weights])
    return model


def keras_cnn(batchnorm: bool):
    layers = [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu")]
    if batchnorm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.MaxPooling2D(), keras.layers.Conv2D(5, 2, padding="same", activation="relu"),
               keras.layers.Flatten(), keras.layers.Dense(6, activation="relu"), keras.layers.Dense(3)]
    return jitter(keras.Sequential(layers))


def torch_twin(batchnorm: bool):
    layers = [torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()]
    if batchnorm:
        layers.append(torch.nn.BatchNorm2d(4, eps=1e-3, momentum=0.01))
    layers += [torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 5, 2, padding="same"), torch.nn.ReLU(),
               torch.nn.Flatten(), torch.nn.Linear(45, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)]
    return torch.nn.Sequential(*layers).eval()


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
def test_a_keras_cnn_converted_loads_strictly_into_torch_with_keras_predictions(tmp_path, batchnorm):
    theirs = keras_cnn(batchnorm)
    theirs.save(tmp_path / "cnn.keras")
    net = convert.to_nn(lk.models.load_model(tmp_path / "cnn.keras"))
    twin = torch_twin(batchnorm)
    twin.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in net.state_dict().items()},
                         strict=True)
    images = RNG.standard_normal((5, 8, 8, 3)).astype(np.float32)
    expected = theirs.predict(images, verbose=0)
    with torch.no_grad():
        got = twin(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    assert_close(got, expected, 1e-5)
    assert_close(net(linea.tensor(images.transpose(0, 3, 1, 2))), expected, 1e-5)


def test_the_same_conversion_without_the_flatten_permutation_is_wrong(tmp_path):
    theirs = keras_cnn(batchnorm=False)
    twin = torch_twin(batchnorm=False)
    state = {}
    for index, layer in zip((0, 3, 6, 8), [l for l in theirs.layers if l.get_weights()]):
        kernel, bias = layer.get_weights()
        weight = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T  # transpose only
        state[f"{index}.weight"], state[f"{index}.bias"] = torch.from_numpy(weight.copy()), torch.from_numpy(bias)
    twin.load_state_dict(state, strict=True)  # loads without complaint: shapes all fit
    images = RNG.standard_normal((5, 8, 8, 3)).astype(np.float32)
    with torch.no_grad():
        naive = twin(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    expected = theirs.predict(images, verbose=0)
    assert np.abs(naive - expected).max() > 1e-2 * np.abs(expected).max()


@pytest.mark.parametrize("head", ["flatten", "global_average"])
def test_a_torch_cnn_converted_to_keras_gives_torch_predictions_in_real_keras(tmp_path, head):
    layers = [torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
              torch.nn.AvgPool2d(2), torch.nn.Conv2d(4, 3, 3, stride=2)]
    layers += ([torch.nn.Flatten(), torch.nn.Linear(6, 5)] if head == "flatten" else
               [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 5)])
    theirs = torch.nn.Sequential(*layers)
    theirs(torch.randn(8, 2, 9, 10))  # moves BatchNorm's running statistics
    theirs.eval()
    ours = nn.Sequential(*[getattr(nn, type(m).__name__)(**_settings(m)) for m in layers])
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    keras_model = convert.to_keras(ours.eval(), input_shape=(2, 9, 10))
    keras_model.save(tmp_path / "from_torch.keras")
    real = keras.saving.load_model(tmp_path / "from_torch.keras")
    images = RNG.standard_normal((4, 2, 9, 10)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(images)).numpy()
    assert_close(real.predict(images.transpose(0, 2, 3, 1), verbose=0), expected, 1e-5)
    back = convert.to_nn(keras_model)
    assert_close(back(linea.tensor(images)), expected, 1e-5)


def _settings(module):
    name = type(module).__name__
    if name == "Conv2d":
        return dict(in_channels=module.in_channels, out_channels=module.out_channels,
                    kernel_size=module.kernel_size, stride=module.stride, padding=module.padding)
    if name == "BatchNorm2d":
        return dict(num_features=module.num_features)
    if name == "Linear":
        return dict(in_features=module.in_features, out_features=module.out_features)
    if name == "AvgPool2d":
        return dict(kernel_size=module.kernel_size)
    if name == "AdaptiveAvgPool2d":
        return dict(output_size=module.output_size)
    return {}


def test_conversions_that_cannot_be_exact_are_refused():
    strided_same = lk.Sequential([lk.layers.Input((7, 7, 1)),
                                  lk.layers.Conv2D(2, 2, strides=2, padding="same")])
    with pytest.raises(TypeError, match="unevenly"):
        convert.to_nn(strided_same)
    with pytest.raises(ValueError, match="input_shape"):  # something missing: a ValueError
        convert.to_keras(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)))
    with pytest.raises(TypeError, match="track_running_stats"):
        convert.to_keras(nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)), input_shape=(3,))
    channels_first = lk.Sequential([lk.layers.Input((1, 6, 6)),
                                    lk.layers.Conv2D(2, 3, data_format="channels_first")])
    with pytest.raises(TypeError, match="channels-last"):
        convert.to_nn(channels_first)
