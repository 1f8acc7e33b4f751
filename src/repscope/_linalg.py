"""Small, backend-generic linear-algebra helpers (float64, array API)."""

from __future__ import annotations

from typing import Any

from ._array import Array, namespace

__all__ = [
    "center",
    "centered_gram",
    "psd_eigh",
    "range_basis",
    "psd_power",
    "nuclear_norm",
    "rank_tol",
]


def center(x: Array) -> Array:
    """Subtract the column means."""
    xp = namespace(x)
    return x - xp.mean(x, axis=0, keepdims=True)


def centered_gram(x: Array) -> Array:
    """``X̃ X̃ᵀ`` for column-centred ``X``: the linear-kernel Gram matrix (n × n)."""
    xc = center(x)
    return xc @ xc.T


def rank_tol(eigvals: Array, size: int) -> Any:
    """Relative tolerance below which eigenvalues of a PSD matrix count as zero."""
    xp = namespace(eigvals)
    top = xp.max(xp.abs(eigvals))
    return top * max(size, 1) * 1e-13


def psd_eigh(a: Array) -> tuple[Array, Array]:
    """Eigen-decomposition of a symmetric PSD matrix with eigenvalues clipped at 0."""
    xp = namespace(a)
    sym = (a + a.T) / 2
    w, v = xp.linalg.eigh(sym)
    return xp.clip(w, 0.0, None), v


def range_basis(a: Array, tol: float | None = None) -> tuple[Array, Array]:
    """Eigenvectors (columns) and eigenvalues spanning the numerical range of PSD ``a``.

    Eigenvalues below ``tol`` (default :func:`rank_tol`) are dropped.
    """
    w, v = psd_eigh(a)
    cut = rank_tol(w, a.shape[0]) if tol is None else tol
    keep = w > cut
    return v[:, keep], w[keep]


def psd_power(a: Array, power: float, tol: float | None = None) -> Array:
    """``a**power`` for symmetric PSD ``a`` (pseudo-power: null space maps to 0)."""
    v, w = range_basis(a, tol)
    xp = namespace(a)
    return (v * xp.pow(w, power)) @ v.T


def nuclear_norm(a: Array) -> Array:
    """Sum of singular values."""
    xp = namespace(a)
    return xp.sum(xp.linalg.svdvals(a))
