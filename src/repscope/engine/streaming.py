"""Exact streaming of second-moment statistics from chunks of activations.

Linear CKA/HSIC, the CCA family, Procrustes and shape metrics, NBS/Bures and
regression R² depend on the data only through the sample count, the means and
the centred co-moment matrices (:class:`repscope.SecondMoments`).  This module
accumulates those statistics from data that never has to fit in memory — NumPy
arrays, memory-mapped or on-disk ``.npy`` files, Zarr arrays, torch tensors, or
batches straight out of a model's forward pass — and every
:class:`~repscope.measures._moment.MomentMeasure` then gives exactly the
full-data value (``measure.from_moments(mom)``) in O(d²) memory::

    from repscope import streaming
    mom = streaming.moments("layer3.npy", "layer7.npy")            # files on disk
    repscope.measure("mean_cca").from_moments(mom)

    jm = streaming.joint_moments(batches())     # yields (h1, h2, ..., hk) per batch
    jm.pair(0, 3)                               # SecondMoments of layers 0 and 3

    streaming.compute(["cka", "procrustes"], x_source, y_source)   # one pass

Joint statistics
----------------
:class:`JointMoments` keeps the statistics of k representations side by side:
one mean vector and one centred co-moment matrix ``S`` of the concatenated
features (D = d₁ + … + d_k).  Its diagonal blocks are each ``Sᵢᵢ`` and its
off-diagonal blocks every cross term ``Sᵢⱼ``, so one pass over the data serves
all k(k−1)/2 pairs.  Each chunk costs one symmetric rank-c update (a SYRK of the
c × D chunk) instead of k² separate products.

Exactness and merging
---------------------
Each chunk is centred at its own float64 mean and merged with the pairwise
update of Chan, Golub & LeVeque (1979)::

    n = n₁ + n₂,   δ = μ₂ − μ₁,   μ = μ₁ + δ n₂/n,
    S = S₁ + S₂ + (n₁ n₂ / n) δ δᵀ

which is exact (no ``XᵀX − nμμᵀ`` cancellation), so the statistics of any
partition of the samples — chunks, workers, files — merge to the single-pass
result up to float64 rounding (:meth:`JointMoments.merge`).

Precision
---------
``precision="float64"`` forms every chunk product in float64.
``precision="mixed"`` (float32 or lower-precision chunks only) subtracts the
chunk's float64 mean rounded to float32, multiplies in float32 over blocks of
:data:`repscope.core.linalg.MIXED_BLOCK` rows and adds each block product to the
float64 accumulator; the rounding of the float32 mean is corrected exactly::

    z = fl32(x − s),  s = fl32(μ_c),  e = μ_c − s
    S_c = Σ z zᵀ − c e eᵀ

When every named measure sees the moments only through Frobenius norms (linear
CKA/HSIC: ``MomentMeasure.mixed_block``), the blocks are
:data:`repscope.core.linalg.FROBENIUS_MIXED_BLOCK` rows long, which keeps the
float32 SYRK near the GEMM rate.

Entries then carry a relative error of ~1e-7–1e-6, which moves linear CKA,
HSIC and NBS by less than 1e-7 (``tests/perf/test_streaming.py``) but would be
amplified by whitening (CCA, regression) or by the square root of the
Procrustes distances near 0.  ``precision="auto"`` (default) therefore uses
mixed GEMMs only when every chunk is low precision *and* the caller names the
measures and all of them tolerate it (:attr:`MomentMeasure.tolerates_mixed`);
statistics record their precision and a measure that does not tolerate mixed
statistics refuses them.

References
----------
Chan, Golub & LeVeque, "Updating formulae and a pairwise algorithm for
computing sample variances", 1979/1983.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.arrays import Array, is_torch
from repscope.core.errors import InputShapeError, InputValueError, InvalidParameterError
from repscope.core.linalg import MIXED_BLOCK, is_low_precision, mixed_cross
from repscope.measures.moments import SecondMoments

__all__ = [
    "JointMoments",
    "moments",
    "joint_moments",
    "compute",
    "iter_chunks",
    "default_chunk_rows",
    "PRECISIONS",
]

PRECISIONS = ("auto", "float64", "mixed")

#: bytes of the assembled chunk buffer (rows × total width) the default chunk size aims at
CHUNK_BYTES = 128 * 2**20


# ============================================================ joint statistics
@dataclass
class JointMoments:
    """Float64 sufficient statistics of k representations of the same samples.

    Attributes
    ----------
    widths : tuple of int
        Feature widths d₁ … d_k.
    n : int
        Samples accumulated.
    mean : array (D,)
        Means of the concatenated features (D = Σ dᵢ).
    s : array (D, D)
        Centred co-moment sums ``Σₜ (zₜ − μ)(zₜ − μ)ᵀ`` of the concatenated
        features (symmetric).
    precision : {"float64", "mixed"}
        Arithmetic of the chunk products (see the module docstring).
    """

    widths: tuple[int, ...]
    n: int
    mean: Array
    s: Array
    precision: str = "float64"

    # ------------------------------------------------------------ creation
    @classmethod
    def empty(cls, widths: Sequence[int], like: Any = None) -> JointMoments:
        """Zero statistics for representations of the given widths (NumPy unless ``like``)."""
        widths = tuple(int(w) for w in widths)
        if not widths or any(w < 1 for w in widths):
            raise InputShapeError(f"widths must be positive integers, got {widths}")
        total = sum(widths)
        if like is not None and is_torch(like):
            import torch

            kw = {"dtype": torch.float64, "device": like.device}
            return cls(widths, 0, torch.zeros(total, **kw), torch.zeros(total, total, **kw))
        return cls(widths, 0, np.zeros(total), np.zeros((total, total)))

    @classmethod
    def from_arrays(cls, *xs: Any, precision: str = "float64") -> JointMoments:
        """Statistics of in-memory representations (one chunk)."""
        if not xs:
            raise InputShapeError("from_arrays needs at least one representation")
        chunk = [_check_chunk(x, f"representation {i}") for i, x in enumerate(xs)]
        jm = cls.empty([int(c.shape[1]) for c in chunk], like=chunk[0])
        return jm.update(*chunk, precision=precision)

    # ------------------------------------------------------------ updates
    @property
    def k(self) -> int:
        """Number of representations."""
        return len(self.widths)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Column offset of each representation in the concatenated features."""
        out, acc = [], 0
        for w in self.widths:
            out.append(acc)
            acc += w
        return tuple(out)

    def update(
        self, *chunks: Any, precision: str = "float64", block: int = MIXED_BLOCK,
        workspace: dict[str, Any] | None = None,
    ) -> JointMoments:
        """Add one chunk of rows (one array per representation) in place; returns ``self``.

        ``precision`` is ``"float64"`` or ``"mixed"`` (float32 GEMMs; only for
        chunks that are all float32 or lower precision, else float64 is used);
        ``block`` is the rows per float32 GEMM of the mixed mode; ``workspace``
        (any dict kept across calls) lets consecutive updates reuse one buffer
        for the assembled chunk instead of allocating (and page-faulting) it anew.
        """
        if len(chunks) != self.k:
            raise InputShapeError(
                f"expected one chunk per representation ({self.k}), got {len(chunks)}"
            )
        chunk = [_check_chunk(c, f"representation {i}") for i, c in enumerate(chunks)]
        rows = {int(c.shape[0]) for c in chunk}
        if len(rows) != 1:
            raise InputShapeError(
                f"chunks of one batch must have the same number of rows, got {sorted(rows)}"
            )
        for i, (c, w) in enumerate(zip(chunk, self.widths)):
            if int(c.shape[1]) != w:
                raise InputShapeError(
                    f"representation {i}: chunk width {int(c.shape[1])} != accumulated width {w}"
                )
        mode = _resolve_precision(precision, chunk)
        c_n, c_mean, c_s = _chunk_statistics(chunk, mode, self.s, block, workspace)
        self._merge_in(c_n, c_mean, c_s, mode)
        return self

    def _merge_in(self, c_n: int, c_mean: Array, c_s: Array, mode: str) -> None:
        if c_n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.s = c_n, c_mean, c_s
            self.precision = mode
            return
        n = self.n + c_n
        delta = c_mean - self.mean
        w = self.n * c_n / n
        s = self.s
        s += c_s
        _rank1_update(s, delta, w)
        self.s = s
        self.mean = self.mean + delta * (c_n / n)
        self.n = n
        if mode == "mixed":
            self.precision = "mixed"

    def merge(self, other: JointMoments) -> JointMoments:
        """Statistics of the union of two disjoint sample sets (a new object; exact)."""
        if tuple(self.widths) != tuple(other.widths):
            raise InputShapeError(
                f"cannot merge statistics of widths {self.widths} and {other.widths}"
            )
        out = self.copy()
        if other.n:
            out._merge_in(other.n, other.mean, _copy(other.s), other.precision)
        return out

    def __add__(self, other: JointMoments) -> JointMoments:
        return self.merge(other)

    def copy(self) -> JointMoments:
        return JointMoments(self.widths, self.n, _copy(self.mean), _copy(self.s), self.precision)

    # ------------------------------------------------------------ views
    def _slice(self, i: int) -> slice:
        if not 0 <= i < self.k:
            raise InputShapeError(f"representation index {i} out of range [0, {self.k})")
        o = self.offsets[i]
        return slice(o, o + self.widths[i])

    def block(self, i: int, j: int) -> Array:
        """The centred co-moment block ``Sᵢⱼ`` (a copy)."""
        return _copy(self.s[self._slice(i), self._slice(j)])

    def pair(self, i: int, j: int) -> SecondMoments:
        """:class:`SecondMoments` of representations i (as X) and j (as Y)."""
        si, sj = self._slice(i), self._slice(j)
        return SecondMoments(
            n=self.n,
            mean_x=_copy(self.mean[si]),
            mean_y=_copy(self.mean[sj]),
            sxx=self.block(i, i),
            syy=self.block(j, j),
            sxy=self.block(i, j),
            precision=self.precision,
        )

    def evaluate(
        self, measures: Any, pairs: Iterable[tuple[int, int]] | None = None
    ) -> dict[tuple[int, int], dict[str, float]]:
        """Evaluate moment measures on representation pairs (default: every i < j).

        Asymmetric measures are evaluated in the order given (i as X, j as Y).
        """
        from repscope.core.arrays import to_float

        ms = _as_measures(measures)
        if pairs is None:
            pairs = [(i, j) for i in range(self.k) for j in range(i + 1, self.k)]
        out: dict[tuple[int, int], dict[str, float]] = {}
        for i, j in pairs:
            mom = self.pair(i, j)
            out[(i, j)] = {_label(m): to_float(m.from_moments(mom)) for m in ms}
        return out


