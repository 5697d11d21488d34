"""Writes torch_stream.npz: torch's outputs for torch_stream_cases.run (python make_torch_stream.py).

Made with torch 2.13.0+cpu (x86-64 Linux); rerun only to move to another torch release.
"""
from pathlib import Path

import numpy as np
import torch

from torch_stream_cases import SEEDS, run

if __name__ == "__main__":
    arrays = {}
    for seed in SEEDS:
        arrays.update(run(torch, seed))
    np.savez_compressed(Path(__file__).with_name("torch_stream.npz"), **arrays)
    print(f"{len(arrays)} arrays from torch {torch.__version__}")
