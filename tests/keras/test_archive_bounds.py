"""A ``.keras`` archive is bounded before it is inflated: by what its config can need, by the
compressed bytes it really holds, and while inflating. Zip bombs cost neither time nor memory."""
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest

import linea
from linea import io, keras
from linea.formats import read_keras_archive
from linea.keras._saving import config_weights_budget

pytest.importorskip("h5py")


def raw_zip(path, members):
    """A zip whose central directory says what each member tuple says, true or not:
    (name, stored payload, method, crc, declared compressed size, declared size)."""
    out, central = bytearray(), bytearray()
    for name, payload, method, crc, compressed, size in members:
        offset, encoded = len(out), name.encode()
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, compressed, size,
                           len(encoded), 0) + encoded + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc,
                               compressed, size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    start = len(out)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                                 len(central), start, 0)
    path.write_bytes(bytes(out))
    return path


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """The config.json of a small Dense model, as linea's Keras flavour writes it."""
    path = tmp_path_factory.mktemp("archive") / "good.keras"
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        return archive.read("config.json")


def stored(name, data):
    return (name, data, 0, zlib.crc32(data), len(data), len(data))


def refusal_cost(path) -> tuple[str, float, int]:
    """(error text, seconds, peak KiB growth) of io.load_model in a fresh process."""
    script = ("import resource, time, linea, h5py; from linea import io\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; t = time.perf_counter()\n"
              f"try: io.load_model({str(path)!r}); print('loaded')\n"
              "except linea.FormatError as e: print(time.perf_counter() - t, "
              "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, str(e))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120).stdout.strip()
    assert out and out != "loaded", out
    seconds, grown, message = out.split(" ", 2)
    return message, float(seconds), int(grown)


def test_a_member_that_lies_about_its_compressed_size_is_refused_before_inflating(tmp_path, config):
    # 1 GiB of zeros deflates to ~1 MB; declaring 60 MB compressed keeps the claimed ratio
    # under 20×, which is how such a file got past a ratio check on declared sizes.
    zeros = bytes(1 << 30)
    payload, crc = deflated(zeros), zlib.crc32(zeros)
    del zeros
    path = raw_zip(tmp_path / "lying.keras", [
        stored("config.json", config),
        ("model.weights.h5", payload, 8, crc, 60_000_000, 1 << 30)])
    message, seconds, grown_kib = refusal_cost(path)
    assert "declares 60000000 compressed bytes" in message and "holds at most" in message
    assert seconds < 2.0 and grown_kib < 200 * 1024


def test_a_member_bigger_than_its_config_can_need_is_refused_before_inflating(tmp_path, config):
    # An honest ratio (~2×) but 64 MiB of "weights" for a Dense(4 → 2).
    block = np.random.default_rng(0).integers(0, 4, 1 << 26, dtype=np.uint8).tobytes()
    payload = deflated(block)
    path = raw_zip(tmp_path / "big.keras", [
        stored("config.json", config),
        ("model.weights.h5", payload, 8, zlib.crc32(block), len(payload), len(block))])
    message, seconds, grown_kib = refusal_cost(path)
    assert "more than the" in message and "the model's config can need" in message
    assert seconds < 2.0 and grown_kib < 200 * 1024


def test_an_honestly_declared_zip_bomb_is_refused(tmp_path, config):
    with zipfile.ZipFile(tmp_path / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("config.json", config)
        with bomb.open("model.weights.h5", "w", force_zip64=True) as member:
            for _ in range(16):
                member.write(bytes(1 << 24))
    message, seconds, grown_kib = refusal_cost(tmp_path / "bomb.keras")
    assert "possible zip bomb" in message
    assert seconds < 2.0 and grown_kib < 200 * 1024


def test_a_member_that_inflates_past_its_declared_size_is_refused(tmp_path, config):
    data = bytes(4096)
    path = raw_zip(tmp_path / "short.keras", [
        stored("config.json", config),
        ("model.weights.h5", deflated(data), 8, zlib.crc32(data), len(deflated(data)), 100)])
    with pytest.raises(linea.FormatError, match="corrupt .keras archive|inflates past"):
        io.load_model(path)


def test_the_budget_covers_a_real_model_with_its_optimizer(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 6), np.float32), np.ones((8, 3), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "fit.keras")
    config, weights = read_keras_archive(tmp_path / "fit.keras",
                                         lambda config: config_weights_budget(config, "fit.keras"))
    assert len(weights) <= config_weights_budget(config, "fit.keras")
    again = keras.models.load_model(tmp_path / "fit.keras")
    np.testing.assert_array_equal(again.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())


def test_load_weights_of_a_keras_file_is_bounded_by_the_model_given(tmp_path, config):
    zeros = bytes(1 << 24)
    payload = deflated(zeros)
    path = raw_zip(tmp_path / "w.keras", [
        stored("config.json", config),
        ("model.weights.h5", payload, 8, zlib.crc32(zeros), len(payload), len(zeros))])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    before = model.layers[0].kernel.numpy().copy()
    with pytest.raises(linea.FormatError, match="zip bomb"):
        model.load_weights(path)
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), before)
