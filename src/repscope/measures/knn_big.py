"""Exact k-nearest neighbours of chosen query points in one blocked pass over the data.

:func:`query_neighbours` finds, for each query row, its ``k`` nearest other rows
of ``x`` (NumPy, memory-mapped ``.npy``, torch), reading ``x`` block by block:

* Distances of a block of queries to a block of rows come from one float32 GEMM
  (``‖q‖² + ‖b‖² − 2 q·b`` on data shifted by the mean of a seeded sample of rows;
  rows scaled to unit norm first for ``metric="cosine"``).
* **Threshold pruning**: a query whose smallest approximate distance in the block
  exceeds the largest of its current candidates, widened by the float32 error
  bound, skips the block; the others keep their ``k + extra`` smallest
  approximate distances (``argpartition``, no sort).
* **Float64 re-check**: every candidate's distance is recomputed in float64 from
  the coordinate differences, and the k nearest are taken by (distance, index),
  ties broken by the smaller index as :func:`repscope.measures._knn.knn` does.  The
  result is exact when the k-th float64 distance lies, by more than the float32
  error bound, below the smallest approximate distance ever discarded for that
  query; queries where it does not (near ties at the boundary) are recomputed in
  float64 in a second pass.

Memory: one block of rows, one block of queries and their candidate lists.  The
sampled-query estimates of the neighbourhood measures (:class:`KNNMeasure`)
average per-query values over a uniform random sample of queries (an unbiased
estimate of the mean over all n queries, with a normal interval and the
finite-population correction).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.core.errors import DegenerateInputError
from repscope.core.linalg import snap
from repscope.measures.planning import read_rows, row_blocks, shape_of

__all__ = ["query_neighbours", "tile_sizes", "top_k"]

#: extra float32 candidates kept per query beyond k
_EXTRA = 8
#: relative float32 error bound of an expanded squared distance (generous)
_F32_REL = 64 * float(np.finfo(np.float32).eps)


def top_k(d: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest entries of each row, nearest first, ties by index."""
    part = np.argpartition(d, k - 1, axis=1)[:, :k]
    thr = np.take_along_axis(d, part, axis=1).max(axis=1)
    n_within = np.count_nonzero(d <= thr[:, None], axis=1)
    for r in np.flatnonzero(n_within > k):  # a tie straddles the k-th place
        cand = np.flatnonzero(d[r] <= thr[r])
        order = np.lexsort((cand, d[r, cand]))
        part[r] = cand[order[:k]]
    vals = np.take_along_axis(d, part, axis=1)
    order = np.lexsort((part, vals), axis=-1)
    return np.take_along_axis(part, order, axis=1)



