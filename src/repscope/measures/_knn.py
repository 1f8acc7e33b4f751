"""Shared k-nearest-neighbour machinery (NumPy): chunked distances, top-k lists, ranks.

Conventions used by every neighbourhood measure
-----------------------------------------------
* ``metric="euclidean"`` (default) ranks pairs by ‖xi − xj‖₂; ``metric="cosine"``
  ranks them by the cosine distance 1 − cos(xi, xj) (rows must be non-zero).
* A point is never its own neighbour.
* Ties are broken deterministically by the smaller sample index, both when
  selecting the k nearest neighbours and when ranking.  Distances equal up to
  rounding (2⁻⁴⁰ of the row's scale) count as tied, so the tie-break does not
  depend on rounding noise (e.g. of a rescaling by a power of ten).
* Distances are computed block by block (rows ``s:e`` against all ``n``
  samples) through ‖a‖² + ‖b‖² − 2⟨a, b⟩ on column-centred data, so memory
  stays O(chunk · n) and the top k are found with :func:`numpy.argpartition`
  (no full sort of a row).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from repscope.core.errors import DegenerateInputError, InsufficientSamplesError
from repscope.core.linalg import snap
from repscope.measures.base import Measure, Prepared
from repscope.measures.knn_big import query_neighbours, top_k
from repscope.measures.metadata import Invariance
from repscope.measures.planning import Estimate, Plan, mean_interval

__all__ = [
    "METRICS",
    "KNNMeasure",
    "Neighbours",
    "knn",
    "metric_space",
    "neighbour_ranks",
    "position_in",
    "row_dots",
    "sq_distance_blocks",
]

METRICS = ("euclidean", "cosine")

#: float64 entries of one distance block (32 MiB)
_BLOCK_BUDGET = 1 << 22
#: largest n of the exact blocked path (one pass over the data per block of queries)
BLOCKED_MAX_N = 100_000
#: most sampled queries of an estimate
MAX_QUERIES = 32_768
#: modelled bytes of the tiles of one blocked pass (at the smallest tile sizes)
_TILE_BYTES = 2 * 2**20


def _rows_per_block(n: int, width: int) -> int:
    return max(1, min(n, _BLOCK_BUDGET // max(width, 1)))


def metric_space(x: np.ndarray, metric: str, who: str = "X") -> np.ndarray:
    """Column-centred data whose squared Euclidean distances order pairs as ``metric`` does.

    For ``"cosine"`` the rows are scaled to unit norm first (then
    ‖x̂i − x̂j‖² = 2 − 2 cos(xi, xj)).  Centring leaves distances unchanged and
    reduces cancellation in the Gram-matrix formula.
    """
    z = np.asarray(x, dtype=np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(z, axis=1)
        if np.any(norms == 0.0):
            raise DegenerateInputError(
                f"{who} has all-zero rows; cosine neighbourhoods are undefined for them "
                "(use metric='euclidean' or drop those samples)"
            )
        z = z / norms[:, None]
    elif metric != "euclidean":  # pragma: no cover - guarded by parameter checks
        raise ValueError(f"unknown metric {metric!r}")
    return z - z.mean(axis=0)


def sq_distance_blocks(
    z: np.ndarray, block: int | None = None
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(s, e, D)`` with ``D[r, j] = ‖z[s + r] − z[j]‖²`` and ``D[r, s + r] = inf``.

    The diagonal (a point and itself) is set to ``inf`` so it is never a neighbour.
    Row i's distances are snapped to a grid of ``2⁻⁴⁰ (‖zᵢ‖² + maxⱼ ‖zⱼ‖²)``
    (:func:`repscope.core.linalg.snap`; the expansion's rounding noise is far
    below it): distances equal up to rounding are exactly tied, so ties (duplicate
    samples, discrete data) are broken by index however the data were scaled.
    """
    n = z.shape[0]
    sq = np.einsum("ij,ij->i", z, z)
    top = float(sq.max(initial=0.0))
    step = block or _rows_per_block(n, n)
    for s in range(0, n, step):
        e = min(n, s + step)
        d = z[s:e] @ z.T  # in-place updates: no further block-sized temporaries
        d *= -2.0
        d += sq[None, :]
        d += sq[s:e, None]
        np.maximum(d, 0.0, out=d)
        snap(d, (sq[s:e] + top)[:, None])
        d[np.arange(e - s), np.arange(s, e)] = np.inf
        yield s, e, d


@dataclass(frozen=True)
class Neighbours:
    """k-nearest-neighbour lists of one representation.

    Attributes
    ----------
    indices : (n, k) int array, row i lists i's neighbours nearest first.
    distances : (n, k) float64, the matching distances (Euclidean, or the
        cosine distance 1 − cos), computed exactly from coordinate differences.
    metric : ``"euclidean"`` or ``"cosine"``.
    """

    indices: np.ndarray
    distances: np.ndarray
    metric: str

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    @property
    def n(self) -> int:
        return int(self.indices.shape[0])

    def mask(self) -> np.ndarray:
        """Dense (n, n) boolean adjacency (row i marks i's neighbours); O(n²) memory."""
        m = np.zeros((self.n, self.n), dtype=bool)
        np.put_along_axis(m, self.indices, True, axis=1)
        return m


