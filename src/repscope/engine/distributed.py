"""Run :func:`repscope.grid` on a Dask cluster (``dask.distributed``).

::

    from repscope.engine.distributed import dask_client

    with dask_client("tcp://scheduler:8786"):      # or "local" / "local:4"
        repscope.grid(reps, ["cka", "procrustes", "rsa"], db="results.sqlite")

    repscope.grid(reps, measures, client=my_client)  # an existing Client
    repscope run study.toml --dask local:2           # the same from the CLI

Inside :func:`dask_client` every :func:`repscope.grid` call (and so every
``repscope run``) runs on the cluster unless it passes ``executor="local"``;
outside it grids run in-process unless given ``client=`` or
``executor="dask"``.  The results are the same rows either way.

How the work is split
---------------------
Rows whose measure is a function of second moments (:class:`MomentMeasure`
with ``supports_moments``: linear CKA/HSIC, the CCA family, Procrustes and
shape metrics, NBS/Bures, regression R²), with no resampling statistics
requested and for which the measure itself takes the feature path, are
computed from sufficient statistics:

1. the requested pairs are tiled into blocks of representations ``R × C``
   (at most ``tile_width`` features a side);
2. for each tile and each chunk of rows ``[lo, hi)`` a worker reads the chunk
   of every representation of the tile *where it lives* and computes
   ``SecondMoments`` of ``X = [X_r …]``, ``Y = [X_c …]`` — one GEMM gives every
   cross term of the tile (the all-pairs amortisation of the in-process grid);
3. the chunk statistics are merged on the workers with
   :meth:`SecondMoments.merge` (Chan, Golub & LeVeque 1979: exact, so the merge
   equals the single-pass statistics up to float64 rounding);
4. a worker slices each pair's ``(n, μₐ, μ_b, Sₐₐ, S_bb, Sₐ_b)`` out of the
   merged statistics and calls ``measure.from_moments`` (after the measure's
   own degeneracy checks, so the same warnings are recorded).

Memory on a worker is O(tile width²) whatever n is.  A pair whose data turn
out non-finite or constant, or whose measure raises, is recomputed by the
second route so its error row is exactly the in-process one.

Every other row (rank-, neighbour- and kernel-based measures, statistics,
Gram-path pairs) runs as a *block*: all tasks sharing a first representation,
computed on one worker by the same code as the in-process grid
(:func:`repscope.engine.local.run_tasks`: each representation prepared once per
prepare-key group, cross terms batched).

Where data are read
-------------------
Memory-mapped ``.npy`` files (``np.load(path, mmap_mode="r")``, as the study
runner passes them) travel as (path, dtype, shape, offset); Zarr arrays (e.g.
:meth:`repscope.ActivationStore.open`) travel as the array object, a
reference to its store; workers open them and read only the rows they need,
so the data never pass through the client.  Other arrays (NumPy, torch) are
scattered to the cluster once each.  Workers must see the same file system
paths as the client for the first two.

The database
------------
Rows return to the client, which is the only writer of the
:class:`~repscope.storage.results_db.ResultsDB`: each row is committed as it arrives, so
killing the client loses at most the rows in flight, and re-running skips
every stored row, as in-process.

Values equal the in-process grid's to float64 rounding (≈ 1e-15 relative for
well-conditioned inputs).  One documented difference: for float32 inputs the
in-process linear CKA/HSIC/NBS use float32 GEMMs (within 1e-7 of float64,
see :mod:`repscope.measures.moment_measure`), while the chunked route accumulates
float64 statistics, so those values can differ in the 7th digit.
"""

from __future__ import annotations

import mmap
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.arrays import is_torch, to_float, to_numpy
from repscope.core.warning_capture import capture_warnings
from repscope.engine.compare import RECORDED_ERRORS
from repscope.engine.cross_moments import CrossMoments
from repscope.engine.dask_clients import (
    active_client,
    current_client,
    dask_client,
    import_distributed,
    parse_address,
)
from repscope.engine.local import prepare_names, run_tasks
from repscope.engine.table import RESULT_COLUMNS
from repscope.engine.tasks import RepKey, Task, array_shape
from repscope.inference.heldout import stats_for
from repscope.inference.options import Stats
from repscope.measures.moment_measure import MomentMeasure
from repscope.measures.moments import SecondMoments

