"""RSA beyond memory: exact by blocks of RDM rows, or estimated on random subsets of stimuli.

Exact blocked (:func:`rsa_blocked`)
    The RDM is never stored.  Its rows are computed in blocks from the normalised
    (correlation, cosine) or column-centred (Euclidean) rows by float64 GEMMs and
    rounded to float32 where the in-memory path stores float32 (more than 2²⁷ pairs,
    or float32 input), as :func:`repscope.measures.rsa.rdm_gemm` does.  Pearson and
    cosine comparisons accumulate their five sums in float64 in one pass (centred on
    the mean of a first block, against cancellation).  Spearman takes two passes:
    the first counts each RDM value's order-preserving 32-bit key in a table per
    binade (2²³ keys each, allocated when a value of that binade appears), the
    second looks up each value's average rank ``2r − (m + 1)`` from the cumulative
    counts and accumulates ``Σ r_x r_y``.  The ranks are those of the in-memory path
    (float32 keys, ties averaged), so the value is the same up to summation order.
    Memory: the normalised rows of both inputs, one block, and the count tables.

Estimated (:func:`repscope.measures.planning.subset_mean`)
    RSA of all pairs among ``s`` stimuli, on ``K`` disjoint uniformly random subsets;
    the estimate is the mean of the K values and its interval the Student-t interval
    of their spread.  The subset value is a consistent estimator of the full-n value
    (its pairs are a sample of the same population of pairs), not an unbiased one:
    Spearman's ρ, Pearson's r and the cosine are ratios, so their expectation on s
    stimuli differs from the value at n by O(1/s) (measured in ``docs/performance.md``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from repscope.core.arrays import namespace
from repscope.core.errors import DegenerateInputError, MemoryBudgetError
from repscope.measures.planning import Estimate, read_rows, shape_of
from repscope.measures.ranks import _sort_keys

__all__ = ["BLOCK_ENTRIES", "FLOAT64_MAX_M", "rsa_blocked", "blocked_bytes"]

#: float64 RDMs longer than this are stored in float32 (memory: 8 vs 4 bytes per pair)
FLOAT64_MAX_M = 2**27

#: RDM entries per block of the blocked passes
BLOCK_ENTRIES = 2**23
#: fewest RDM entries per block (besides one row)
_MIN_ENTRIES = 2**16
#: bytes per block entry (GEMM block, values, keys, masks, ranks of both sides)
_ENTRY_BYTES = 64
#: keys per binade table
_BINADE = 2**23
#: binades the plan assumes per RDM (tables are allocated as values appear)
PLANNED_BINADES = 3


def blocked_bytes(n: int, dx: int, dy: int, compare: str) -> float:
    """Modelled peak of :func:`rsa_blocked`."""
    rows = 8.0 * n * (dx + dy)
    tables = 2 * PLANNED_BINADES * _BINADE * 8.0 if compare == "spearman" else 0.0
    return rows + _ENTRY_BYTES * float(min(_MIN_ENTRIES, n * (n - 1) // 2) + n) + tables


def _unit_rows(x: Any, what: str) -> Any:
    xp = namespace(x)
    norms = xp.sqrt(xp.sum(x * x, axis=1, keepdims=True))
    if not bool(xp.all(norms > 0)):
        raise DegenerateInputError(
            f"rsa: the {what} RDM needs every sample to have a non-zero "
            f"{'vector' if what == 'cosine' else 'variance across features'}; some do not"
        )
    return x / norms


def _normalised_rows(x: np.ndarray, rdm: str, dtype: Any) -> np.ndarray:
    """Rows centred across features (correlation) and scaled to unit norm, as ``dtype``."""
    n = x.shape[0]
    out = np.empty(x.shape, dtype=dtype)
    step = max(1, (64 * 2**20) // max(1, 8 * x.shape[1]))
    for i in range(0, n, step):
        b = np.asarray(x[i : i + step], dtype=np.float64)
        if rdm == "correlation":
            b = b - b.mean(axis=1, keepdims=True)
        out[i : i + step] = _unit_rows(b, rdm)
    return out


def _space(x: Any, rdm: str) -> np.ndarray:
    """Rows whose products give the RDM: unit rows (correlation, cosine) or centred rows."""
    if rdm in ("correlation", "cosine"):
        if rdm == "correlation" and shape_of(x)[1] < 2:
            raise DegenerateInputError("rsa: the correlation RDM needs at least 2 features")
        return _normalised_rows(x, rdm, np.float64)
    z = read_rows(x, np.arange(shape_of(x)[0]))
    z -= z.mean(axis=0)
    return z


def _blocks(z: np.ndarray, rdm: str, dtype: Any, entries: int = BLOCK_ENTRIES) -> Any:
    """Consecutive pieces of the condensed RDM (``pdist`` order), as ``dtype``.

    Correlation and cosine values are ``1 − zᵢ·zⱼ`` written straight into ``dtype``
    and cleaned of rounding noise around 0 as :func:`repscope.measures.rsa.rdm_gemm`
    does, so they equal the in-memory path's values.
    """
    n, d = z.shape
    sq = np.einsum("ij,ij->i", z, z) if rdm in ("euclidean", "sqeuclidean") else None
    zero_tol = 4.0 * d * np.finfo(np.float64).eps
    one = np.float64(1.0)
    a = 0
    while a < n - 1:
        rows = max(1, min(n - 1 - a, entries // max(1, n - a)))
        b = a + rows
        g = z[a:b] @ z[a:].T  # (rows) × (n − a)
        if sq is not None:
            g *= -2.0
            g += sq[a:][None, :]
            g += sq[a:b, None]
            np.maximum(g, 0.0, out=g)
            if rdm == "euclidean":
                np.sqrt(g, out=g)
        out = np.empty(rows * (n - a) - rows * (rows + 1) // 2, dtype=dtype)
        pos = 0
        for r in range(rows):
            seg = g[r, r + 1 :]
            piece = out[pos : pos + seg.shape[0]]
            if sq is None:
                np.subtract(one, seg, out=piece, casting="same_kind")
            else:
                piece[...] = seg
            pos += seg.shape[0]
        if sq is None and out.size and not out.min() > zero_tol:
            out[np.abs(out) <= zero_tol] = 0.0
        yield out
        a = b


def _add_counts(counts: dict[int, np.ndarray], keys: np.ndarray, room: list[float]) -> None:
    """Add the keys' counts into the per-binade tables (one ``bincount`` per block)."""
    kmin, kmax = int(keys.min()), int(keys.max())
    if kmax - kmin >= 2**25:  # a wide block: binade by binade
        hi = keys >> np.uint32(23)
        for b in np.flatnonzero(np.bincount(hi, minlength=512)):
            low = keys[hi == b] & np.uint32(_BINADE - 1)
            _table(counts, int(b), room)[:] += np.bincount(low, minlength=_BINADE)
        return
    c = np.bincount((keys - np.uint32(kmin)).astype(np.intp))
    for b in range(kmin >> 23, (kmax >> 23) + 1):
        lo, hi = max(kmin, b << 23), min(kmax + 1, (b + 1) << 23)
        seg = c[lo - kmin : hi - kmin]
        if seg.any():
            _table(counts, b, room)[lo - (b << 23) : hi - (b << 23)] += seg