def _exact_distances(z: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    n, k = idx.shape
    out = np.empty((n, k), dtype=np.float64)
    step = _rows_per_block(n, k * max(z.shape[1], 1))
    for s in range(0, n, step):
        e = min(n, s + step)
        diff = z[s:e, None, :] - z[idx[s:e]]
        out[s:e] = np.sqrt(np.einsum("ikd,ikd->ik", diff, diff))
    if metric == "cosine":
        out = out**2 / 2.0  # 1 − cos on unit rows
    return out


def knn(x: Any, k: int, metric: str = "euclidean", *, who: str = "X") -> Neighbours:
    """The ``k`` nearest neighbours of every sample (itself excluded).

    Parameters
    ----------
    x : (n, d) array
    k : int, 1 <= k <= n − 1
    metric : ``"euclidean"`` or ``"cosine"``

    Returns
    -------
    Neighbours
        Nearest first; ties broken by the smaller index.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if not 1 <= k <= n - 1:
        raise InsufficientSamplesError(
            f"{who}: k={k} nearest neighbours need at least k + 1 = {k + 1} samples, got {n}"
        )
    z = metric_space(x, metric, who)
    idx = np.empty((n, k), dtype=np.int64)
    for s, e, d in sq_distance_blocks(z):
        idx[s:e] = top_k(d, k)
    return Neighbours(idx, _exact_distances(z, idx, metric), metric)


def neighbour_ranks(x: Any, targets: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Rank of ``targets[i, m]`` among the neighbours of ``i`` in ``x`` (1 = nearest).

    ``rank = 1 + #{l ≠ i : d(i, l) < d(i, t)} + #{l ≠ i, l < t : d(i, l) = d(i, t)}``,
    the position ``t`` would take in ``i``'s neighbour list ordered by distance
    with ties broken by index (consistent with :func:`knn`).
    """
    z = metric_space(x, metric)
    n = z.shape[0]
    targets = np.asarray(targets, dtype=np.int64)
    ranks = np.empty(targets.shape, dtype=np.int64)
    cols = np.arange(n)
    for s, e, d in sq_distance_blocks(z):
        t = targets[s:e]
        tv = np.take_along_axis(d, t, axis=1)
        for m in range(t.shape[1]):
            v = tv[:, m : m + 1]
            less = np.count_nonzero(d < v, axis=1)
            tie = np.count_nonzero((d == v) & (cols[None, :] < t[:, m : m + 1]), axis=1)
            ranks[s:e, m] = 1 + less + tie
    return ranks


def position_in(lists: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of ``values[m]`` in the list ``lists[rows[m]]`` (0-based), or −1 if absent.

    ``lists`` is an (n, k) integer array of sample indices in ``[0, n)`` without
    repeats within a row; ``rows`` and ``values`` have equal shapes.  Runs in
    O(nk log nk) time and O(nk) memory by searching in the row-offset keys
    ``row · n + value``.
    """
    n, k = lists.shape
    big = max(n, int(lists.max(initial=0)) + 1, int(np.max(values, initial=0)) + 1)
    keys = (lists + np.arange(n, dtype=np.int64)[:, None] * big).ravel()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    query = (np.asarray(rows, dtype=np.int64) * big + np.asarray(values, dtype=np.int64)).ravel()
    pos = np.minimum(np.searchsorted(sorted_keys, query), sorted_keys.size - 1)
    found = sorted_keys[pos] == query
    out = np.where(found, order[pos] % k, -1)
    return out.reshape(np.shape(values))


def row_dots(a: np.ndarray, b: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``out[i, m] = ⟨a[i], b[idx[i, m]]⟩``, computed in row blocks (O(block · k · d) memory)."""
    n, k = idx.shape
    out = np.empty((n, k), dtype=np.float64)
    step = _rows_per_block(n, k * max(b.shape[1], 1))
    for s in range(0, n, step):
        e = min(n, s + step)
        out[s:e] = np.einsum("id,ikd->ik", a[s:e], b[idx[s:e]])
    return out


class KNNMeasure(Measure):
    """Base class of measures built on k-NN lists (parameters ``k`` and ``metric``).

    :meth:`prepare` computes the neighbour lists once per representation and
    caches them; every measure with the same ``k`` and ``metric`` shares them
    (see :meth:`prepare_key`).  Euclidean neighbourhoods are invariant to
    orthogonal maps, isotropic scaling and translation; cosine ones lose the
    translation invariance (subclasses declare the Euclidean invariances in
    ``info``).  With a fixed ``k`` the neighbourhoods shrink as n grows, so
    confidence intervals do not bias-correct these measures
    (``bias_correctable = False``).
    """

    bias_correctable = False

    def exact_bytes(self, n: int, dx: int, dy: int) -> float:
        """Float64 copies and metric-space copies of both inputs, the neighbour lists and
        their matching, and the distance blocks (:data:`_BLOCK_BUDGET` entries, O(n) not n²)."""
        k = int(self.params["k"])
        block = 8.0 * max(_BLOCK_BUDGET, n)
        return 24.0 * n * (dx + dy) + 64.0 * n * k + 3 * block

    # ------------------------------------------------------- beyond memory
    #: whether the value is a mean over samples of per-sample values computed from the
    #: two neighbour lists (:meth:`_values`): then an exact blocked path and a
    #: sampled-query estimate exist (:mod:`repscope.measures.knn_big`)
    per_query: ClassVar[bool] = False
    #: sampled queries of the estimate (None: 2048, more until the interval is narrow)
    queries: int | None = None
    #: full width of the 95 % interval the adaptive sample aims for
    target_width: float = 0.02

    @property
    def estimable(self) -> bool:  # type: ignore[override]
        return self.per_query

    def blocked_bytes(self, n: int, dx: int, dy: int) -> float | None:
        """Neighbour lists of all samples and the tiles of one pass (n <= BLOCKED_MAX_N)."""
        if not self.per_query or n > BLOCKED_MAX_N:
            return None
        return 48.0 * n * self.params["k"] + _TILE_BYTES + 24.0 * 256 * max(dx, dy)

    def estimate_bytes(self, n: int, dx: int, dy: int) -> float | None:
        if not self.per_query:
            return None
        return 48.0 * 2048 * self.params["k"] + _TILE_BYTES + 24.0 * 256 * max(dx, dy)

    def _values(self, nx: Neighbours, ny: Neighbours) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _lists(self, X: Any, Y: Any, queries: np.ndarray, budget: int
               ) -> tuple[Neighbours, Neighbours]:
        k, metric = self.params["k"], self.params["metric"]
        empty = np.zeros((queries.shape[0], k))
        return (Neighbours(query_neighbours(X, queries, k, metric, budget=budget, who="X"),
                           empty, metric),
                Neighbours(query_neighbours(Y, queries, k, metric, budget=budget, who="Y"),
                           empty, metric))

    def _blocked(self, X: Any, Y: Any, plan: Plan) -> Estimate:
        nx, ny = self._lists(X, Y, np.arange(plan.n), plan.budget)
        return Estimate(float(np.mean(self._values(nx, ny))), "exact-blocked")

    def _estimated(self, X: Any, Y: Any, plan: Plan, seed: int, level: float) -> Estimate:
        n = plan.n
        order = np.random.default_rng(seed).permutation(n)
        q = min(n, self.queries or 2048)
        nx, ny = self._lists(X, Y, order[:q], plan.budget)
        values = self._values(nx, ny)
        est, lo, hi = mean_interval(values, n, level)
        if self.queries is None and hi - lo > self.target_width and q < min(n, MAX_QUERIES):
            room = int(plan.budget // (48 * self.params["k"]))
            more = min(n, MAX_QUERIES, room,
                       int(np.ceil(q * ((hi - lo) / self.target_width) ** 2)))
            nx, ny = self._lists(X, Y, order[q:more], plan.budget)
            values = np.concatenate([values, self._values(nx, ny)])
            est, lo, hi = mean_interval(values, n, level)
        lo_v, hi_v = self.info.value_range
        return Estimate(est, "estimated", max(lo_v, lo), min(hi_v, hi), level,
                        detail={"queries": int(values.shape[0]), "seed": seed})

    def _check_params(self) -> None:
        self._param_range("k", 1, integer=True)
        self.params["k"] = int(self.params["k"])
        self._param_in("metric", METRICS)

    @property
    def invariances(self) -> frozenset[Invariance]:
        if self.params["metric"] == "cosine":
            return self.info.invariances - {Invariance.TRANSLATION}
        return self.info.invariances

    def prepare_key(self) -> tuple[Any, ...]:
        return ("knn", self.params["k"], self.params["metric"], self.normalises)

    @property
    def min_samples(self) -> int:
        """``k + 1``: every sample needs k other samples as neighbours (at least 3)."""
        return max(self.info.min_samples, self.params["k"] + 1)

    @property
    def min_samples_reason(self) -> str:
        if self.params["k"] + 1 <= self.info.min_samples:
            return self.info.min_samples_reason
        k = self.params["k"]
        return f"k={k} nearest neighbours need k + 1 = {k + 1} samples (a sample is not its own)"

    def tie_resolution(self, n: int) -> float:
        """One flipped neighbour of one sample: ``1/(n·k)``."""
        return 1.0 / (n * self.params["k"])

    def _prepare(self, p: Prepared) -> None:
        self.neighbours(p)

    def neighbours(self, p: Prepared) -> Neighbours:
        """The cached :class:`Neighbours` of a prepared representation."""
        key = ("knn", self.params["k"], self.params["metric"])
        nb = p.cache.get(key)
        if nb is None:
            nb = knn(p.data, self.params["k"], self.params["metric"], who=self.info.name)
            p.cache[key] = nb
        return nb
