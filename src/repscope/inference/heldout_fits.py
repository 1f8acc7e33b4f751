"""Held-out evaluators of the built-in fitted measures (CCA family, linear regression).

Each evaluator takes ``(measure, X_train, Y_train, X_test, Y_test)`` and
returns ``(held-out value, per-component held-out correlations or None)``;
:data:`BUILTIN_EVALUATORS` maps measure names to them.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from repscope.core.errors import (
    DegenerateInputError,
)
from repscope.measures.base import Measure


# ------------------------------------------------------ held-out evaluators
def range_eig_data(xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors and eigenvalues (descending) of ``xcᵀxc`` on its numerical range.

    Uses the smaller of the feature (d × d) and sample (n × n) cross-product
    matrices: with ``xc xcᵀ = U Λ Uᵀ`` the feature eigenvectors are
    ``V = xcᵀ U Λ^{-1/2}``, so the cost is ``O(n·d·min(n, d) + min(n, d)³)``.
    """
    n, d = xc.shape
    small = xc @ xc.T if d > n else xc.T @ xc
    w, v = np.linalg.eigh((small + small.T) / 2)
    top = float(np.max(np.abs(w))) if w.size else 0.0
    keep = w > top * max(small.shape[0], 1) * 1e-13
    if not np.any(keep):
        raise DegenerateInputError("a representation is constant on the training samples")
    w, v = w[keep][::-1], v[:, keep][:, ::-1]
    if d > n:
        v = (xc.T @ v) / np.sqrt(w)
    return v, w


def column_corr(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns (0 where a column has no variance)."""
    uc = u - u.mean(axis=0)
    vc = v - v.mean(axis=0)
    num = np.sum(uc * vc, axis=0)
    den = np.sqrt(np.sum(uc * uc, axis=0) * np.sum(vc * vc, axis=0))
    out = np.zeros_like(num)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def cca_directions(
    x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Canonical directions fitted on ``(x, y)``.

    Returns ``(A, B, rho, mean_x, mean_y)``: columns of ``A`` (dx × k) and
    ``B`` (dy × k) are the canonical directions, ``rho`` the (training)
    canonical correlations, ``k = min(rank x̃, rank ỹ)``.
    """
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mx, y - my
    vx, lx = range_eig_data(xc)
    vy, ly = range_eig_data(yc)
    wx, wy = vx / np.sqrt(lx), vy / np.sqrt(ly)
    u, rho, vt = np.linalg.svd((xc @ wx).T @ (yc @ wy), full_matrices=False)
    return wx @ u, wy @ vt.T, rho, mx, my


def heldout_canonical_correlations(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> np.ndarray:
    """Correlations on the test samples of the canonical variates fitted on the training ones."""
    a, b, _, mx, my = cca_directions(x_train, y_train)
    return column_corr((x_test - mx) @ a, (y_test - my) @ b)


def heldout_mean_cca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    rho = heldout_canonical_correlations(xtr, ytr, xte, yte)
    return float(np.mean(rho)), rho


def heldout_mean_sq_cca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    rho = heldout_canonical_correlations(xtr, ytr, xte, yte)
    # a negative held-out correlation is a direction that failed to generalise: count 0
    return float(np.mean(np.clip(rho, 0.0, None) ** 2)), rho


def heldout_svcca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    # principal components and their number are chosen on the training part
    mx, my = xtr.mean(axis=0), ytr.mean(axis=0)
    vx, wx = range_eig_data(xtr - mx)
    vy, wy = range_eig_data(ytr - my)
    kx, ky = int(m.n_kept(wx)), int(m.n_kept(wy))
    px_, py_ = vx[:, :kx], vy[:, :ky]
    rho = heldout_canonical_correlations(
        (xtr - mx) @ px_, (ytr - my) @ py_, (xte - mx) @ px_, (yte - my) @ py_
    )
    return float(np.mean(rho)), rho


def heldout_ridge_cca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    reg = float(m.params["reg"])
    mx, my = xtr.mean(axis=0), ytr.mean(axis=0)
    xc, yc = xtr - mx, ytr - my
    vx, wx = range_eig_data(xc)
    vy, wy = range_eig_data(yc)
    sx = (1.0 - reg) * wx + reg * wx.sum() / xtr.shape[1]
    sy = (1.0 - reg) * wy + reg * wy.sum() / ytr.shape[1]
    cxy = (xc @ vx).T @ (yc @ vy)
    u, _, vh = np.linalg.svd(cxy / np.sqrt(sx)[:, None] / np.sqrt(sy)[None, :],
                             full_matrices=False)
    a = vx @ (u / np.sqrt(sx)[:, None])
    b = vy @ (vh.T / np.sqrt(sy)[:, None])
    rho = column_corr((xte - mx) @ a, (yte - my) @ b)
    return float(np.mean(rho)), rho


def heldout_pwcca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    a, b, _, mx, my = cca_directions(xtr, ytr)
    xc = xtr - mx
    # weights from the training fit: αᵢ = Σⱼ |⟨hᵢ, x̃ⱼ⟩|, hᵢ = X̃aᵢ (unit norm by construction)
    alpha = np.sum(np.abs(xc.T @ (xc @ a)), axis=0)
    rho = column_corr((xte - mx) @ a, (yte - my) @ b)
    return float(np.sum(alpha * rho) / np.sum(alpha)), rho


def lstsq_fit(xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """Minimum-norm least-squares ``B = xc⁺ yc`` on the numerical range."""
    v, w = range_eig_data(xc)
    return v @ (((xc @ v).T @ yc) / w[:, None])


def heldout_linear_regression(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    mx, my = xtr.mean(axis=0), ytr.mean(axis=0)
    coef = lstsq_fit(xtr - mx, ytr - my)
    pred = (xte - mx) @ coef + my
    sst = float(np.sum((yte - yte.mean(axis=0)) ** 2))
    if sst <= 0:
        raise DegenerateInputError("linear_regression: Y is constant on the test samples")
    return 1.0 - float(np.sum((yte - pred) ** 2)) / sst, None


#: held-out evaluators of the built-in measures, by measure name
BUILTIN_EVALUATORS: dict[str, Callable[..., tuple[float, np.ndarray | None]]] = {
    "mean_cca": heldout_mean_cca,
    "mean_sq_cca": heldout_mean_sq_cca,
    "svcca": heldout_svcca,
    "ridge_cca": heldout_ridge_cca,
    "pwcca": heldout_pwcca,
    "linear_regression": heldout_linear_regression,
}
