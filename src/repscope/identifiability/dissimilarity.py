r"""PLS-SVD similarity m_SVD and the representational dissimilarity d_{f,g}.

**m_SVD** of two paired sample matrices ``X, Y`` (n × d each): standardise every
column (centre, divide by its SD with ddof = 1) to get ``Z_X, Z_Y``; the
cross-correlation matrix is ``C = Z_Xᵀ Z_Y / (n − 1)`` and

.. math::  m_{SVD}(X, Y) = \frac{1}{k}\sum_{j=1}^{k} s_j(C) = \frac{\|C\|_*}{k},
           \qquad k = \min(d_X, d_Y),

the mean of the singular values of ``C`` — the covariances of the PLS-SVD
component pairs of the standardised data (equal to scikit-learn's ``PLSSVD``
with ``k`` components).  ``m_SVD(X, X) = tr(C)/d = 1`` and ``0 ≤ m_SVD ≤ 1``
(Cauchy–Schwarz); ``d_SVD = 1 − m_SVD ∈ [0, 1]``.  Invariant to translation
and to rescaling (or sign flips) of individual columns, and to permuting
columns; **not** invariant to rotations mixing columns.

**d_{f,g}** (Nielsen et al., NeurIPS 2025, Definition 4.5), using the pivot
``y₀``, left-out label ``y_lo`` and input set ``(x₀, …, x_M)`` chosen by
:func:`~repscope.identifiability.llv_distance`:

* f side: for every M-subset ``{y₁..y_M}`` of ``Y \ {y₀, y_lo}`` let
  ``L = [g(y_j) − g(y₀)]_j``; compare the samples ``Lᵀ f(x)`` and ``L'ᵀ f'(x)`` over
  the inputs — the log-odds of ``y_j`` against ``y₀``, which are identifiable —
  ``d_SVD(f) = max_subsets (1 − m_SVD)``;
* g side: ``N = [f(x_i) − f(x₀)]_i``; compare ``Nᵀ g(y)`` and ``N'ᵀ g'(y)`` over all
  K labels: ``d_SVD(g) = 1 − m_SVD``;
* ``d_{f,g} = max(d_SVD(f), d_SVD(g))``.

Both sides are invariant to the identifiability class ``(f, g) ~ (A f, A^{-T} g + c)``
(``Lᵀf`` and ``Nᵀg`` are unchanged up to a per-sample constant).  With T1, T2 the
terms of d_LLV, ``SD[Z_j − Z'_j] ≤ 2·T1`` gives ``tr C ≥ M(1 − 2·T1)``, hence
``d_SVD(f) ≤ 2·T1``, likewise ``d_SVD(g) ≤ 2·T2``, so ``d_{f,g} ≤ 2·d_LLV``
(the paper states ``≤ 2M·ε``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repscope.core.errors import (
    DegenerateInputError,
    InputShapeError,
    InsufficientSamplesError,
    InvalidParameterError,
)
from repscope.identifiability.llv import LLVResult
from repscope.identifiability.model import DiversityConditionError, SoftmaxModel, check_model_pair
from repscope.measures.m_svd import MeanSVD, m_svd, standardize

__all__ = [
    "DissimilarityResult",
    "MeanSVD",
    "m_svd",
    "representation_dissimilarity",
    "standardize",
]

#: refuse to enumerate more label subsets than this
MAX_SUBSETS = 2_000_000


@dataclass(frozen=True)
class DissimilarityResult:
    """Representational dissimilarity ``d_{f,g}`` with its parts.

    Attributes
    ----------
    d_fg : ``max(d_svd_f, d_svd_g)``.
    d_svd_f : ``max over label subsets of 1 − m_SVD`` (f side, worst case).
    d_svd_g : ``1 − m_SVD`` of ``Nᵀg`` vs ``N'ᵀg'`` over all labels (g side).
    m_svd_f : m_SVD of every label subset (same order as ``label_subsets``).
    m_svd_g : g-side m_SVD.
    label_subsets : the M-subsets ``(y₁..y_M)`` of ``Y \\ {y₀, y_lo}``.
    pivot, left_out, input_set : the choices taken from the d_LLV result.
    """

    d_fg: float
    d_svd_f: float
    d_svd_g: float
    m_svd_f: np.ndarray = field(repr=False)
    m_svd_g: float
    label_subsets: tuple[tuple[int, ...], ...] = field(repr=False)
    pivot: int
    left_out: int
    input_set: tuple[int, ...]

    @property
    def worst_subset(self) -> tuple[int, ...]:
        """The label subset attaining ``d_svd_f``."""
        return self.label_subsets[int(np.argmin(self.m_svd_f))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "d_fg": self.d_fg,
            "d_svd_f": self.d_svd_f,
            "d_svd_g": self.d_svd_g,
            "m_svd_g": self.m_svd_g,
            "m_svd_f": [float(v) for v in self.m_svd_f],
            "label_subsets": [list(s) for s in self.label_subsets],
        }


def _log_odds(model: SoftmaxModel, labels: list[int], pivot: int) -> np.ndarray:
    """``Lᵀ f(x)`` for all inputs: columns ``f(x)ᵀ (g(y) − g(y₀))`` (n × |labels|)."""
    return model.F @ (model.G[labels] - model.G[pivot]).T


def _standardize_side(x: np.ndarray, what: str) -> np.ndarray:
    try:
        return standardize(x, what)
    except DegenerateInputError as e:
        raise DiversityConditionError(str(e)) from None


def _batched_m_svd(ca: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """m_SVD of every subset from the full cross-correlation matrix ``ca`` (|R| × |R|)."""
    out = np.empty(subsets.shape[0])
    per = 50_000
    for start in range(0, subsets.shape[0], per):
        s = subsets[start : start + per]
        blocks = ca[s[:, :, None], s[:, None, :]]
        out[start : start + per] = np.linalg.svd(blocks, compute_uv=False).mean(axis=1)
    return np.clip(out, 0.0, 1.0)


def representation_dissimilarity(
    a: SoftmaxModel, b: SoftmaxModel, llv_result: LLVResult
) -> DissimilarityResult:
    """``d_{f,g}`` between two models, using the choices of a d_LLV result.

    Parameters
    ----------
    a, b : SoftmaxModel
        The two models, in the same order as for ``llv_result``.
    llv_result : LLVResult
        From :func:`~repscope.identifiability.llv_distance` on ``(a, b)``; supplies
        the pivot, the left-out label and the input set.

    Returns
    -------
    DissimilarityResult

    Raises
    ------
    InputShapeError
        Models disagree in n, K or M, or the result does not fit them.
    InsufficientSamplesError
        ``K − 2 < M`` (no M-subset of labels besides pivot and left-out).
    DiversityConditionError
        A log-odds column ``f(x)ᵀ(g(y_j) − g(y₀))`` or ``(f(x_i) − f(x₀))ᵀ g(y)`` is
        constant, so a correlation is undefined.
    """
    check_model_pair(a, b, same_dim=True)
    if not isinstance(llv_result, LLVResult):
        raise TypeError(f"llv_result must be an LLVResult, got {type(llv_result).__name__}")
    k, m, n = a.n_labels, a.dim, a.n_inputs
    p, lo, iset = llv_result.pivot, llv_result.left_out, llv_result.input_set
    if not (0 <= p < k and 0 <= lo < k and len(iset) == m + 1 and max(iset) < n):
        raise InputShapeError("llv_result does not belong to these models (labels or inputs)")
    rest = [y for y in range(k) if y not in (p, lo)]
    if len(rest) < m:
        raise InsufficientSamplesError(
            f"d_SVD(f) needs K-2 >= M labels besides the pivot and the left-out one; got K={k}, "
            f"M={m}"
        )
    n_sub = math.comb(len(rest), m)
    if n_sub > MAX_SUBSETS:
        raise InvalidParameterError(
            f"{n_sub} label subsets of size {m} among {len(rest)} labels: too many to enumerate"
        )

    # f side: one standardisation per label column, then every subset's block of C
    za = _standardize_side(_log_odds(a, rest, p), "model a's log-odds Lᵀf")
    zb = _standardize_side(_log_odds(b, rest, p), "model b's log-odds L'ᵀf'")
    cross = za.T @ zb / (n - 1)
    pos = np.asarray(list(itertools.combinations(range(len(rest)), m)), dtype=np.intp)
    msvd_f = _batched_m_svd(cross, pos)
    subsets = tuple(tuple(rest[j] for j in row) for row in pos)

    # g side: the chosen input set
    x0, xs = iset[0], list(iset[1:])
    na, nb = a.F[xs] - a.F[x0], b.F[xs] - b.F[x0]
    ga = _standardize_side(a.G @ na.T, "model a's Nᵀg")
    gb = _standardize_side(b.G @ nb.T, "model b's N'ᵀg'")
    cg = ga.T @ gb / (k - 1)
    msvd_g = float(np.clip(np.mean(np.linalg.svd(cg, compute_uv=False)), 0.0, 1.0))

    d_f = float(1.0 - np.min(msvd_f))
    d_g = 1.0 - msvd_g
    return DissimilarityResult(
        d_fg=max(d_f, d_g),
        d_svd_f=d_f,
        d_svd_g=d_g,
        m_svd_f=msvd_f,
        m_svd_g=msvd_g,
        label_subsets=subsets,
        pivot=p,
        left_out=lo,
        input_set=tuple(iset),
    )
