"""Representational similarity analysis (RSA; Kriegeskorte, Mur & Bandettini 2008).

Each representation is summarised by its representational dissimilarity
matrix (RDM) over the n samples; RSA compares the two RDMs' upper triangles
(the m = n(n−1)/2 pairwise dissimilarities, in ``scipy.spatial.distance.pdist``
order) with a correlation or cosine.

The RDM is computed once per representation in :meth:`RSA.prepare` and cached,
together with the comparator-ready vector (standardised values or ranks), so
comparing one representation with many costs one O(m) pass per pair (one
O(m log m) pass for Kendall's τ).  RSA measures with the same ``rdm`` and
backend share prepared representations (:meth:`RSA.prepare_key`).

Large n (NumPy input, n >= :data:`FAST_MIN_N`)
---------------------------------------------
* Correlation and cosine RDMs come from float64 GEMMs on the normalised rows
  (``1 − zᵢ·zⱼ``, :func:`rdm_gemm`), in row blocks of at most
  :data:`_BLOCK_ROWS` rows whose temporary stays below :data:`BLOCK_BYTES`;
  each block multiplies only the columns at and right of its first row, so
  small blocks waste few products below the diagonal.  Float32 input gets a
  float32-*stored* RDM (as does any RDM beyond :data:`FLOAT64_MAX_M`
  entries, so n = 50 000 fits in memory: 1.25e9 entries × 4 bytes).  The
  GEMM itself stays float64: a float32 GEMM rounds each pair differently
  (~1e-7), which breaks the exact ties of discrete data and moved Spearman's
  ρ by 1e-4 in tests; rounding a float64 value to float32 maps equal values
  to equal values.  Stored values within the GEMM's rounding error of 0
  (parallel rows) are set to an exact 0; a min-reduction per block skips
  that clean-up where no such value occurs.
* Spearman ranks (:func:`centred_ranks`) are average ranks of each value's
  order-preserving 32-bit key (of its float32 rounding), so ties are exact.
  When the keys span a narrow range (at most ``min(m, RANK_GROUP)/4`` keys,
  as for RDMs of real-valued data, whose values cover a few binades), the
  keys are counted in a table (``bincount``) whose cumulative sums give each
  key's average rank, and every entry looks its rank up (two O(m) passes, no
  sort).  Otherwise each key is packed with its position into one 64-bit
  word and the words are sorted (a vectorised integer sort, ~10× faster
  than an argsort); runs of equal keys get their average rank and are
  scattered back to their positions, in cache-sized chunks.  Beyond
  :data:`RANK_GROUP` entries the key range is split by a histogram of the
  top 16 bits and each group is sorted on its own, bounding the extra memory.
  Ranks are stored as the integers ``2r − (m + 1)`` (int32, exact for
  half-integer average ranks).  Values closer than float32 resolution
  (~6e-8 relative) count as tied, which moves ρ by about that resolution
  (~1e-8 in tests) relative to ranking the float64 values — and keeps the
  exact ties of discrete data tied, which float64 rounding noise would split.
  When one comparison needs the ranks of both RDMs, they are computed in two
  threads (the NumPy passes release the GIL).
* Pearson / Spearman / cosine are then one chunked float64 dot product per pair
  (products of cache-sized chunks, pairwise-summed).
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np

from repscope.core.arrays import Array, is_torch, namespace
from repscope.core.errors import DegenerateInputError
from repscope.core.linalg import is_low_precision, snap
from repscope.core.threads import available_cpus
from repscope.measures import rsa_big
from repscope.measures._kernels import distances, sq_distances, upper_triangle
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import GEOMETRY, Invariance, MeasureInfo
from repscope.measures.planning import Estimate, Plan, shape_of, subset_mean, subset_plan
from repscope.measures.ranks import _CHUNK, _PASS, centred_ranks
from repscope.measures.registry import register
from repscope.measures.rsa_big import FLOAT64_MAX_M, _normalised_rows, _unit_rows

__all__ = ["RSA", "rdm_vector", "rdm_gemm", "centred_ranks", "FAST_MIN_N"]

#: NumPy inputs with at least this many samples take the GEMM / packed-sort path
FAST_MIN_N = 256
#: bytes of the Gram block temporary of :func:`rdm_gemm`
BLOCK_BYTES = 256 * 2**20
#: largest n of the exact blocked path (its cost grows as n²d; beyond it RSA is estimated)
BLOCKED_MAX_N = 200_000
#: most rows per GEMM block of :func:`rdm_gemm` (each block also computes the
#: (b−1)b/2 products below its diagonal; small blocks waste less)
_BLOCK_ROWS = 512

RDMS = ("euclidean", "sqeuclidean", "correlation", "cosine")
COMPARATORS = ("pearson", "spearman", "kendall", "cosine")

_P, _O, _S, _T = (
    Invariance.PERMUTATION,
    Invariance.ORTHOGONAL,
    Invariance.ISOTROPIC_SCALING,
    Invariance.TRANSLATION,
)

#: invariances of RSA by RDM (every comparator is invariant to positive rescaling of an RDM)
_RDM_INVARIANCES: dict[str, frozenset[Invariance]] = {
    "euclidean": frozenset({_P, _O, _S, _T}),
    "sqeuclidean": frozenset({_P, _O, _S, _T}),
    "cosine": frozenset({_P, _O, _S}),
    "correlation": frozenset({_P, _S}),
}


def rdm_vector(x: Array, rdm: str) -> Array:
    """Upper triangle of the RDM of ``x`` (samples as rows), in ``pdist`` order.

    ``euclidean``: ‖xᵢ − xⱼ‖; ``sqeuclidean``: ‖xᵢ − xⱼ‖²;
    ``cosine``: 1 − cos(xᵢ, xⱼ); ``correlation``: 1 − Pearson r(xᵢ, xⱼ) across
    features.  NumPy input uses :func:`scipy.spatial.distance.pdist` (exact,
    condensed); torch input uses Gram-matrix expansions so it stays on its
    device and differentiable.
    """
    xp = namespace(x)
    if rdm in ("correlation", "cosine"):
        if rdm == "correlation" and int(x.shape[1]) < 2:
            raise DegenerateInputError("rsa: the correlation RDM needs at least 2 features")
        xr = x - xp.mean(x, axis=1, keepdims=True) if rdm == "correlation" else x
        # 1 − cos(u, v) = ‖û − v̂‖²/2 on unit rows: no cancellation for nearly parallel rows
        # (1 − û·v̂ loses every digit of a distance below ε)
        z = _unit_rows(xr, rdm)
        x, rdm = z, "sqeuclidean"
        half = True
    else:
        half = False
    if isinstance(x, np.ndarray):
        from scipy.spatial.distance import pdist

        v = pdist(x, metric=rdm)
    elif rdm == "euclidean":
        v = upper_triangle(distances(x))
    else:
        v = upper_triangle(sq_distances(x))
    return v / 2.0 if half else v


def rdm_gemm(
    x: np.ndarray, rdm: str, *, dtype: Any = None, block_bytes: int = BLOCK_BYTES
) -> np.ndarray:
    """Upper triangle (``pdist`` order) of the correlation or cosine RDM by GEMMs.

    ``1 − zᵢ·zⱼ`` with zᵢ the row (centred across features for ``correlation``)
    scaled to unit norm, multiplied in float64 and stored as ``dtype``
    (default float32 for float32/float16 input or more than
    :data:`FLOAT64_MAX_M` entries, float64 otherwise).  Rows are processed in
    blocks of b rows, ``b·n·8 <= block_bytes`` and b <= :data:`_BLOCK_ROWS`,
    each block multiplying only the columns at and right of its first row
    (≈ n²d/2 + nbd/2 multiply-adds in all).  Stored values with
    ``|1 − zᵢ·zⱼ| <= 4dε`` (rounding noise of parallel rows) are set to an
    exact 0; the check is one min-reduction per block, the clean-up runs only
    on blocks that hold such values.
    """
    if rdm not in ("correlation", "cosine"):
        raise ValueError(f"rdm_gemm handles the correlation and cosine RDMs, not {rdm!r}")
    n, d = x.shape
    if rdm == "correlation" and d < 2:
        raise DegenerateInputError("rsa: the correlation RDM needs at least 2 features")
    m = n * (n - 1) // 2
    if dtype is None:
        dtype = np.float32 if is_low_precision(x) or m > FLOAT64_MAX_M else np.float64
    dtype = np.dtype(dtype)
    z = _normalised_rows(x, rdm, np.float64)
    # |1 − zᵢ·zⱼ| below the GEMM's rounding error (unit rows: <= d·ε) is an exact 0
    # (parallel rows); float32 storage would otherwise keep the noise as distinct values
    zero_tol = 4.0 * d * np.finfo(np.float64).eps
    out = np.empty(m, dtype=dtype)
    rows = max(1, min(_BLOCK_ROWS, block_bytes // max(1, n * 8)))
    one = np.float64(1.0)
    pos = 0
    for a in range(0, n - 1, rows):
        b = min(n, a + rows)
        g = z[a:b] @ z[a:].T  # (b - a) × (n - a)
        start = pos
        for r in range(a, min(b, n - 1)):
            length = n - r - 1
            seg = out[pos : pos + length]
            np.subtract(one, g[r - a, r - a + 1 :], out=seg, casting="same_kind")
            pos += length
        _zero_small(out[start:pos], zero_tol)
    return out


def _zero_small(seg: np.ndarray, tol: float) -> None:
    """Set the entries of ``seg`` with ``|v| <= tol`` to 0 (skipped when ``min(seg) > tol``)."""
    if seg.size and not seg.min() > tol:
        seg[np.abs(seg) <= tol] = 0.0


def _chunked_dot(a: np.ndarray, b: np.ndarray, ca: float = 0.0, cb: float = 0.0) -> float:
    """``Σ (aᵢ − ca)(bᵢ − cb)`` in float64, in cache-sized chunks (no full float64 copies).

    Each chunk's products are summed by NumPy's pairwise summation (a BLAS
    dot on many small chunks would pay a thread start-up per call).
    """
    total = 0.0
    for i in range(0, a.shape[0], _CHUNK):
        x = a[i : i + _CHUNK].astype(np.float64)
        if ca:
            x -= ca
        if b is a:
            y = x
        else:
            y = b[i : i + _CHUNK].astype(np.float64)
            if cb:
                y -= cb
        total += float(np.multiply(x, y, out=x).sum())
    return total


def _chunked_sum(a: np.ndarray) -> float:
    """``Σ aᵢ`` accumulated in float64, chunk by chunk."""
    steps = range(0, a.shape[0], _PASS)
    return float(sum(np.sum(a[i : i + _PASS], dtype=np.float64) for i in steps))


def _standardise(v: Array, center: bool) -> Array | None:
    """``(v − mean)/‖v − mean‖`` (or ``v/‖v‖``); None when the norm is 0."""
    xp = namespace(v)
    if center:
        v = v - xp.mean(v)
    nrm = xp.sqrt(xp.sum(v * v))
    if not bool(nrm > 0):
        return None
    return v / nrm


@register
class RSA(Measure):
    r"""Representational similarity analysis: correlate the two RDMs.

    ``RSA(X, Y) = c(rdm(X), rdm(Y))`` on the upper triangles (i < j).

    Parameters
    ----------
    rdm : {"correlation", "euclidean", "sqeuclidean", "cosine"}, default "correlation"
        Dissimilarity of two samples i, j: ``1 − r(xᵢ, xⱼ)`` (Pearson across
        features), ``‖xᵢ − xⱼ‖``, ``‖xᵢ − xⱼ‖²`` or ``1 − cos(xᵢ, xⱼ)`` — the
        definitions of ``scipy.spatial.distance.pdist``.
    compare : {"spearman", "pearson", "kendall", "cosine"}, default "spearman"
        Pearson r, Spearman ρ (Pearson r of average ranks), Kendall τ_b, or the
        cosine ``⟨a, b⟩/(‖a‖‖b‖)`` of the uncentred vectors.

    The default (correlation RDM, Spearman comparison) is the classic choice of
    Kriegeskorte et al. (2008).  Pearson and cosine comparisons run natively on
    torch (differentiable); Spearman and Kendall need ranks and run in
    NumPy/SciPy (torch input is converted explicitly).

    Invariances (per ``rdm``; all comparators are invariant to rescaling an RDM)
    ---------------------------------------------------------------------------
    * euclidean, sqeuclidean: orthogonal maps, permutations, isotropic scaling,
      translation.
    * cosine: orthogonal maps, permutations, isotropic scaling (not translation).
    * correlation: permutations and isotropic scaling only (an orthogonal map
      or a translation changes each sample's mean across features).
    None is invariant to general invertible linear maps.

    Assumptions
    -----------
    Rows are paired samples.  O(n²) memory for the RDM.  Values in [−1, 1],
    1 for X = Y.  The correlation RDM needs d >= 2 and non-constant samples;
    the cosine RDM needs non-zero samples.

    References
    ----------
    Kriegeskorte, Mur & Bandettini, "Representational similarity analysis –
    connecting the branches of systems neuroscience", Front. Syst. Neurosci.
    2008.  Nili et al., "A toolbox for representational similarity analysis",
    PLoS Comput. Biol. 2014.
    """

    info = MeasureInfo(
        name="rsa",
        family="rsm",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_RDM_INVARIANCES["correlation"],
        assumptions="Rows are paired samples; O(n^2) memory; invariances depend on rdm; "
        "spearman/kendall run in NumPy/SciPy, pearson/cosine also natively on torch.",
        reference="Kriegeskorte, Mur & Bandettini, Representational similarity analysis, "
        "Front. Syst. Neurosci. 2008",
        backend="numpy",
        differentiable=False,
        version=2,
        **GEOMETRY.fields(),
        params={"rdm": "correlation", "compare": "spearman"},
        variants=tuple({"rdm": r, "compare": c} for r in RDMS for c in COMPARATORS),
    )
    thread_safe: ClassVar[bool] = True

    def exact_bytes(self, n: int, dx: int, dy: int) -> float:
        """Both condensed RDMs (float64 up to :data:`FLOAT64_MAX_M` entries, else float32),
        their int32 ranks, the sort buffers of one rank group and the normalised rows."""
        m = n * (n - 1) / 2.0
        rdm = 8.0 if m <= FLOAT64_MAX_M else 4.0
        return 16.0 * n * (dx + dy) + 2.0 * m * (rdm + 4.0) + 16.0 * min(m, 2.0**27)

    #: the estimated path: stimuli per subset (at most) and number of disjoint subsets
    subset_size: int = 10_000
    subsets: int = 16

    @property
    def estimable(self) -> bool:  # type: ignore[override]
        return True

    def blocked_bytes(self, n: int, dx: int, dy: int) -> float | None:
        """:func:`repscope.measures.rsa_big.rsa_blocked` (not Kendall; n <= BLOCKED_MAX_N)."""
        if self.params["compare"] == "kendall" or n > BLOCKED_MAX_N:
            return None
        return rsa_big.blocked_bytes(n, dx, dy, self.params["compare"])

    def estimate_bytes(self, n: int, dx: int, dy: int) -> float | None:
        return self.exact_bytes(min(n, 500), dx, dy)

    def _blocked(self, X: Any, Y: Any, plan: Plan) -> Estimate:
        low = is_low_precision(X) and is_low_precision(Y)
        return rsa_big.rsa_blocked(X, Y, self.params["rdm"], self.params["compare"],
                                   low_precision=low, budget=plan.budget)

    def _estimated(self, X: Any, Y: Any, plan: Plan, seed: int, level: float) -> Estimate:
        (n, dx), dy = shape_of(X), shape_of(Y)[1]
        size, k = subset_plan(self, n, dx, dy, plan.budget, self.subset_size, self.subsets)
        return subset_mean(self, X, Y, size, k, seed, level)

    def _check_params(self) -> None:
        self._param_in("rdm", RDMS)
        self._param_in("compare", COMPARATORS)

    @property
    def backend(self) -> str:
        return "numpy" if self.params["compare"] in ("spearman", "kendall") else "array_api"

    @property
    def invariances(self) -> frozenset[Invariance]:
        return _RDM_INVARIANCES[self.params["rdm"]]

    def prepare_key(self) -> tuple[Any, ...]:
        # The cached RDM depends on rdm and backend only; comparator-ready vectors
        # are cached lazily under their own keys.
        return ("rsa", self.params["rdm"], self.backend)

    def prepare(self, X: Any, name: str = "X") -> Prepared:
        """Validate one representation; remember whether it arrived in low precision."""
        low = is_low_precision(X)
        p = super().prepare(X, name)
        if low:
            p.cache["low_precision"] = True
        p.cache["rdm"] = self._rdm(p)
        return p

    def _fast(self, p: Prepared) -> bool:
        """NumPy input with n >= FAST_MIN_N, and not Kendall: GEMM RDMs and packed ranks."""
        return (
            not is_torch(p.data)
            and p.n >= FAST_MIN_N
            and self.params["compare"] != "kendall"
        )

    def _prepare(self, p: Prepared) -> None:
        """The RDM is computed in :meth:`prepare`, once the input precision is known."""

    def _rdm(self, p: Prepared) -> Array:
        """The RDM vector, dissimilarities equal up to rounding snapped to exact ties.

        float64 RDMs are snapped to a grid of 2⁻⁴⁰ of their largest value
        (:func:`repscope.core.linalg.snap`), so the ties of discrete data or
        duplicate samples do not depend on rounding noise (float32-stored RDMs
        tie at float32 resolution already).
        """
        v = p.cache.get("rdm")
        if v is not None:
            return v
        rdm = self.params["rdm"]
        if self._fast(p) and rdm in ("correlation", "cosine"):
            dt = np.float32 if p.cache.get("low_precision") else None
            v = rdm_gemm(p.data, rdm, dtype=dt)
        else:
            v = rdm_vector(p.data, rdm)
        if v.dtype != namespace(v).float64 or int(v.shape[0]) == 0:
            return v
        top = namespace(v).max(v)
        return snap(v, float(top.detach()) if is_torch(v) else float(top))

    # ------------------------------------------------------------ fast path
    def _fast_stats(
        self, p: Prepared, name: str, rdm: Array | None = None
    ) -> tuple[np.ndarray, float, float]:
        """(vector, centre, norm) for the chunked comparison (ranks or raw RDM values);
        ``rdm`` is ``p``'s RDM when already computed."""
        compare = self.params["compare"]
        key = f"rdm_{compare}_fast"

        def compute() -> tuple[np.ndarray, float, float]:
            v = self._rdm(p) if rdm is None else rdm
            m = int(v.shape[0])
            if compare == "spearman":
                vec = centred_ranks(np.asarray(v))
                centre = 0.0
                if m > FLOAT64_MAX_M:  # keep only the ranks for very large RDMs
                    p.cache.pop("rdm", None)
            else:
                vec = np.asarray(v)
                centre = 0.0 if compare == "cosine" else _chunked_sum(vec) / m
            norm2 = _chunked_dot(vec, vec, centre, centre)
            if not norm2 > 0:
                raise DegenerateInputError(
                    f"rsa: the {self.params['rdm']} RDM of {name} is constant (all pairwise "
                    f"dissimilarities equal{'' if compare != 'cosine' else ' to 0'}); "
                    f"its {compare} correlation is undefined"
                )
            return vec, centre, math.sqrt(norm2)

        return p.cached(key, compute)  # type: ignore[no-any-return]

    def _fast_pair(
        self, px: Prepared, py: Prepared
    ) -> tuple[tuple[np.ndarray, float, float], tuple[np.ndarray, float, float]]:
        """:meth:`_fast_stats` of both sides; two pending rankings run in two threads.

        The RDMs are computed first, one after the other (each GEMM already uses
        every BLAS thread; two concurrent multi-threaded GEMMs would oversubscribe
        the cores).  Ranking is NumPy work that releases the GIL (packing, sort,
        scatter), so ranking X and Y concurrently uses two cores; the results do
        not depend on it (errors are raised for X first, as in sequential order).
        Only the main thread does this: in a worker thread of :func:`repscope.grid`
        the other cores already run other pairs.
        """
        key = f"rdm_{self.params['compare']}_fast"
        if (
            self.params["compare"] == "spearman"
            and px is not py
            and key not in px.cache
            and key not in py.cache
            and available_cpus() > 1
            and threading.current_thread() is threading.main_thread()
        ):
            rx, ry = self._rdm(px), self._rdm(py)
            with ThreadPoolExecutor(2) as pool:
                fx = pool.submit(self._fast_stats, px, "X", rx)
                fy = pool.submit(self._fast_stats, py, "Y", ry)
                return fx.result(), fy.result()
        return self._fast_stats(px, "X"), self._fast_stats(py, "Y")

    def _vector(self, p: Prepared, name: str) -> Array:
        """The comparator-ready form of ``p``'s RDM, computed once and cached."""
        compare = self.params["compare"]
        key = f"rdm_{compare}"

        def compute() -> Array:
            a = self._rdm(p)
            if compare == "kendall":
                return a
            if compare == "spearman":
                from scipy.stats import rankdata

                a = rankdata(a)
            v = _standardise(a, center=compare != "cosine")
            if v is None:
                raise DegenerateInputError(
                    f"rsa: the {self.params['rdm']} RDM of {name} is constant (all pairwise "
                    f"dissimilarities equal{'' if compare != 'cosine' else ' to 0'}); "
                    f"its {compare} correlation is undefined"
                )
            return v

        return p.cached(key, compute)

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        if self._fast(px) and self._fast(py):
            (a, ca, na), (b, cb, nb) = self._fast_pair(px, py)
            r = _chunked_dot(a, b, ca, cb) / (na * nb)
            return np.asarray(min(1.0, max(-1.0, r)), dtype=np.float64)
        a, b = self._vector(px, "X"), self._vector(py, "Y")
        if self.params["compare"] == "kendall":
            from scipy.stats import kendalltau

            tau = float(kendalltau(a, b).statistic)
            if not np.isfinite(tau):
                raise DegenerateInputError(
                    f"rsa: an RDM ({self.params['rdm']}) is constant; Kendall's tau is undefined"
                )
            return np.asarray(tau, dtype=np.float64)
        xp = namespace(a)
        return xp.clip(xp.sum(a * b), -1.0, 1.0)
