"""Row chunks of representations that need not fit in memory: arrays, ``.npy`` files, Zarr.

:func:`iter_chunks` yields aligned row blocks of several sources; a ``.npy``
path is read with a background thread into alternating buffers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from repscope.core.arrays import Array
from repscope.core.errors import InputShapeError, InputValueError, InvalidParameterError
from repscope.core.linalg import MIXED_BLOCK

#: bytes of the assembled chunk buffer (rows × total width) the default chunk size aims at
CHUNK_BYTES = 128 * 2**20


# ==================================================================== sources
class ChunkSource:
    """Row-sliceable view of one representation: shape, dtype, ``read(a, b)``."""

    def __init__(self, obj: Any, name: str) -> None:
        self.name = name
        self._file = None
        self._closer = None
        if isinstance(obj, (str, os.PathLike)):
            path = os.fspath(obj)
            if not path.endswith(".npy"):
                raise InputValueError(
                    f"{name}: only .npy files can be streamed by path, got {path!r} "
                    "(open a Zarr array with zarr.open and pass it instead)"
                )
            self._open_npy(path)
            return
        self.obj = obj
        shape = tuple(getattr(obj, "shape", ()))
        if len(shape) != 2:
            raise InputShapeError(f"{name} must be 2-D (samples x features), got shape {shape}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = obj.dtype
        chunks = getattr(obj, "chunks", None)
        self.row_chunk = int(chunks[0]) if _is_zarr(obj) and chunks else None

    def _open_npy(self, path: str) -> None:
        f = open(path, "rb")  # noqa: SIM115 - closed in close()
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if len(shape) != 2:
            f.close()
            raise InputShapeError(f"{self.name}: {path} holds shape {shape}, expected 2-D")
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.row_chunk = None
        if fortran or self.dtype.hasobject:
            f.close()
            self.obj = np.load(path, mmap_mode="r", allow_pickle=False)
            return
        self._file = f
        self._offset = f.tell()
        self._bufs: list[np.ndarray | None] = [None, None]
        self._turn = 0
        self.obj = None

    @property
    def reads_file(self) -> bool:
        """Whether :meth:`read` copies from a file (worth prefetching)."""
        return self._file is not None

    def read(self, a: int, b: int) -> Array:
        """Rows ``a:b``; from a file, into the buffer not handed out by the previous call."""
        if self._file is None:
            return self.obj[a:b]
        rows = b - a
        width = self.shape[1]
        buf = self._bufs[self._turn]
        if buf is None or buf.shape[0] < rows:
            buf = self._bufs[self._turn] = np.empty((rows, width), dtype=self.dtype)
        self._turn = 1 - self._turn
        out = buf[:rows]
        self._file.seek(self._offset + a * width * self.dtype.itemsize)
        view = memoryview(out.reshape(-1).view(np.uint8))
        got = self._file.readinto(view)
        if got != view.nbytes:
            raise InputValueError(f"{self.name}: file ended early ({got} of {view.nbytes} bytes)")
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _is_zarr(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "zarr"


def default_chunk_rows(
    widths: Sequence[int], itemsize: int = 4, budget: int = CHUNK_BYTES,
    block: int = MIXED_BLOCK,
) -> int:
    """Rows per chunk so that the assembled chunk buffer stays near ``budget`` bytes.

    A multiple of ``block`` (rows per float32 GEMM) when it is at least one
    block (so the GEMM blocks are full), and at least 256 rows.
    """
    width = max(1, sum(int(w) for w in widths))
    rows = max(256, budget // (width * max(itemsize, 4)))
    if rows >= block:
        rows -= rows % block
    elif rows >= MIXED_BLOCK:
        rows -= rows % MIXED_BLOCK
    return int(rows)


def iter_chunks(
    sources: Sequence[Any], chunk_size: int | None = None, *, block: int = MIXED_BLOCK
) -> Iterator[tuple[Array, ...]]:
    """Yield aligned row chunks ``(x₁[a:b], …, x_k[a:b])`` of several sources.

    Sources: NumPy arrays (including ``np.memmap`` / ``np.load(mmap_mode="r")``),
    paths of ``.npy`` files (read with ``readinto`` into two alternating buffers,
    the next chunk in a background thread while the caller works on this one, so
    memory stays at two chunks; a chunk is valid until the next one is requested),
    Zarr arrays (chunks aligned to the Zarr chunking) and torch tensors.
    ``block`` (rows per float32 GEMM of the mixed mode) makes the default chunk
    length a multiple of it.
    """
    srcs = [ChunkSource(s, f"source {i}") for i, s in enumerate(sources)]
    try:
        ns = {s.shape[0] for s in srcs}
        if len(ns) != 1:
            raise InputShapeError(
                f"sources must have the same number of rows (samples), got {sorted(ns)}"
            )
        n = ns.pop()
        rows = chunk_size or default_chunk_rows([s.shape[1] for s in srcs], block=block)
        zc = [s.row_chunk for s in srcs if s.row_chunk]
        if zc and chunk_size is None:
            step = math.lcm(*zc)
            rows = max(step, rows - rows % step)
        if rows < 1:
            raise InvalidParameterError(f"chunk_size must be >= 1, got {chunk_size}")
        starts = list(range(0, n, rows))
        if not any(s.reads_file for s in srcs) or len(starts) < 2:
            for a in starts:
                yield tuple(s.read(a, min(n, a + rows)) for s in srcs)
            return
        # .npy files: read the next chunk in a background thread (file reads release
        # the GIL) while the caller computes on this one; two buffers per file alternate
        from concurrent.futures import ThreadPoolExecutor

        def read(a: int) -> tuple[Array, ...]:
            return tuple(s.read(a, min(n, a + rows)) for s in srcs)

        with ThreadPoolExecutor(1, thread_name_prefix="repscope-read") as pool:
            pending = pool.submit(read, starts[0])
            for i in range(len(starts)):
                chunk = pending.result()
                if i + 1 < len(starts):
                    pending = pool.submit(read, starts[i + 1])
                yield chunk
    finally:
        for s in srcs:
            s.close()


