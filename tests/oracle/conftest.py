"""Oracle tests: real PyTorch / Keras / ONNX Runtime on the same inputs and weights."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