def tile_sizes(budget: int, d: int, k: int) -> tuple[int, int]:
    """(queries per block, rows per block) whose temporaries stay within ~1/4 of ``budget``."""
    room = max(2**20, budget // 8)
    rows = int(min(16384, max(256, room // (4 * 4096 + 24 * d))))
    queries = int(min(4096, max(64, (room - rows * 24 * d) // (12 * rows + 16 * (d + 2 * k)))))
    return queries, rows


def _metric_rows(b: np.ndarray, metric: str, who: str) -> np.ndarray:
    if metric == "cosine":
        norms = np.linalg.norm(b, axis=1)
        if np.any(norms == 0.0):
            raise DegenerateInputError(
                f"{who} has all-zero rows; cosine neighbourhoods are undefined for them")
        b = b / norms[:, None]
    return b


def _centre(x: Any, metric: str, who: str, seed: int = 0) -> np.ndarray:
    n = shape_of(x)[0]
    idx = np.sort(np.random.default_rng(seed).choice(n, size=min(n, 2048), replace=False))
    return _metric_rows(read_rows(x, idx, who), metric, who).mean(axis=0)


def query_neighbours(x: Any, queries: np.ndarray, k: int, metric: str = "euclidean", *,
                     budget: int = 2**30, who: str = "X") -> np.ndarray:
    """Indices (q × k) of the k nearest other rows of each query row, nearest first."""
    n, d = shape_of(x)
    queries = np.asarray(queries, dtype=np.int64)
    qb, rows = tile_sizes(budget, d, k)
    c = _centre(x, metric, who)
    bmax = 0.0  # largest squared norm of a shifted row: the grid of equal distances
    for _, _, b in row_blocks(x, rows, who):
        b = _metric_rows(b, metric, who) - c
        bmax = max(bmax, float(np.einsum("ij,ij->i", b, b).max(initial=0.0)))
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    redo: list[int] = []
    for s in range(0, queries.shape[0], qb):
        qi = queries[s : s + qb]
        q64 = _metric_rows(read_rows(x, qi, who), metric, who) - c
        idx, ok = _one_pass(x, q64, qi, k, metric, rows, c, who, bmax)
        out[s : s + qb] = idx
        redo.extend((s + np.flatnonzero(~ok)).tolist())
    if redo:  # near ties at the boundary: float64 distances to every row
        r = np.asarray(redo)
        q64 = _metric_rows(read_rows(x, queries[r], who), metric, who) - c
        out[r] = _one_pass(x, q64, queries[r], k, metric, rows, c, who, bmax, exact=True)[0]
    return out


def _one_pass(x: Any, q64: np.ndarray, qi: np.ndarray, k: int, metric: str, rows: int,
              c: np.ndarray, who: str, bmax: float, exact: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    q = q64.shape[0]
    keep = k + (_EXTRA if not exact else 0)
    q32 = q64.astype(np.float32)
    qsq = np.einsum("ij,ij->i", q64, q64)
    qsq32 = qsq.astype(np.float32)
    best_d = np.full((q, 0), np.inf)  # float64 distances of the candidates
    best_i = np.zeros((q, 0), dtype=np.int64)
    best_a = np.full((q, 0), np.inf)  # their approximate (float32) distances
    discarded = np.full(q, np.inf)  # smallest approximate distance left out
    grid = (qsq + bmax)[:, None]  # distances equal up to 2⁻⁴⁰ of this are tied
    for s, e, b in row_blocks(x, rows, who):
        b64 = _metric_rows(b, metric, who) - c
        bsq = np.einsum("ij,ij->i", b64, b64)
        if exact:
            dist = qsq[:, None] + bsq[None, :] - 2.0 * (q64 @ b64.T)
            np.maximum(dist, 0.0, out=dist)
            snap(dist, grid)
        else:  # float32 throughout: pruning and partial selection only
            dist = q32 @ b64.astype(np.float32).T
            dist *= np.float32(-2.0)
            dist += qsq32[:, None]
            dist += bsq.astype(np.float32)[None, :]
        self_hit = (qi >= s) & (qi < e)
        dist[np.flatnonzero(self_hit), qi[self_hit] - s] = np.inf
        width = best_a.shape[1]
        thr = best_a.max(axis=1) if width >= keep else np.full(q, np.inf)
        tol = _F32_REL * (qsq + bmax) if not exact else 0.0
        low = dist.min(axis=1)
        pruned = low > thr + tol  # threshold pruning: nothing in this block can enter
        discarded[pruned] = np.minimum(discarded[pruned], low[pruned])
        live = np.flatnonzero(~pruned)
        if live.size == 0:
            continue
        dl = dist[live]
        take = min(keep, e - s)
        if exact and take < e - s:  # ties at the boundary by the smaller index
            part = top_k(dl, take)
        elif take < e - s:
            part = np.argpartition(dl, take, axis=1)
            nxt = np.take_along_axis(dl, part[:, take : take + 1], axis=1)[:, 0]
            discarded[live] = np.minimum(discarded[live], nxt)
            part = part[:, :take]
        else:
            part = np.broadcast_to(np.arange(e - s), (live.size, e - s))
        approx = np.take_along_axis(dl, part, axis=1).astype(np.float64)
        diff = q64[live][:, None, :] - b64[part]
        exact_d = np.einsum("ijk,ijk->ij", diff, diff)
        snap(exact_d, grid[live])
        exact_d[~np.isfinite(approx)] = np.inf  # the query itself
        cand_d = np.concatenate([best_d[live] if width else np.empty((live.size, 0)),
                                 exact_d], axis=1)
        cand_i = np.concatenate([best_i[live] if width else np.empty((live.size, 0), np.int64),
                                 part + s], axis=1)
        cand_a = np.concatenate([best_a[live] if width else np.empty((live.size, 0)),
                                 approx], axis=1)
        new_w = min(keep, cand_d.shape[1])
        order = np.lexsort((cand_i, cand_d), axis=-1)
        drop = order[:, new_w:]
        if drop.shape[1]:
            discarded[live] = np.minimum(discarded[live],
                                         np.take_along_axis(cand_a, drop, axis=1).min(axis=1))
        order = order[:, :new_w]
        if width != new_w:
            grow = new_w - width
            best_d = np.concatenate([best_d, np.full((q, grow), np.inf)], axis=1)
            best_i = np.concatenate([best_i, np.full((q, grow), -1, np.int64)], axis=1)
            best_a = np.concatenate([best_a, np.full((q, grow), np.inf)], axis=1)
        best_d[live] = np.take_along_axis(cand_d, order, axis=1)
        best_i[live] = np.take_along_axis(cand_i, order, axis=1)
        best_a[live] = np.take_along_axis(cand_a, order, axis=1)
    if exact:
        return best_i[:, :k], np.ones(q, dtype=bool)
    # every row left out has an approximate distance >= discarded, so an exact one
    # >= discarded − tol: the k kept are the k nearest when the k-th lies below that
    return best_i[:, :k], best_d[:, k - 1] < discarded - _F32_REL * (qsq + bmax)
