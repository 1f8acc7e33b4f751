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
(``Lᵀf`` and ``Nᵀg`` are unchanged up to a per-sample constant).

**An interval.**  The f side is a maximum over ``C(K − 2, M)`` label subsets.  Up
to ``max_enumerate`` (10⁵) of them are enumerated and the value is exact; beyond
that (K = 1500, M = 64: about 10¹²⁰ subsets) a search finds a subset whose value
bounds the maximum from below, and the trace of the cross-correlation bounds it
from above (:mod:`.subset_search`), so ``d_{f,g}`` is reported as
``[lower, upper]`` with the search's budget.  With T1, T2 the terms of d_LLV,
``SD[Z_j − Z'_j] ≤ a_j + b_j ≤ 2·T1`` gives ``C_jj ≥ 1 − 2·T1²``, hence every
subset has ``1 − m_SVD ≤ 2·T1² ≤ 2·T1`` (for T1 ≤ 1), likewise ``d_SVD(g) ≤ 2·T2``:
the upper end satisfies ``d_{f,g} ≤ 2·d_LLV`` by construction (the paper states
``≤ 2M·ε``).  Checking that inequality is therefore no test of the paper's claim;
:func:`bound_check` compares the *lower* end, the only one that could falsify it.
"""

from __future__ import annotations

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
from repscope.identifiability.subset_search import subset_bounds
from repscope.measures.m_svd import MeanSVD, m_svd, standardize

__all__ = [
    "DissimilarityResult",
    "bound_check",
    "MeanSVD",
    "m_svd",
    "representation_dissimilarity",
    "standardize",
]

@dataclass(frozen=True)
class DissimilarityResult:
    """Representational dissimilarity ``d_{f,g}`` with its parts, as an interval.

    The f side is a maximum over label subsets: enumerated when there are at most
    ``max_enumerate`` of them (then ``exact``), otherwise bracketed by a search
    (``d_svd_f``, a value a subset attains: a lower bound) and an analytic bound
    (``d_svd_f_upper``); see :mod:`.subset_search`.

    Attributes
    ----------
    d_fg : ``max(d_svd_f, d_svd_g)``: the lower end of ``d_{f,g}`` (its value when ``exact``).
    d_svd_f : the largest ``1 − m_SVD`` found over label subsets (all of them when ``exact``).
    d_svd_g : ``1 − m_SVD`` of ``Nᵀg`` vs ``N'ᵀg'`` over all labels (g side, exact for the set).
    m_svd_f : m_SVD of every enumerated label subset (same order as ``label_subsets``);
        after a search only the worst subset found.
    m_svd_g : g-side m_SVD.
    label_subsets : the M-subsets ``(y₁..y_M)`` of ``Y \\ {y₀, y_lo}`` in ``m_svd_f``.
    pivot, left_out, input_set : the choices taken from the d_LLV result.
    d_svd_f_upper : upper bound of the f side (equal to ``d_svd_f`` when ``exact``).
    exact : whether the interval is a point (enumeration, or the search certified).
    search : how the f side was computed (method, subsets evaluated, budget, words).
    analytic_upper : ``min(1, 2·max(T1, T2))`` from the d_LLV result: the paper's analytic
        bound for the chosen pivot, left-out label and input set (with ``reduce="max"``,
        the paper's setting).
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
    d_svd_f_upper: float = float("nan")
    exact: bool = True
    search: dict[str, Any] = field(default_factory=dict, repr=False)
    analytic_upper: float = float("nan")

    @property
    def lower(self) -> float:
        """Lower end of ``d_{f,g}``: attained by the worst label subset found."""
        return self.d_fg

    @property
    def upper(self) -> float:
        """Upper end of ``d_{f,g}`` (``≤ 2·d_LLV`` by construction)."""
        return max(self.d_svd_f_upper, self.d_svd_g)

    @property
    def worst_subset(self) -> tuple[int, ...]:
        """The label subset attaining ``d_svd_f``."""
        return self.label_subsets[int(np.argmin(self.m_svd_f))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "d_fg": self.d_fg,
            "d_fg_lower": self.lower,
            "d_fg_upper": self.upper,
            "d_fg_exact": self.exact,
            "d_fg_analytic_upper": self.analytic_upper,
            "d_fg_search": self.search.get("description", ""),
            "d_svd_f": self.d_svd_f,
            "d_svd_f_upper": self.d_svd_f_upper,
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


def representation_dissimilarity(
    a: SoftmaxModel, b: SoftmaxModel, llv_result: LLVResult, *,
    max_enumerate: int = 100_000, budget: int = 20_000, pool: int = 512, seed: int = 0,
) -> DissimilarityResult:
    """``d_{f,g}`` between two models, using the choices of a d_LLV result.

    Parameters
    ----------
    a, b : SoftmaxModel
        The two models, in the same order as for ``llv_result``.
    llv_result : LLVResult
        From :func:`~repscope.identifiability.llv_distance` on ``(a, b)``; supplies
        the pivot, the left-out label and the input set.
    max_enumerate : int
        Enumerate the label subsets of the f side when there are at most this many
        (the result is then exact); otherwise search (:mod:`.subset_search`).
    budget, pool, seed : the search's number of subset evaluations, the labels it
        searches among (those with the least correlated log-odds), and its seed.

    Returns
    -------
    DissimilarityResult
        ``d_fg`` is the lower end of the interval (``upper`` the upper end); both
        are the exact value when ``exact``.

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
    for name, v, lo_ in (("max_enumerate", max_enumerate, 0), ("budget", budget, 1),
                         ("pool", pool, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo_:
            raise InvalidParameterError(f"{name} must be an integer >= {lo_}, got {v!r}")
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

    # f side: one standardisation per label column, then the subsets (enumerated or searched)
    za = _standardize_side(_log_odds(a, rest, p), "model a's log-odds Lᵀf")
    zb = _standardize_side(_log_odds(b, rest, p), "model b's log-odds L'ᵀf'")
    found = subset_bounds(za, zb, m, max_enumerate=int(max_enumerate), budget=int(budget),
                          pool=int(pool), seed=seed)
    subsets = tuple(tuple(rest[j] for j in row) for row in found.subsets)

    # g side: the chosen input set
    x0, xs = iset[0], list(iset[1:])
    na, nb = a.F[xs] - a.F[x0], b.F[xs] - b.F[x0]
    ga = _standardize_side(a.G @ na.T, "model a's Nᵀg")
    gb = _standardize_side(b.G @ nb.T, "model b's N'ᵀg'")
    cg = ga.T @ gb / (k - 1)
    msvd_g = float(np.clip(np.mean(np.linalg.svd(cg, compute_uv=False)), 0.0, 1.0))

    d_f = float(1.0 - np.min(found.values)) if found.method == "exhaustive" else found.lower
    d_g = 1.0 - msvd_g
    return DissimilarityResult(
        d_fg=max(d_f, d_g),
        d_svd_f=d_f,
        d_svd_g=d_g,
        m_svd_f=found.values,
        m_svd_g=msvd_g,
        label_subsets=subsets,
        pivot=p,
        left_out=lo,
        input_set=tuple(iset),
        d_svd_f_upper=max(d_f, found.upper),
        exact=found.exact,
        search=found.to_dict(),
        analytic_upper=float(min(1.0, 2.0 * max(llv_result.t1, llv_result.t2))),
    )


def bound_check(dis: DissimilarityResult, llv_result: LLVResult) -> dict[str, Any]:
    """The paper's bound ``d_{f,g} ≤ 2M·d_LLV`` (Theorem 4.7), checked the falsifiable way.

    Only the lower end of ``d_{f,g}`` can falsify the bound: it is attained by a
    label subset, so ``lower > 2M·d_LLV`` would be a real violation (d_LLV is at the
    same choices; its input side comes from a search).  The upper end is derived
    from T1 and T2 and satisfies ``≤ 2·d_LLV`` by construction, so comparing it with
    the bound proves nothing; it is reported as such.
    """
    m = len(dis.input_set) - 1
    rhs = 2 * m * llv_result.distance
    falsified = dis.lower > rhs * (1 + 1e-12) + 1e-15
    if falsified:
        sentence = (f"The paper's bound d_fg <= 2M·d_LLV fails here: a label subset attains "
                    f"d_fg >= {dis.lower:.4g} > 2M·d_LLV = {rhs:.4g}.")
    else:
        sentence = (f"Checked with the lower end of d_fg, the only side that could falsify it "
                    f"(a value a label subset attains): {dis.lower:.4g} <= 2M·d_LLV = "
                    f"{rhs:.4g}, so the paper's bound d_fg <= 2M·d_LLV is not falsified here.")
    sentence += (f" The upper end, {dis.upper:.4g} <= 2·d_LLV = "
                 f"{2 * llv_result.distance:.4g}, holds by construction and is no evidence "
                 "for the bound.")
    return {"bound": "d_fg <= 2M·d_LLV", "checked_with": "lower end of d_fg",
            "lower": dis.lower, "two_m_d_llv": rhs, "falsified": bool(falsified),
            "sentence": sentence}