def _table(counts: dict[int, np.ndarray], b: int, room: list[float]) -> np.ndarray:
    if b not in counts:
        room[0] -= _BINADE * 8.0
        if room[0] < 0:
            raise MemoryBudgetError(
                "rsa: the RDM's values span more binades than the memory budget has room "
                "for in its rank tables; give a larger memory= or use path='estimated'")
        counts[b] = np.zeros(_BINADE, dtype=np.int64)
    return counts[b]


def _rank_tables(z: np.ndarray, rdm: str, m: int, room: list[float], entries: int
                 ) -> tuple[tuple[int, np.ndarray], float]:
    """``2r − (m + 1)`` of every float32 key of the RDM in one flat table over the binades
    present (first key, table), and Σ (2r − (m + 1))² over the RDM."""
    counts: dict[int, np.ndarray] = {}
    for v in _blocks(z, rdm, np.float32, entries):
        _add_counts(counts, _sort_keys(v), room)
    first, last = min(counts), max(counts)
    room[0] -= (last - first + 1 - len(counts)) * _BINADE * 8.0  # binades between
    if room[0] < 0:
        raise MemoryBudgetError(
            "rsa: the RDM's values span more binades than the memory budget has room for "
            "in its rank tables; give a larger memory= or use path='estimated'")
    flat = np.zeros((last - first + 1) * _BINADE, dtype=np.float64)
    below = 0
    sum_sq = 0.0
    for b in range(first, last + 1):
        c = counts.pop(b, None)
        if c is None:
            continue
        total = int(c.sum())
        excl = np.cumsum(c) - c + below  # entries with a smaller key
        val = flat[(b - first) * _BINADE : (b - first + 1) * _BINADE]
        np.multiply(excl, 2, out=excl)
        excl += c
        excl -= m
        val[:] = excl  # 2r − (m + 1) of each key
        sum_sq += float(np.dot(c.astype(np.float64), val * val))
        below += total
    return (first << 23, flat), sum_sq