__all__ = [
    "dask_client",
    "active_client",
    "current_client",
    "parse_address",
    "MemmapSource",
    "ZarrSource",
    "source_of",
    "plan_tiles",
    "run_grid_tasks",
    "TILE_WIDTH",
    "CHUNK_BYTES",
]

#: at most this many features on each side of a tile of second-moment statistics
TILE_WIDTH = 2048

#: float64 bytes of one chunk of rows read by a worker (all representations of a tile)
CHUNK_BYTES = 64 * 2**20

# ------------------------------------------------------------------ sources
@dataclass(frozen=True)
class MemmapSource:
    """A 2-D array in a file, memory-mapped on the worker (e.g. an ``.npy`` file)."""

    filename: str
    dtype: str
    shape: tuple[int, int]
    offset: int
    order: str = "C"

    def open(self) -> np.ndarray:
        return np.memmap(self.filename, dtype=np.dtype(self.dtype), mode="r",
                         offset=self.offset, shape=self.shape, order=self.order)

    def read(self, lo: int, hi: int) -> np.ndarray:
        return np.array(self.open()[lo:hi])


@dataclass(frozen=True)
class ZarrSource:
    """A Zarr array; pickles as a reference to its store, read by slices on the worker."""

    array: Any

    def open(self) -> np.ndarray:
        return np.asarray(self.array[...])

    def read(self, lo: int, hi: int) -> np.ndarray:
        return np.asarray(self.array[lo:hi])


Source = MemmapSource | ZarrSource


def source_of(obj: Any) -> Source | None:
    """How a worker can read ``obj`` where it lives, or ``None`` (it must be shipped).

    Whole-file memory maps (``np.load(path, mmap_mode="r")``, not views of
    them) and Zarr arrays in a store other than memory qualify.
    """
    if isinstance(obj, np.memmap):
        if (isinstance(obj.base, mmap.mmap) and getattr(obj, "filename", None)
                and obj.ndim == 2 and (obj.flags.c_contiguous or obj.flags.f_contiguous)):
            order = "C" if obj.flags.c_contiguous else "F"
            return MemmapSource(str(obj.filename), obj.dtype.str,
                                (int(obj.shape[0]), int(obj.shape[1])), int(obj.offset), order)
        return None
    if type(obj).__module__.split(".")[0] == "zarr" and hasattr(obj, "store"):
        if "Memory" in type(obj.store).__name__:
            return None
        return ZarrSource(obj)
    return None


def _dtype_kind(obj: Any) -> str:
    if is_torch(obj):
        return "f" if obj.dtype.is_floating_point else "x"
    try:
        return np.dtype(obj.dtype).kind
    except (AttributeError, TypeError):
        return "x"


def _open(x: Any) -> Any:
    """A worker's view of a representation: the shipped array, or the source opened."""
    return x.open() if isinstance(x, (MemmapSource, ZarrSource)) else x


def _read(x: Any, lo: int, hi: int) -> np.ndarray:
    if isinstance(x, (MemmapSource, ZarrSource)):
        return x.read(lo, hi)
    return np.asarray(x[lo:hi])


# ------------------------------------------------------------------ tiles
@dataclass(frozen=True)
class Tile:
    """Second-moment statistics of ``X = [rows…]`` and ``Y = [cols…]`` serve ``pairs``."""

    rows: tuple[RepKey, ...]
    cols: tuple[RepKey, ...]
    pairs: tuple[tuple[RepKey, RepKey], ...]