def _copy(a: Array) -> Array:
    return a.clone() if is_torch(a) else np.array(a, copy=True)


def _rank1_update(s: Array, v: Array, w: float) -> None:
    """``s += w v vᵀ`` in place."""
    if is_torch(s):
        s.add_(w * (v[:, None] * v[None, :]))
    elif s.dtype == np.float64 and s.flags.c_contiguous and v.dtype == np.float64:
        from scipy.linalg import blas

        # BLAS GER on the Fortran-ordered view sᵀ, in place with no d × d temporary;
        # v vᵀ is symmetric, so adding it to sᵀ adds it to s
        blas.dger(w, v, v, a=s.T, overwrite_a=1)
    else:
        s += np.multiply.outer(w * v, v)


# ================================================================ chunk kernel
def _check_chunk(x: Any, name: str) -> Array:
    if is_torch(x):
        x = x.detach()
    elif not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if len(tuple(x.shape)) != 2:
        raise InputShapeError(f"{name}: chunks must be 2-D (rows x features), got {tuple(x.shape)}")
    if is_torch(x):
        if x.dtype.is_complex or not (x.dtype.is_floating_point or _torch_int(x)):
            raise InputValueError(f"{name}: unsupported dtype {x.dtype}")
    elif x.dtype.kind not in "iuf":
        raise InputValueError(f"{name}: unsupported dtype {x.dtype}; expected numbers")
    return x


