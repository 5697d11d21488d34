"""Layers that move values without weights: ``flatten`` (to (N, features); of images, their
(C, H, W) order recorded) and ``dropout`` (the identity at inference, its rate kept)."""
from __future__ import annotations

from linea.io.kinds._kind import LayerKind, plain_row

__all__ = ["FLATTEN", "DROPOUT"]

FLATTEN = LayerKind("flatten", None, lambda spec, index, convention: plain_row(spec, "flatten"),
                    lambda spec: ["flatten"])
DROPOUT = LayerKind("dropout", None, lambda spec, index, convention: plain_row(spec, "dropout"),
                    lambda spec: [f"dropout(p={spec.rate!r})"])