def plan_tiles(pairs: Sequence[tuple[RepKey, RepKey]], widths: Mapping[RepKey, int],
               tile_width: int = TILE_WIDTH) -> list[Tile]:
    """Group unordered pairs ``(a, b)`` into tiles of at most ``tile_width`` features a side.

    First representations are taken in order into row blocks; each row
    block's partners, in order, into column blocks.  Every pair lands in
    exactly one tile with ``a`` among its rows and ``b`` among its columns.
    """
    by_a: OrderedDict[RepKey, list[RepKey]] = OrderedDict()
    for a, b in pairs:
        lst = by_a.setdefault(a, [])
        if b not in lst:
            lst.append(b)

    def blocks(keys: Sequence[RepKey]) -> list[list[RepKey]]:
        out: list[list[RepKey]] = []
        width = 0
        for k in keys:
            if out and width + widths[k] <= tile_width:
                out[-1].append(k)
                width += widths[k]
            else:
                out.append([k])
                width = widths[k]
        return out

    tiles = []
    for rows in blocks(list(by_a)):
        cols = list(dict.fromkeys(b for a in rows for b in by_a[a]))
        for cb in blocks(cols):
            members = set(cb)
            tp = tuple((a, b) for a in rows for b in by_a[a] if b in members)
            if tp:
                tiles.append(Tile(tuple(rows), tuple(cb), tp))
    return tiles


@dataclass
class _Flags:
    """Per-representation checks made while reading chunks (merged like the statistics)."""

    finite: bool
    const_row: np.ndarray | None  # the common row if every row seen so far is identical

    def merge(self, other: _Flags) -> _Flags:
        same = (self.const_row is not None and other.const_row is not None
                and np.array_equal(self.const_row, other.const_row))
        return _Flags(self.finite and other.finite, self.const_row if same else None)

    @property
    def ok(self) -> bool:
        return self.finite and self.const_row is None


def _chunk_flags(x: np.ndarray) -> _Flags:
    const = bool(np.all(x == x[0:1])) if x.shape[0] else True
    return _Flags(bool(np.all(np.isfinite(x))), x[0].copy() if const else None)


def _tile_chunk(xs: list[Any], ys: list[Any], lo: int, hi: int
                ) -> tuple[SecondMoments, list[_Flags], list[_Flags]]:
    """Statistics of rows ``[lo, hi)`` of a tile (runs on a worker)."""
    xa = [np.asarray(_read(s, lo, hi), dtype=np.float64) for s in xs]
    ya = [np.asarray(_read(s, lo, hi), dtype=np.float64) for s in ys]
    fx, fy = [_chunk_flags(x) for x in xa], [_chunk_flags(y) for y in ya]
    with np.errstate(all="ignore"):  # non-finite chunks are flagged and recomputed as blocks
        mom = SecondMoments.from_arrays(np.concatenate(xa, axis=1), np.concatenate(ya, axis=1),
                                        validate=False)
    return mom, fx, fy


def _merge_chunks(a: tuple[SecondMoments, list[_Flags], list[_Flags]],
                  b: tuple[SecondMoments, list[_Flags], list[_Flags]]
                  ) -> tuple[SecondMoments, list[_Flags], list[_Flags]]:
    with np.errstate(all="ignore"):
        mom = a[0].merge(b[0])
    return (mom, [p.merge(q) for p, q in zip(a[1], b[1])],
            [p.merge(q) for p, q in zip(a[2], b[2])])


def _offsets(keys: Sequence[RepKey], widths: Mapping[RepKey, int]) -> dict[RepKey, slice]:
    out, at = {}, 0
    for k in keys:
        out[k] = slice(at, at + widths[k])
        at += widths[k]
    return out


def pair_moments(mom: SecondMoments, rows: Sequence[RepKey], cols: Sequence[RepKey],
                 widths: Mapping[RepKey, int], a: RepKey, b: RepKey) -> SecondMoments:
    """The :class:`SecondMoments` of ``(a, b)`` (``a`` in ``rows``, ``b`` in ``cols``) of a tile."""
    ra, cb = _offsets(rows, widths)[a], _offsets(cols, widths)[b]
    c = np.ascontiguousarray
    return SecondMoments(
        n=mom.n, mean_x=c(mom.mean_x[ra]), mean_y=c(mom.mean_y[cb]),
        sxx=c(mom.sxx[ra, ra]), syy=c(mom.syy[cb, cb]), sxy=c(mom.sxy[ra, cb]),
        precision=mom.precision,
    )


