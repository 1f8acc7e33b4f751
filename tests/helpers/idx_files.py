"""Tiny files in the IDX format of (Fashion-)MNIST, for loader and zoo tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(arr: np.ndarray) -> bytes:
    """A gzipped IDX file of unsigned bytes holding ``arr``."""
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(head + np.asarray(arr).astype(np.uint8).tobytes())


def fashion_like_files(folder: Path, sizes: tuple[int, int] = (600, 200)) -> None:
    """The four Fashion-MNIST IDX files in ``folder``, tiny and learnable: noise with a
    bright band at a class-dependent height (``sizes``: training and test images)."""
    rng = np.random.default_rng(0)
    for prefix, n in zip(("train", "t10k"), sizes):
        labels = rng.integers(0, 10, size=n)
        images = rng.integers(0, 60, size=(n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 * c: 2 * c + 3] += 180
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(idx_bytes(images))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(idx_bytes(labels))
