"""File formats as bytes ⇄ tensors and configs, bounded by the file's own size.

The layer below the flavours and ``linea.io``: it knows how safetensors, Keras's HDF5
layouts (Keras 3 ``.weights.h5`` and Keras 2's legacy ``.h5``) and ``.keras`` zip archives
hold their tensors and configs, and nothing of what a model makes of them. It depends only
on ``linea._files``, ``linea._errors`` and the backend; every reader checks sizes before a
parser allocates and raises ``linea.FormatError`` on a bad file.

- safetensors: ``read_safetensors``, ``read_safetensors_header``, ``check_safetensors_header``,
  ``safetensors_parts`` (the writer, header then tensor by tensor), ``check_savable``.
- Keras 3 weights: ``read_weights_file``, ``read_weights_h5``, ``weights_h5_bytes``.
- Keras 2 legacy HDF5: ``read_legacy_h5``, ``legacy_kind``, ``is_legacy_h5``, ``LegacyFile``.
- ``.keras`` archives: ``read_keras_archive`` (members bounded before inflating),
  ``keras_archive_bytes``.
"""
from linea.formats._hdf5 import h5py_module, read_weights_file, read_weights_h5, weights_h5_bytes
from linea.formats._legacy_h5 import LegacyFile, is_legacy_h5, legacy_kind, read_legacy_h5
from linea.formats._safetensors import (DTYPE_SIZES, ORDER_KEY, TREE_KEY,
                                        check_safetensors_header, check_savable, read_safetensors,
                                        read_safetensors_header, safetensors_parts)
from linea.formats._zip import keras_archive_bytes, read_keras_archive

__all__ = ["read_safetensors", "read_safetensors_header", "check_safetensors_header",
           "safetensors_parts", "check_savable", "DTYPE_SIZES", "ORDER_KEY", "TREE_KEY",
           "read_weights_file",
           "read_weights_h5", "weights_h5_bytes", "h5py_module", "read_legacy_h5", "legacy_kind",
           "is_legacy_h5", "LegacyFile", "read_keras_archive", "keras_archive_bytes"]
