"""Tiny files in the IDX format of (Fashion-)MNIST, for loader and zoo tests."""

from __future__ import annotations

import gzip

import numpy as np


def idx_bytes(arr: np.ndarray) -> bytes:
    """A gzipped IDX file of unsigned bytes holding ``arr``."""
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(head + np.asarray(arr).astype(np.uint8).tobytes())