def moment_row(m: MomentMeasure, mom: SecondMoments) -> dict[str, Any] | None:
    """A result row (as :func:`repscope.engine.compare.evaluate_prepared` makes) from statistics.

    Returns ``None`` when the measure raises a recorded error: the caller then
    recomputes the pair from the data so that the error row is the in-process one.
    """
    n, (dx, dy) = mom.n, mom.dims
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row.update(measure=m.info.name, params=dict(m.params), kind=m.info.kind, n=n, dx=dx, dy=dy)
    t0 = time.perf_counter()
    try:
        with capture_warnings() as cw:
            m.check_regime(n, dx, dy)  # the warnings compare_prepared would raise first
            value = to_float(m.from_moments(mom))
    except RECORDED_ERRORS:
        return None
    row.update(value=value, estimate=value, seconds=time.perf_counter() - t0,
               warnings=tuple(cw.messages), error=None, path="exact")
    return row


Result = tuple[list[tuple[Any, dict[str, Any]]], list[Any]]


def _tile_rows(merged: tuple[SecondMoments, list[_Flags], list[_Flags]], tile: Tile,
               tasks: list[Task], widths: dict[RepKey, int]) -> Result:
    """Rows of a tile's tasks from its merged statistics (runs on a worker)."""
    mom, fx, fy = merged
    ok = {k: f.ok for k, f in zip(tile.rows, fx)}
    ok.update({k: ok.get(k, True) and f.ok for k, f in zip(tile.cols, fy)})
    rows: list[tuple[Any, dict[str, Any]]] = []
    again: list[Any] = []
    in_tile = set(tile.pairs)
    for t in tasks:
        if not (ok[t.a] and ok[t.b]):
            again.append(t.key)
            continue
        if (t.a, t.b) in in_tile:
            pm = pair_moments(mom, tile.rows, tile.cols, widths, t.a, t.b)
        else:
            pm = pair_moments(mom, tile.rows, tile.cols, widths, t.b, t.a).transpose()
        row = moment_row(t.m, pm)  # type: ignore[arg-type]
        if row is None:
            again.append(t.key)
        else:
            rows.append((t.key, row))
    return rows, again


def _block_rows(tasks: list[Task], data: dict[RepKey, Any], widths: dict[RepKey, int], n: int,
                stats: Stats, seed: int, on_error: str,
                names: dict[Any, tuple[str, str]]) -> Result:
    """Rows of a block of tasks, computed as the in-process grid does (runs on a worker)."""
    rows: list[tuple[Any, dict[str, Any]]] = []
    run_tasks(tasks, lambda k: _open(data[k]), widths, n, stats=stats, seed=seed,
              on_error=on_error, emit=lambda t, r: rows.append((t.key, r)),
              table=CrossMoments(), names=names)
    return rows, []


# ------------------------------------------------------------------ driver
def _moment_route(t: Task, n: int, widths: Mapping[RepKey, int], kinds: Mapping[RepKey, str],
                  stats: Stats) -> bool:
    m = t.m
    return (
        isinstance(m, MomentMeasure) and m.supports_moments and not stats_for(stats, m).any
        and n >= m.min_samples
        and (not m.info.same_dim or widths[t.a] == widths[t.b])
        and kinds[t.a] in "fiu" and kinds[t.b] in "fiu"
        and not m.use_gram(n, widths[t.a], widths[t.b])
    )


def chunk_bounds(n: int, rows: int) -> list[tuple[int, int]]:
    return [(lo, min(n, lo + rows)) for lo in range(0, n, rows)]


