r"""PLS-SVD similarity m_SVD of Nielsen et al. (NeurIPS 2025).

Standardise every column of ``X`` and ``Y`` (centre, divide by its SD with
ddof = 1) to get ``Z_X, Z_Y``; with ``C = Z_Xᵀ Z_Y / (n − 1)``

.. math::  m_{SVD}(X, Y) = \frac{1}{k}\sum_{j=1}^{k} s_j(C) = \frac{\|C\|_*}{k},
           \qquad k = \min(d_X, d_Y),

the mean covariance of the PLS-SVD component pairs (scikit-learn's ``PLSSVD``
with ``k`` components).  ``m_SVD(X, X) = 1`` and ``0 ≤ m_SVD ≤ 1``
(Cauchy–Schwarz).  Invariant to translation and to rescaling (or sign flips)
of individual columns, and to permuting columns; **not** to rotations mixing
columns.  The identifiability distance d_{f,g}
(:mod:`repscope.identifiability.dissimilarity`) is built from it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from repscope.core.arrays import Array, namespace, to_numpy
from repscope.core.errors import DegenerateInputError, InputShapeError
from repscope.core.validation import CONSTANT_RTOL, constant_columns
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import GEOMETRY, Invariance, MeasureInfo
from repscope.measures.registry import register

__all__ = ["MeanSVD", "m_svd", "standardize"]


def standardize(x: np.ndarray, what: str = "X") -> np.ndarray:
    """Centre every column and divide it by its SD (ddof = 1).

    Raises :class:`DegenerateInputError` when a column is constant.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x * 2.0 ** -_column_exponents(np.max(np.abs(x), axis=0))  # exact, per column
    xc = x - x.mean(axis=0, keepdims=True)
    sd = np.std(x, axis=0, ddof=1)
    const = constant_columns(sd, np.max(np.abs(x), axis=0))
    if np.any(const):
        cols = np.flatnonzero(const).tolist()
        raise DegenerateInputError(
            f"{what} has constant column(s) {cols}; standardised correlations are undefined"
        )
    return xc / sd


def _column_exponents(col_max: Any) -> Any:
    """Per column, the power of two bringing its largest magnitude into [1/2, 1) (0 for
    all-zero columns): each column is standardised at its own scale, so no column's
    squares underflow or overflow whatever the others' magnitudes."""
    _, e = np.frexp(np.asarray(col_max, dtype=np.float64))
    return np.where(np.asarray(col_max) > 0, e, 0).astype(np.float64)


def m_svd(X: Any, Y: Any) -> float:
    """Mean singular value of the cross-correlation of standardised ``X`` and ``Y``.

    ``m_SVD = ‖Z_Xᵀ Z_Y / (n−1)‖_* / min(d_X, d_Y)`` ∈ [0, 1] (see the module docstring).
    """
    x = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise InputShapeError(f"X and Y must be 2-D with equal rows, got {x.shape}, {y.shape}")
    if x.shape[0] < 2:
        raise InputShapeError("m_SVD needs at least 2 samples")
    c = standardize(x, "X").T @ standardize(y, "Y") / (x.shape[0] - 1)
    s = np.linalg.svd(c, compute_uv=False)
    return float(np.clip(np.mean(s), 0.0, 1.0))


class MeanSVD(Measure):
    r"""PLS-SVD similarity ``m_SVD = ‖Z_Xᵀ Z_Y/(n−1)‖_* / min(d_X, d_Y)`` on standardised data.

    The mean covariance of the PLS-SVD component pairs of column-standardised X
    and Y (Nielsen et al., NeurIPS 2025, building block of d_{f,g}).  1 for X = Y,
    in [0, 1].  Invariant to translation, isotropic (indeed per-column) scaling and
    column permutation; not to rotations.  Undefined when a column is constant.

    Registered as ``repscope.measure("m_svd")``; the identifiability distances
    (:mod:`repscope.identifiability.dissimilarity`) build d_{f,g} from it.
    """

    pair_bytes: ClassVar[float] = 0.0  # O(n·d) memory: no n × n matrix

    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="m_svd",
        family="identifiability",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=frozenset(
            {Invariance.PERMUTATION, Invariance.ISOTROPIC_SCALING, Invariance.TRANSLATION}
        ),
        assumptions="Every column must vary; columns are standardised separately, so the "
        "value depends on the coordinate axes (use it on identifiable coordinates such as "
        "log-odds).",
        reference="Nielsen, Marconato, Dittadi, Gresele, NeurIPS 2025 (PLS-SVD, Def. 4.5)",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    def _prepare(self, p: Prepared) -> None:
        xp = namespace(p.data)
        x = p.data
        col_max = xp.max(xp.abs(x), axis=0)
        exps = _column_exponents(to_numpy(col_max))
        x = x * xp.asarray(2.0**-exps, dtype=x.dtype, **_device(x))  # exact, per column
        col_max = xp.max(xp.abs(x), axis=0)
        xc = x - xp.mean(x, axis=0, keepdims=True)
        sd = xp.sqrt(xp.sum(xc * xc, axis=0) / (p.n - 1))
        const = constant_columns(sd, col_max)
        if bool(xp.any(const)):
            cols = [int(i) for i in np.flatnonzero(to_numpy(const))]
            raise DegenerateInputError(
                f"m_svd: column(s) {cols} are constant across samples (standard deviation "
                f"<= {CONSTANT_RTOL:g} x their largest magnitude); their correlations are "
                "undefined"
            )
        p.cache["z"] = xc / sd

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        xp = namespace(px.data)
        c = px.cache["z"].T @ py.cache["z"] / (px.n - 1)
        s = xp.linalg.svdvals(c)
        return xp.clip(xp.mean(s), 0.0, 1.0)


def _device(x: Array) -> dict[str, Any]:
    return {"device": x.device} if hasattr(x, "device") and not isinstance(x, np.ndarray) else {}


register(MeanSVD)
