"""CKA and HSIC beyond memory: debiased HSIC on disjoint random subsets, bandwidth fixed first.

For the RBF kernel the bandwidth ``σ = sigma × median pairwise distance`` is fixed
once, before any subset is drawn, from the median over all pairs of a seeded
uniform sample of :data:`BANDWIDTH_SAMPLE` rows of each representation
(:func:`fixed_bandwidth`; seed 0, independent of the estimate's seed), so every
subset measures the same kernel.  On each of K disjoint random subsets of s
samples the unbiased HSIC estimator (Song et al. 2012; U-centred kernels) gives
``HSIC(X, Y)``, ``HSIC(X, X)``, ``HSIC(Y, Y)``; the subset's value is the HSIC
itself (``hsic``) or ``HSIC(X, Y)/sqrt(HSIC(X, X)·HSIC(Y, Y))`` (``cka``).  The
estimate is the mean over subsets, its interval the Student-t interval of their
spread.  The unbiased HSIC is unbiased on every subset; the CKA ratio is
consistent, with a bias of order 1/s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.core.errors import DegenerateInputError
from repscope.measures._kernels import sq_distances, u_center, u_inner
from repscope.measures.planning import Estimate, read_rows, shape_of, t_interval

__all__ = ["BANDWIDTH_SAMPLE", "fixed_bandwidth", "kernel_subsets"]

#: rows of the seeded sample whose median pairwise distance fixes the RBF bandwidth
BANDWIDTH_SAMPLE = 2000


def fixed_bandwidth(x: Any, sigma: float, who: str = "X", seed: int = 0) -> float:
    """``sigma`` × the median pairwise distance of a seeded sample of rows of ``x``."""
    n = shape_of(x)[0]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=min(n, BANDWIDTH_SAMPLE), replace=False))
    med = _median_distance(read_rows(x, idx, who))
    if not med > 0:
        raise DegenerateInputError(
            "the median pairwise distance is 0 (most samples coincide); the RBF bandwidth "
            "sigma x median distance is undefined")
    return sigma * med


def _median_distance(rows: np.ndarray) -> float:
    """Median of the pairwise Euclidean distances (upper triangle by row blocks; memory:
    the m = n(n − 1)/2 squared distances and one block)."""
    c = rows - rows.mean(axis=0)
    sq = np.einsum("ij,ij->i", c, c)
    n = c.shape[0]
    out = np.empty(n * (n - 1) // 2)
    pos = 0
    step = 256
    for a in range(0, n - 1, step):
        b = min(n - 1, a + step)
        g = sq[a:b, None] + sq[None, a:] - 2.0 * (c[a:b] @ c[a:].T)
        for r in range(a, b):
            seg = g[r - a, r - a + 1 :]
            out[pos : pos + seg.shape[0]] = seg
            pos += seg.shape[0]
    np.maximum(out, 0.0, out=out)
    m = out.shape[0]
    if m % 2:
        out.partition(m // 2)
        return float(np.sqrt(out[m // 2]))
    out.partition([m // 2 - 1, m // 2])
    return float((np.sqrt(out[m // 2 - 1]) + np.sqrt(out[m // 2])) / 2)


def _u_kernel(rows: np.ndarray, bandwidth: float | None) -> np.ndarray:
    if bandwidth is None:  # linear kernel on centred rows
        c = rows - rows.mean(axis=0)
        return u_center(c @ c.T)
    d2 = sq_distances(rows)
    d2 /= -2.0 * bandwidth * bandwidth
    return u_center(np.exp(d2, out=d2))


def kernel_subsets(kind: str, x: Any, y: Any, kernel: str, sigma: float, size: int,
                   subsets: int, seed: int, level: float) -> Estimate:
    """Mean over disjoint random subsets of the unbiased HSIC or the CKA built from it."""
    n = shape_of(x)[0]
    bx = fixed_bandwidth(x, sigma, "X") if kernel == "rbf" else None
    by = fixed_bandwidth(y, sigma, "Y") if kernel == "rbf" else None
    perm = np.random.default_rng(seed).permutation(n)[: size * subsets]
    values = []
    for i in range(subsets):
        idx = np.sort(perm[i * size : (i + 1) * size])
        ku = _u_kernel(read_rows(x, idx, "X"), bx)
        lu = _u_kernel(read_rows(y, idx, "Y"), by)
        hxy = float(u_inner(ku, lu))
        if kind == "hsic":
            values.append(hxy)
            continue
        hxx, hyy = float(u_inner(ku, ku)), float(u_inner(lu, lu))
        if not (hxx > 0 and hyy > 0):
            raise DegenerateInputError(
                "cka: the unbiased HSIC of a representation with itself is not positive on a "
                "subset; CKA is undefined there")
        values.append(hxy / np.sqrt(hxx * hyy))
    est, lo, hi = t_interval(np.asarray(values), level)
    detail = {"subsets": subsets, "subset_size": size, "seed": seed,
              "bandwidth_sample": BANDWIDTH_SAMPLE}
    if kernel == "rbf":
        detail.update(bandwidth_x=bx, bandwidth_y=by)
    return Estimate(est, "estimated", lo, hi, level, detail=detail)
