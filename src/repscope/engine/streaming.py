"""Exact streaming of second-moment statistics from chunks of activations.

Linear CKA/HSIC, the CCA family, Procrustes and shape metrics, NBS/Bures and
regression R² depend on the data only through the sample count, the means and
the centred co-moment matrices (:class:`repscope.SecondMoments`).  This module
accumulates those statistics from data that never has to fit in memory — NumPy
arrays, memory-mapped or on-disk ``.npy`` files, Zarr arrays, torch tensors, or
batches straight out of a model's forward pass — and every
:class:`~repscope.measures.moment_measure.MomentMeasure` then gives exactly the
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

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from repscope.core.arrays import is_torch
from repscope.core.errors import InputShapeError, InvalidParameterError
from repscope.core.linalg import MIXED_BLOCK
from repscope.engine.chunk_sources import CHUNK_BYTES, default_chunk_rows, iter_chunks
from repscope.engine.joint_moments import (
    PRECISIONS,
    JointMoments,
    _as_measures,
    _check_chunk,
    _label,
)
from repscope.measures.moments import SecondMoments

__all__ = [
    "JointMoments",
    "moments",
    "joint_moments",
    "compute",
    "iter_chunks",
    "default_chunk_rows",
    "PRECISIONS",
    "CHUNK_BYTES",
]


# ============================================================== entry points
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
            return int(np.load(os.fspath(src), mmap_mode="r", allow_pickle=False).shape[0])
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

