"""Every example runs (fast mode) and learns something; the demo runs end to end."""
import importlib.util
import pathlib
import subprocess
import sys


import linea

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_listed_here():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(
        ["linear_regression", "mlp_classifier", "classification_head", "autoencoder",
         "transformer_block", "linear_vs_conv", "port_keras_cnn"])


def test_linear_regression(capsys):
    result = load_example("linear_regression").main(["--fast"])
    assert result["final_loss"] < result["first_loss"] / 100
    assert "learned weight" in capsys.readouterr().out


def test_mlp_classifier():
    assert load_example("mlp_classifier").main(["--fast"])["accuracy"] > 0.8


def test_classification_head_trains_only_the_head():
    result = load_example("classification_head").main(["--fast"])
    assert result["backbone_unchanged"] and result["trainable"] == 64 * 10 + 10
    assert result["accuracy"] > 0.2


def test_autoencoder():
    result = load_example("autoencoder").main(["--fast"])
    assert result["after"] < result["before"]


def test_transformer_block():
    module = load_example("transformer_block")
    attention = module.MultiHeadSelfAttention(16, 4)
    assert all(getattr(attention, n).bias is None for n in ("q_proj", "k_proj", "v_proj"))
    result = module.main(["--fast"])
    assert result["final_loss"] < result["first_loss"]


def test_port_keras_cnn_keeps_predictions_and_shows_the_flatten_trap(capsys):
    result = load_example("port_keras_cnn").main([])
    assert result["keras_accuracy"] > 0.8
    assert result["agreement"] == 1.0 and result["difference"] < 1e-4
    assert result["naive_agreement"] < 0.9 and result["naive_difference"] > 1000 * result["difference"]
    assert "no error was raised" in capsys.readouterr().out


def test_linear_vs_conv(capsys):
    results = load_example("linear_vs_conv").main(["--fast"])
    assert results["Conv2d (CNN)"]["parameters"] < results["Linear (MLP)"]["parameters"]
    assert "parameters" in capsys.readouterr().out


def test_cli_demo_runs_and_reloads_identically(tmp_path):
    checkpoint = tmp_path / "demo.safetensors"
    plot = tmp_path / "curves.png"
    result = subprocess.run(
        [sys.executable, "-m", "linea", "demo", "--epochs", "20", "--checkpoint", str(checkpoint),
         "--plot", str(plot)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "predictions identical" in result.stdout
    accuracy = float(result.stdout.split("test accuracy: ")[1].split("%")[0])
    assert accuracy >= 96.0
    assert plot.stat().st_size > 1000 and checkpoint.exists()
    state = linea.load(checkpoint)
    assert state["epoch"] == 20 and list(state["model"]) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_cli_demo_sets_int8_and_bf16_autocast_beside_float32(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "linea", "demo", "--epochs", "10", "--quantize", "--autocast", "bf16",
         "--checkpoint", str(tmp_path / "demo.safetensors")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()
            if line.startswith(("float32 ", "int8 ", "bf16 "))}
    assert set(rows) == {"float32", "int8", "bf16"}

    def accuracy(line):
        return float(line.split("accuracy ")[1].split("%")[0])

    assert abs(accuracy(rows["int8"]) - accuracy(rows["float32"])) <= 0.5
    assert abs(accuracy(rows["bf16"]) - accuracy(rows["float32"])) <= 0.5
    assert "smaller" in rows["int8"] and "kernel " in rows["int8"]


def test_cli_rejects_bad_arguments():
    result = subprocess.run([sys.executable, "-m", "linea", "demo", "--epochs", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "at least 1" in result.stderr
    result = subprocess.run([sys.executable, "-m", "linea", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2


def test_plot_without_matplotlib_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from linea.cli import main; "
            f"sys.exit(main(['demo', '--epochs', '1', '--quiet', '--plot', r'{tmp_path / 'x.png'}']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and "pip install -e '.[plot]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_demo_leaves_nothing_behind_without_checkpoint(tmp_path):
    result = subprocess.run([sys.executable, "-m", "linea", "demo", "--epochs", "1"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "temporary folder" in result.stdout and "predictions identical" in result.stdout
    assert list(tmp_path.iterdir()) == []