def _chunk_rows_for(tile: Tile, widths: Mapping[RepKey, int], reps: Mapping[RepKey, Any],
                    n: int, chunk_rows: int | None) -> int:
    if chunk_rows is not None:
        return max(1, min(n, int(chunk_rows)))
    width = sum(widths[k] for k in tile.rows) + sum(widths[k] for k in tile.cols)
    rows = max(1, CHUNK_BYTES // (8 * max(1, width)))
    zchunks = [int(reps[k].chunks[0]) for k in (*tile.rows, *tile.cols)
               if isinstance(source_of(reps[k]), ZarrSource) and getattr(reps[k], "chunks", None)]
    if zchunks:  # whole Zarr chunks: each is decompressed once
        step = max(zchunks)
        rows = max(step, rows - rows % step)
    return min(n, rows)


def _tree_merge(client: Any, futures: list[Any]) -> Any:
    while len(futures) > 1:
        nxt = [client.submit(_merge_chunks, futures[i], futures[i + 1], pure=False)
               for i in range(0, len(futures) - 1, 2)]
        if len(futures) % 2:
            nxt.append(futures[-1])
        futures = nxt
    return futures[0]


def run_grid_tasks(
    client: Any,
    tasks: Sequence[Task],
    reps: Mapping[RepKey, Any],
    n: int,
    *,
    stats: Stats,
    seed: int,
    on_error: str,
    emit: Callable[[Task, dict[str, Any]], None],
    chunk_rows: int | None = None,
    tile_width: int = TILE_WIDTH,
) -> None:
    """Compute ``tasks`` on a Dask cluster and hand each row to ``emit`` as it arrives.

    Called by :func:`repscope.grid`; see the module docstring for the split
    into second-moment tiles and blocks.
    """
    distributed = import_distributed()
    widths = {k: array_shape(reps[k])[1] for k in reps}
    needed = list(dict.fromkeys(k for t in tasks for k in (t.a, t.b)))
    kinds = {k: _dtype_kind(reps[k]) for k in needed}
    data: dict[RepKey, Any] = {}
    for k in needed:
        src = source_of(reps[k])
        if src is None:
            arr = reps[k]
            arr = to_numpy(arr) if is_torch(arr) else np.asarray(arr)
            src = client.scatter(arr, hash=False)
        data[k] = src
    by_key = {t.key: t for t in tasks}
    names = prepare_names(tasks)
    moment = [t for t in tasks if _moment_route(t, n, widths, kinds, stats)]
    chosen = {t.key for t in moment}
    rest = [t for t in tasks if t.key not in chosen]

    futures: list[Any] = []

    def submit_blocks(block_tasks: Sequence[Task]) -> list[Any]:
        blocks: OrderedDict[RepKey, list[Task]] = OrderedDict()
        for t in block_tasks:
            blocks.setdefault(t.a, []).append(t)
        out = []
        for bt in blocks.values():
            keys = list(dict.fromkeys(k for t in bt for k in (t.a, t.b)))
            out.append(client.submit(_block_rows, bt, {k: data[k] for k in keys},
                                     {k: widths[k] for k in keys}, n, stats, seed, on_error,
                                     {t.key: names[t.key] for t in bt}, pure=False))
        return out

    tiles = plan_tiles(_canonical_pairs(moment), widths, tile_width)
    pair_tile = {p: i for i, tile in enumerate(tiles) for p in tile.pairs}
    tile_tasks: list[list[Task]] = [[] for _ in tiles]
    for t in moment:
        i = pair_tile.get((t.a, t.b), pair_tile.get((t.b, t.a)))
        tile_tasks[i].append(t)  # type: ignore[index]
    for tile, tt in zip(tiles, tile_tasks):
        step = _chunk_rows_for(tile, widths, reps, n, chunk_rows)
        xs, ys = [data[k] for k in tile.rows], [data[k] for k in tile.cols]
        parts = [client.submit(_tile_chunk, xs, ys, lo, hi, pure=False)
                 for lo, hi in chunk_bounds(n, step)]
        merged = _tree_merge(client, parts)
        futures.append(client.submit(_tile_rows, merged, tile, tt,
                                     {k: widths[k] for k in (*tile.rows, *tile.cols)},
                                     pure=False))
    futures.extend(submit_blocks(rest))

    queue = distributed.as_completed(futures, loop=client.loop)
    try:
        for fut in queue:
            rows, again = fut.result()
            for key, row in rows:
                emit(by_key[key], row)
            if again:
                for f in submit_blocks([by_key[k] for k in again]):
                    futures.append(f)
                    queue.add(f)
    finally:
        for f in futures:
            f.cancel()


def _canonical_pairs(tasks: Sequence[Task]) -> list[tuple[RepKey, RepKey]]:
    """Unordered pairs of ``tasks`` in first-seen orientation."""
    out: dict[tuple[RepKey, RepKey], None] = {}
    for t in tasks:
        if (t.b, t.a) not in out:
            out[(t.a, t.b)] = None
    return list(out)