def _torch_int(x: Any) -> bool:
    import torch

    return x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _resolve_precision(precision: str, chunk: Sequence[Array]) -> str:
    if precision not in ("float64", "mixed"):
        raise InvalidParameterError(
            f"precision must be 'float64' or 'mixed' here, got {precision!r}"
        )
    if precision == "mixed" and all(is_low_precision(c) for c in chunk):
        return "mixed"
    return "float64"


def _mean64(x: Array) -> Array:
    """Column means accumulated in float64 (no float64 copy of the chunk for NumPy)."""
    if is_torch(x):
        import torch

        return torch.mean(x, dim=0, dtype=torch.float64)
    return np.mean(x, axis=0, dtype=np.float64)


def _buffer(workspace: dict[str, Any] | None, shape: tuple[int, int], dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape``, reusing ``workspace["z"]`` when it is large enough."""
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    buf = workspace.get("z")
    rows, width = shape
    if buf is None or buf.dtype != dtype or buf.shape[1] != width or buf.shape[0] < rows:
        buf = workspace["z"] = np.empty(shape, dtype=dtype)
    return buf[:rows]


def _chunk_statistics(
    chunk: Sequence[Array], mode: str, like: Array, block: int = MIXED_BLOCK,
    workspace: dict[str, Any] | None = None,
) -> tuple[int, Array, Array]:
    """(rows, float64 mean, centred co-moment sum) of one multi-representation chunk."""
    c = int(chunk[0].shape[0])
    if c == 0:
        return 0, None, None
    means = [_mean64(x) for x in chunk]
    torch_mode = is_torch(like)
    if torch_mode:
        import torch

        dev = like.device
        means = [m.to(dev) for m in means]
        mean = torch.cat(means)
        if not bool(torch.all(torch.isfinite(mean))):
            raise InputValueError("a chunk contains NaN or Inf values")
        dt = torch.float32 if mode == "mixed" else torch.float64
        if mode == "mixed":
            shift = mean.to(torch.float32)
            z = torch.cat([x.to(dev, torch.float32) for x in chunk], dim=1) - shift
        else:
            z = torch.cat([x.to(dev, dt) for x in chunk], dim=1) - mean
    else:
        mean = np.concatenate(means)
        if not np.all(np.isfinite(mean)):
            raise InputValueError("a chunk contains NaN or Inf values")
        total = int(mean.shape[0])
        dt = np.float32 if mode == "mixed" else np.float64
        z = _buffer(workspace, (c, total), dt)
        shift = mean.astype(dt)
        o = 0
        for x in chunk:
            w = int(x.shape[1])
            np.subtract(x, shift[o : o + w], out=z[:, o : o + w], casting="unsafe")
            o += w
    if mode == "mixed":
        s = mixed_cross(z, block=block)
        e = mean - (shift.double() if torch_mode else shift.astype(np.float64))
        _rank1_update(s, e, -float(c))
    else:
        s = z.T @ z
    return c, mean, s


# ==================================================================== sources
class _Source:
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
            self.obj = np.load(path, mmap_mode="r")
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
    srcs = [_Source(s, f"source {i}") for i, s in enumerate(sources)]
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


# ============================================================== entry points
def _as_measures(measures: Any) -> list[Any]:
    from repscope.measures._moment import MomentMeasure
    from repscope.measures.registry import measure as make

    if measures is None:
        return []
    if isinstance(measures, (str, MomentMeasure)):
        measures = [measures]
    out = []
    for m in measures:
        m = make(m) if isinstance(m, str) else m
        if not isinstance(m, MomentMeasure) or not m.supports_moments:
            name = getattr(getattr(m, "info", None), "name", m)
            raise InvalidParameterError(
                f"{name} is not a function of second moments and cannot be streamed"
            )
        out.append(m)
    return out


def _label(m: Any) -> str:
    defaults = m.info.params
    extra = {k: v for k, v in m.params.items() if defaults.get(k) != v}
    if not extra:
        return m.info.name
    return m.info.name + "(" + ", ".join(f"{k}={v!r}" for k, v in sorted(extra.items())) + ")"


def _choose(precision: str, measures: list[Any]) -> str:
    if precision not in PRECISIONS:
        raise InvalidParameterError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        ok = bool(measures) and all(m.tolerates_mixed for m in measures)
        return "mixed" if ok else "float64"
    return precision


def _block_for(measures: list[Any]) -> int:
    """Rows per float32 GEMM: the shortest block any named measure asks for
    (:attr:`MomentMeasure.mixed_block`; :data:`MIXED_BLOCK` when none is named)."""
    blocks = [int(getattr(m, "mixed_block", MIXED_BLOCK)) for m in measures]
    return min(blocks) if blocks else MIXED_BLOCK


def _progress(enabled: bool, total: int | None, label: str) -> Any:
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    bar.start()
    bar.add_task(label, total=total)
    return bar


def _accumulate(
    batches: Iterable[Sequence[Any]],
    precision: str,
    progress: bool,
    total: int | None,
    block: int = MIXED_BLOCK,
) -> JointMoments:
    bar = _progress(progress, total, "accumulating moments")
    jm: JointMoments | None = None
    workspace: dict[str, Any] = {}
    try:
        for batch in batches:
            if is_torch(batch) or isinstance(batch, np.ndarray):
                batch = (batch,)
            batch = tuple(batch)
            if jm is None:
                first = [_check_chunk(c, f"representation {i}") for i, c in enumerate(batch)]
                jm = JointMoments.empty([int(c.shape[1]) for c in first], like=first[0])
                batch = tuple(first)
            jm.update(*batch, precision=precision, block=block, workspace=workspace)
            if bar is not None:
                bar.advance(bar.task_ids[0], int(batch[0].shape[0]))
    finally:
        if bar is not None:
            bar.stop()
    if jm is None:
        raise InputShapeError("the stream was empty: no batch to accumulate")
    return jm


def joint_moments(
    data: Any,
    *,
    chunk_size: int | None = None,
    precision: str = "auto",
    measures: Any = None,
    progress: bool = False,
    total: int | None = None,
) -> JointMoments:
    """Accumulate the joint statistics of several representations in one pass.

    Parameters
    ----------
    data : sequence of sources, or iterable of batches
        A list/tuple of sources (NumPy arrays, memory maps, ``.npy`` paths, Zarr
        arrays, torch tensors) with the same number of rows, read in aligned
        chunks of ``chunk_size`` rows; or any other iterable (e.g. a generator
        over a model's forward passes) yielding one tuple ``(h₁, …, h_k)`` of
        2-D batches per step.
    chunk_size : int, optional
        Rows per chunk for sources (default: :func:`default_chunk_rows`).
    precision : {"auto", "float64", "mixed"}
        See the module docstring; ``"auto"`` uses float32 GEMMs only when
        ``measures`` are given and all tolerate them, and the data are float32.
    measures : measure, name or list, optional
        The measures the statistics are meant for (drives ``precision="auto"``).
    progress : bool
        Show a progress bar (rows done / total).
    total : int, optional
        Total rows of a batch iterable, for the progress bar.

    Returns
    -------
    JointMoments
    """
    ms = _as_measures(measures)
    mode, block = _choose(precision, ms), _block_for(ms)
    if isinstance(data, (list, tuple)) and data and not isinstance(data[0], (list, tuple)):
        n = _rows_of(data[0])
        chunks = iter_chunks(data, chunk_size, block=block)
        return _accumulate(chunks, mode, progress, n, block)
    return _accumulate(iter(data), mode, progress, total, block)


def _rows_of(src: Any) -> int | None:
    if isinstance(src, (str, os.PathLike)):
        try:
            return int(np.load(os.fspath(src), mmap_mode="r").shape[0])
        except (OSError, ValueError):
            return None
    shape = getattr(src, "shape", None)
    return int(shape[0]) if shape else None


def moments(
    x: Any,
    y: Any = None,
    *,
    chunk_size: int | None = None,
    precision: str = "auto",
    measures: Any = None,
    progress: bool = False,
    total: int | None = None,
) -> SecondMoments:
    """Exact :class:`SecondMoments` of (X, Y) streamed in chunks.

    ``x`` and ``y`` are sources (see :func:`joint_moments`), or ``x`` is an
    iterable of ``(x_batch, y_batch)`` pairs and ``y`` is None.  Memory is
    O((dx + dy)²) plus one chunk.

    Examples
    --------
    >>> mom = moments(np.load("a.npy", mmap_mode="r"), "b.npy")       # doctest: +SKIP
    >>> repscope.measure("cka").from_moments(mom)                     # doctest: +SKIP
    """
    if y is None:
        jm = joint_moments(
            x, precision=precision, measures=measures, progress=progress, total=total
        )
    else:
        jm = joint_moments(
            [x, y], chunk_size=chunk_size, precision=precision, measures=measures,
            progress=progress,
        )
    if jm.k != 2:
        raise InputShapeError(f"expected (x, y) batches, got {jm.k} arrays per batch")
    return jm.pair(0, 1)


def compute(
    measures: Any,
    x: Any,
    y: Any = None,
    *,
    chunk_size: int | None = None,
    precision: str = "auto",
    progress: bool = False,
    total: int | None = None,
) -> float | dict[str, float]:
    """Stream (X, Y) once and evaluate one or several moment measures exactly.

    Returns a float for a single measure, else ``{label: value}``.
    """
    ms = _as_measures(measures)
    if not ms:
        raise InvalidParameterError("compute needs at least one measure")
    mom = moments(
        x, y, chunk_size=chunk_size, precision=precision, measures=ms, progress=progress,
        total=total,
    )
    from repscope.core.arrays import to_float

    values = {_label(m): to_float(m.from_moments(mom)) for m in ms}
    if isinstance(measures, (str,)) or len(ms) == 1 and not isinstance(measures, (list, tuple)):
        return next(iter(values.values()))
    return values

