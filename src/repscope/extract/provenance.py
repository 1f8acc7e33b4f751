"""Content hashes that identify a model's weights and a dataset.

Both hashes are SHA-256 digests over a canonical byte stream, so they are
stable across processes, machines and library versions:

* :func:`weights_hash` — for each ``state_dict`` entry in sorted name order:
  the name, dtype, shape and the raw bytes of the tensor (CPU, contiguous).
  Two modules hash equal iff they have the same parameter/buffer names,
  dtypes, shapes and bit-identical values.
* :func:`dataset_hash` — for arrays/tensors: dtype, the per-sample shape
  ``shape[1:]`` and the raw C-order bytes.  The sample count is implied by the
  byte length, so hashing an array equals hashing its row blocks in order
  (:class:`DatasetHasher`), which lets a dataset streamed in batches be hashed
  on the fly.  For lists of strings: each string's UTF-8 bytes with an 8-byte
  length prefix.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError

__all__ = ["DatasetHasher", "dataset_hash", "texts_hash", "weights_hash"]


def _tensor_bytes(t: Any) -> bytes:
    """Raw bytes of a tensor of any dtype (bfloat16 included)."""
    import torch

    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


def weights_hash(module: Any) -> str:
    """SHA-256 (hex) over a torch module's ``state_dict`` (names, dtypes, shapes, values)."""
    h = hashlib.sha256(b"repscope-weights-v1\0")
    state = module.state_dict()
    for name in sorted(state):
        t = state[name]
        if not hasattr(t, "detach"):  # extra state objects
            h.update(f"{name}\0{type(t).__name__}\0{t!r}\n".encode())
            continue
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()


def texts_hash(texts: Sequence[str]) -> str:
    """SHA-256 (hex) of a list of strings (order-sensitive, unambiguous)."""
    h = hashlib.sha256(b"repscope-texts-v1\0")
    for s in texts:
        b = s.encode("utf-8")
        h.update(struct.pack("<Q", len(b)))
        h.update(b)
    return h.hexdigest()


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        import torch

        t = x.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)
        return np.ascontiguousarray(t.numpy())
    return np.ascontiguousarray(np.asarray(x))


class DatasetHasher:
    """Incremental :func:`dataset_hash` over the row blocks of a dataset.

    ``update(block)`` accepts arrays/tensors (rows are samples), tuples/lists
    (the first element is the input, as in ``(x, y)`` batches) and mappings
    (hashed key by key, so their hash depends on the batching).
    """

    def __init__(self) -> None:
        self._h = hashlib.sha256(b"repscope-data-v1\0")
        self._header: tuple[str, tuple[int, ...]] | None = None
        self.n = 0

    def update(self, block: Any) -> None:
        if isinstance(block, Mapping):
            for k in sorted(block, key=str):
                v = block[k]
                if hasattr(v, "shape"):
                    a = _as_numpy(v)
                    self._h.update(f"\0map:{k}:{a.dtype.str}:{a.shape}\0".encode())
                    self._h.update(a.tobytes())
            return
        if isinstance(block, (tuple, list)) and block and not np.isscalar(block[0]):
            self.update(block[0])
            return
        a = _as_numpy(block)
        if a.ndim == 0:
            raise RepscopeError("cannot hash a 0-d batch; batches need a sample axis")
        header = (a.dtype.str, tuple(a.shape[1:]))
        if self._header is None:
            self._header = header
            self._h.update(f"{header[0]}:{header[1]}\0".encode())
        elif header != self._header:
            self._h.update(f"\0switch:{header[0]}:{header[1]}\0".encode())
            self._header = header
        self._h.update(a.tobytes())
        self.n += int(a.shape[0])

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def dataset_hash(data: Any) -> str:
    """SHA-256 (hex) of an array/tensor dataset or a list of strings.

    Equal to feeding the same rows in order, in any blocking, to
    :class:`DatasetHasher`.
    """
    if isinstance(data, (list, tuple)) and data and all(isinstance(s, str) for s in data):
        return texts_hash(data)
    h = DatasetHasher()
    h.update(data)
    return h.hexdigest()