def _lookup(table: tuple[int, np.ndarray], v: np.ndarray) -> np.ndarray:
    base, flat = table
    keys = _sort_keys(v).astype(np.intp)
    keys -= base
    return flat[keys]


def rsa_blocked(x: Any, y: Any, rdm: str, compare: str, *, low_precision: bool,
                budget: int) -> Estimate:
    """Exact RSA without storing the RDMs (module docstring); ``compare`` not Kendall."""
    n = shape_of(x)[0]
    m = n * (n - 1) // 2
    dtype = np.float32 if low_precision or m > FLOAT64_MAX_M else np.float64
    zx, zy = _space(x, rdm), _space(y, rdm)
    tables = 2 * PLANNED_BINADES * _BINADE * 8.0 if compare == "spearman" else 0.0
    spare = budget - zx.nbytes - zy.nbytes - tables
    entries = int(min(BLOCK_ENTRIES, max(_MIN_ENTRIES, spare // _ENTRY_BYTES)))
    used = float(zx.nbytes + zy.nbytes + _ENTRY_BYTES * (min(entries, m) + n))
    if compare == "spearman":
        room = [budget - used]
        tx, sxx = _rank_tables(zx, rdm, m, room, entries)
        ty, syy = _rank_tables(zy, rdm, m, room, entries)
        sxy = 0.0
        for vx, vy in zip(_blocks(zx, rdm, np.float32, entries),
                          _blocks(zy, rdm, np.float32, entries)):
            sxy += float(np.dot(_lookup(tx, vx), _lookup(ty, vy)))
        num, den2 = sxy, sxx * syy
    else:
        cx = cy = 0.0
        sx = sy = sxx = syy = sxy = 0.0
        first = True
        for vx, vy in zip(_blocks(zx, rdm, dtype, entries), _blocks(zy, rdm, dtype, entries)):
            a, b = vx.astype(np.float64), vy.astype(np.float64)
            if first and compare == "pearson":  # a shift against cancellation
                cx, cy = float(a.mean()), float(b.mean())
            first = False
            a -= cx
            b -= cy
            sx += float(a.sum())
            sy += float(b.sum())
            sxx += float(np.dot(a, a))
            syy += float(np.dot(b, b))
            sxy += float(np.dot(a, b))
        if compare == "pearson":
            num = sxy - sx * sy / m
            den2 = (sxx - sx * sx / m) * (syy - sy * sy / m)
        else:
            num, den2 = sxy, sxx * syy
    if not den2 > 0:
        raise DegenerateInputError(
            f"rsa: an RDM ({rdm}) is constant; its {compare} correlation is undefined")
    r = min(1.0, max(-1.0, num / math.sqrt(den2)))
    return Estimate(r, "exact-blocked", detail={"pairs": m, "block_entries": entries})
