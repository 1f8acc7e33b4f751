r"""The label side of :math:`d^\lambda_{LLV}`, exactly, at any number of labels.

The label side of d_LLV is a minimum over ordered (pivot, left-out) label pairs
of a maximum over the remaining labels (see :mod:`.llv`)::

    T1 = min_{y₀}  min_{y_lo ≠ y₀}  max_{y ∉ {y₀, y_lo}}  t_y(y₀),     t_y = max(a_y, b_y)

Searching the K·(K−1) pairs directly costs ``O(K²·n)`` per pivot, ``O(K³·n)`` in all.
Two observations make it exact at ``O(n·K²)`` multiply-adds.

**1. The left-out label.**  For a fixed pivot, leaving out ``y_lo`` removes one
term from the maximum, so the best choice is the label with the largest term,
and ``min_{y_lo} max_{y ∉ {y₀, y_lo}} t_y`` is the *second largest* ``t_y``.  (When
the largest value is attained twice, every choice leaves it in; the reference
search then keeps the first admissible label, and so does this module.)  With
``reduce="mean"`` the best label to leave out is the one with the largest
``a_y + b_y``.

**2. Every term of every pivot from K × K covariances.**  Write ``C^a = Cov_x(ℓ)``,
``C^b = Cov_x(ℓ')`` (K × K, ddof = 1) and ``d = ℓ − ℓ'``.  Then, for pivot ``p``::

    σ_y²  = C^a_yy + C^a_pp − 2 C^a_yp,      σ'_y² likewise from C^b
    u_y   = 1/σ_y,   w_y = 1/σ_y − 1/σ'_y = (σ'_y² − σ_y²) / (σ_y σ'_y (σ_y + σ'_y))

and since ``ℓ(y,x)/σ_y − ℓ'(y,x)/σ'_y = u_y·d(y,x) + w_y·ℓ'(y,x)``::

    a_y² = u_y² Var[d_y] + 2 u_y w_y Cov[d_y, ℓ'_y] + w_y² Var[ℓ'_y]
    b_y² = u_y² Var[d_p] + 2 u_y w_y Cov[d_p, ℓ'_p] + w_y² Var[ℓ'_p]

So the two within-model covariance matrices give all scales of all pivots, and
of the covariances across the models only the K diagonal entries
``Cov[d_y, ℓ'_y]`` (with ``Var[d_y]`` and ``Var[ℓ'_y]``, ``O(n·K)``) are needed.  Two
details keep this accurate:

* the scales need ``C^a`` only through log-odds, which do not change when a
  constant per input is subtracted from every label: the covariances are taken
  of the log-likelihoods centred over the labels (this removes the common
  ``−ln Z(x)``, so ``σ_y²`` is not a small difference of large variances);
* ``a_y`` and ``b_y`` are written in the difference ``d`` and ``w``, so both are
  small when the two models are close (no ``√(difference of large numbers)``):
  an error δ in ``w_y`` moves ``a_y`` by at most ``|δ|·SD[ℓ'_y]`` (triangle
  inequality of the SD).

Cost: two Gram matrices over the inputs (``n·K²`` multiply-adds in all, blocked
over the inputs: memory ``O(K²)``, never ``n × K × K``; above 4096 labels only the
rows each block of pivots needs, twice the multiply-adds in ``O(block·K)`` memory),
then ``O(K²)`` per-pair arithmetic blocked over pivots.  The pivots whose T1 is within rounding
(``1e-9·(1 + T1)``) of the smallest are then evaluated from the definition
(standard deviations of the log-likelihoods, the reference implementation's
formula), at most :data:`MAX_RECHECK` of them in index order, and the first
minimum wins as in the exhaustive search.  So the chosen pair is the
exhaustive search's, except where two pivots agree to within rounding, and T1
is computed from the definition at the chosen pair.

The computation runs in the array library of its inputs (NumPy, or torch on
any device: ``la``, ``lb`` as float64 tensors) through the array API standard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.arrays import namespace, to_numpy
from repscope.identifiability.model import DiversityConditionError

__all__ = ["LabelChoice", "MAX_RECHECK", "direct_label_terms", "exact_label_side",
           "pivot_t1"]

#: at most this many near-tied pivots are re-evaluated from the definition
MAX_RECHECK = 16
#: pivots within this (relative to 1 + T1) of the smallest T1 are near-ties
_TIE = 1e-9
#: elements per block of the blocked computations
_BLOCK = 2_000_000
#: up to this many labels the K × K covariance matrices are formed whole (134 MB each)
_FULL_GRAM = 4096
#: a log-odds variance below this share of its labels' variances counts as vanishing
_VANISH = 1e-12


@dataclass(frozen=True)
class LabelChoice:
    """The exact label side: chosen pivot and left-out label, T1, and how it was found."""

    pivot: int
    left_out: int
    t1: float
    rechecked: int  # pivots evaluated from the definition (near-ties of the smallest T1)


def _std(xp: Any, x: Any) -> Any:
    return xp.std(x, axis=0, correction=1)


def direct_label_terms(la: Any, lb: Any, pivot: int) -> tuple[Any, Any, Any, Any]:
    """``a_y, b_y, σ_y, σ'_y`` for every label y, from the definition (O(n·K)).

    Entries are +inf where a scale vanishes; the pivot's own entry is +inf and
    must be excluded by the caller.  Works on NumPy arrays and torch tensors.
    """
    xp = namespace(la, lb)
    sa = _std(xp, la - la[:, pivot : pivot + 1])
    sb = _std(xp, lb - lb[:, pivot : pivot + 1])
    ok = (sa > 0) & (sb > 0)
    ok[pivot] = False
    k = la.shape[1]
    a = xp.full((k,), xp.inf, dtype=la.dtype, device=getattr(la, "device", None))
    b = xp.full((k,), xp.inf, dtype=la.dtype, device=getattr(la, "device", None))
    if bool(xp.any(ok)):
        a[ok] = _std(xp, la[:, ok] / sa[ok] - lb[:, ok] / sb[ok])
        b[ok] = _std(xp, la[:, pivot : pivot + 1] / sa[ok] - lb[:, pivot : pivot + 1] / sb[ok])
    bad = ~xp.isfinite(a) | ~xp.isfinite(b)
    a[bad] = xp.inf
    b[bad] = xp.inf
    return a, b, sa, sb


def _choose_left_out(a: np.ndarray, b: np.ndarray, pivot: int, reduce: str,
                     left_out: int | None) -> tuple[int, float]:
    """The reference rule for one pivot: the left-out label minimising T1, first one wins."""
    k = a.shape[0]
    if left_out is not None:
        keep = np.ones(k, dtype=bool)
        keep[[pivot, left_out]] = False
        vals = np.concatenate([a[keep], b[keep]])
        return left_out, float(np.max(vals) if reduce == "max" else np.mean(vals))
    if reduce == "max":
        t = np.maximum(a, b)
        t[pivot] = -np.inf
        top = int(np.argmax(t))
        rest = t.copy()
        rest[top] = -np.inf
        second = float(np.max(rest))
        if second < t[top]:  # a unique largest term: leave it out
            return top, second
        first = 0 if pivot != 0 else 1  # a tie at the top: every choice keeps it
        return first, float(t[top])
    best = (np.inf, -1)
    for lo in range(k):  # the reference loop (mean: rounding differs between choices)
        if lo == pivot:
            continue
        keep = np.ones(k, dtype=bool)
        keep[[pivot, lo]] = False
        v = float(np.mean(np.concatenate([a[keep], b[keep]])))
        if v < best[0]:
            best = (v, lo)
    return best[1], best[0]


class _Cov:
    """Covariances (ddof 1) of the columns of ``x`` after centring each row over the columns.

    Up to :data:`_FULL_GRAM` labels the K × K matrix is accumulated over blocks of rows
    (one SYRK-like product per block); above, only the rows a block of pivots needs are
    formed from the centred copy (twice the multiply-adds, memory O(block·K))."""

    def __init__(self, xp: Any, x: Any) -> None:
        n, k = x.shape
        self.xp, self.n = xp, n
        rows = max(1, _BLOCK // max(k, 1))
        mean = xp.zeros((k,), dtype=x.dtype, device=getattr(x, "device", None))
        for s in range(0, n, rows):
            blk = x[s : s + rows]
            mean = mean + xp.sum(blk - xp.mean(blk, axis=1, keepdims=True), axis=0)
        mean = mean / n
        self.full = k <= _FULL_GRAM
        if self.full:
            gram = xp.zeros((k, k), dtype=x.dtype, device=getattr(x, "device", None))
            for s in range(0, n, rows):
                blk = x[s : s + rows]
                blk = blk - xp.mean(blk, axis=1, keepdims=True) - mean
                gram = gram + blk.T @ blk
            self.gram = gram / (n - 1)
            self.diag = xp.linalg.diagonal(self.gram)
        else:
            self.centred = x - xp.mean(x, axis=1, keepdims=True) - mean
            self.diag = xp.sum(self.centred * self.centred, axis=0) / (n - 1)

    def rows(self, piv: Any) -> Any:
        if self.full:
            return self.gram[piv, :]
        return (self.centred[:, piv].T @ self.centred) / (self.n - 1)


def pivot_t1(la: Any, lb: Any, *, reduce: str = "max", left_out: int | None = None) -> Any:
    """T1 of every pivot (its best left-out label already chosen), from covariances.

    Returns a length-K array (in the inputs' library) with +inf for pivots
    whose scales vanish; see the module docstring for the formulas.
    """
    xp = namespace(la, lb)
    n, k = la.shape
    dev = getattr(la, "device", None)
    ca, cb = _Cov(xp, la), _Cov(xp, lb)
    d = la - lb
    dc = d - xp.mean(d, axis=0)
    bc = lb - xp.mean(lb, axis=0)
    vdd = xp.sum(dc * dc, axis=0) / (n - 1)
    vdb = xp.sum(dc * bc, axis=0) / (n - 1)
    vbb = xp.sum(bc * bc, axis=0) / (n - 1)
    del d, dc, bc
    out = xp.full((k,), xp.inf, dtype=la.dtype, device=dev)
    step = max(1, _BLOCK // max(k, 1))
    cols = xp.arange(k, device=dev)
    for s in range(0, k, step):
        piv = xp.arange(s, min(k, s + step), device=dev)
        out[s : s + piv.shape[0]] = _block_t1(
            xp, piv, cols, ca.rows(piv), cb.rows(piv), ca.diag, cb.diag, vdd, vdb, vbb,
            reduce, left_out)
    return out


def _block_t1(xp: Any, piv: Any, cols: Any, ra: Any, rb: Any, dga: Any, dgb: Any,
              vdd: Any, vdb: Any, vbb: Any, reduce: str, left_out: int | None) -> Any:
    """T1 of a block of pivots; ``ra``, ``rb``: their rows of the two covariance matrices."""
    k = cols.shape[0]
    inf = xp.asarray(xp.inf, dtype=ra.dtype, device=getattr(ra, "device", None))
    pa, pb = dga[piv][:, None], dgb[piv][:, None]
    s2a = dga[None, :] + pa - 2 * ra
    s2b = dgb[None, :] + pb - 2 * rb
    valid = (s2a > _VANISH * (dga[None, :] + pa)) & (s2b > _VANISH * (dgb[None, :] + pb))
    s2a = xp.where(valid, s2a, 1.0)
    s2b = xp.where(valid, s2b, 1.0)
    sa, sb = xp.sqrt(s2a), xp.sqrt(s2b)
    u = 1.0 / sa
    w = (s2b - s2a) / (sa * sb * (sa + sb))
    a2 = u * u * vdd[None, :] + 2 * u * w * vdb[None, :] + w * w * vbb[None, :]
    b2 = (u * u * vdd[piv][:, None] + 2 * u * w * vdb[piv][:, None]
          + w * w * vbb[piv][:, None])
    a = xp.sqrt(xp.clip(a2, 0.0, None))
    b = xp.sqrt(xp.clip(b2, 0.0, None))
    a = xp.where(valid, a, inf)
    b = xp.where(valid, b, inf)
    own = cols[None, :] == piv[:, None]
    if reduce == "max":
        t = xp.where(own, -inf, xp.maximum(a, b))
        if left_out is not None:
            t[:, left_out] = -inf
            res = xp.max(t, axis=1)
        else:  # the second largest term: the largest is left out
            top = xp.argmax(t, axis=1)
            t = xp.where(cols[None, :] == top[:, None], -inf, t)
            res = xp.max(t, axis=1)
    else:
        pair = xp.where(own, 0.0, a + b)
        if left_out is not None:
            drop = pair[:, left_out]
        else:
            drop = xp.max(pair, axis=1)
        res = (xp.sum(xp.where(xp.isfinite(pair), pair, 0.0), axis=1) - xp.where(
            xp.isfinite(drop), drop, 0.0)) / (2 * (k - 2))
        n_inf = xp.sum(xp.astype(~xp.isfinite(pair), xp.int64), axis=1)
        lo_inf = (~xp.isfinite(drop)) if left_out is not None else (n_inf >= 1)
        res = xp.where(n_inf - xp.astype(lo_inf, xp.int64) > 0, inf, res)
    if left_out is not None:
        res = xp.where(piv == left_out, inf, res)
    return res


def exact_label_side(la: Any, lb: Any, *, reduce: str = "max", pivot: int | None = None,
                     left_out: int | None = None) -> LabelChoice:
    """The (pivot, left-out) pair minimising T1 over all K·(K−1) pairs, without a search.

    ``la``, ``lb``: the two models' log-likelihoods (n × K), NumPy or torch float64.
    ``pivot`` / ``left_out`` fix one or both labels.  Raises
    :class:`DiversityConditionError` when every admissible choice has a vanishing scale.
    """
    if pivot is not None:
        candidates = [int(pivot)]
    else:
        est = to_numpy(pivot_t1(la, lb, reduce=reduce, left_out=left_out))
        finite = np.isfinite(est)
        if not finite.any():
            candidates = []
        else:
            best = float(np.min(est[finite]))
            near = np.flatnonzero(est <= best + _TIE * (1.0 + best))
            if near.size > MAX_RECHECK:  # keep the lowest estimates, then index order
                order = np.lexsort((near, est[near]))
                near = np.sort(near[order[:MAX_RECHECK]])
            candidates = [int(p) for p in near]
    choice = (np.inf, -1, -1)
    for p in candidates:
        if left_out is not None and p == left_out:
            continue
        a, b, _, _ = (to_numpy(v) for v in direct_label_terms(la, lb, p))
        lo, t1 = _choose_left_out(a, b, p, reduce, left_out)
        if t1 < choice[0]:
            choice = (t1, p, lo)
    if not np.isfinite(choice[0]):
        raise DiversityConditionError(
            "for every (pivot, left-out) label choice some label's log-odds against the pivot "
            "are constant over the inputs in one model (σ_y = 0); d_LLV is undefined. Are "
            "several unembeddings identical, or do the embeddings not vary?"
        )
    return LabelChoice(pivot=choice[1], left_out=choice[2], t1=float(choice[0]),
                       rechecked=len(candidates))
