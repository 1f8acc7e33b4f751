"""Multiple-comparison control of permutation p-values, and the permutations a family needs.

A *family* is the set of tests that one statement is made about: the cells of
one figure or of one table (named in its caption).  Within a family:

* :func:`bh_adjust` — Benjamini–Hochberg step-up adjusted p-values (q-values),
  controlling the false discovery rate at ``q`` (the default, ``q = 0.05``);
* :func:`holm_adjust` — Holm step-down adjusted p-values, controlling the
  family-wise error rate at ``q`` (on request);
* :func:`classify` — ``"significant"``, ``"not significant"`` or
  ``"underpowered"``: a permutation p-value can never be smaller than its floor
  ``1/(m + 1)``, so a cell that would not be significant even at its floor
  cannot reach significance at its ``m`` — it is *underpowered*, not evidence
  of no effect;
* :func:`permutations_for_family` — the number of permutations whose floor lies
  below the smallest threshold either adjustment can use (``q/F`` for a family
  of ``F`` tests), capped by a budget.

Formulas: ``docs/statistics.md`` (sections "p-value floor", "Multiple testing",
"Automatic number of permutations").
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError

__all__ = [
    "ADJUST_METHODS",
    "SIGNIFICANCE",
    "adjust",
    "at_floor",
    "bh_adjust",
    "classify",
    "format_pvalue",
    "holm_adjust",
    "method_label",
    "permutations_for_family",
    "permutations_needed",
    "pvalue_floor",
    "smallest_threshold",
]

#: adjustment methods: Benjamini–Hochberg (false discovery rate) and Holm (family-wise error)
ADJUST_METHODS = ("bh", "holm")

#: the verdicts of :func:`classify`
SIGNIFICANCE = ("significant", "not significant", "underpowered")


def check_method(method: str) -> str:
    if method not in ADJUST_METHODS:
        raise InvalidParameterError(
            f"method must be one of {ADJUST_METHODS} (Benjamini–Hochberg or Holm), got {method!r}"
        )
    return method


def check_q(q: Any) -> float:
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
        raise InvalidParameterError(f"q must be a number in (0, 1), got {q!r}")
    return float(q)


def method_label(method: str, q: float) -> str:
    """``"BH q = 0.05"`` / ``"Holm q = 0.05"``: how captions name an adjustment."""
    return f"{'BH' if check_method(method) == 'bh' else 'Holm'} q = {q:g}"


def _pvalues(p: Any) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64).ravel()
    if arr.size == 0:
        raise InvalidParameterError("no p-values to adjust")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise InvalidParameterError("p-values must be finite numbers in [0, 1]")
    return arr


# ------------------------------------------------------------------ adjustments
def bh_adjust(p: Any) -> np.ndarray:
    r"""Benjamini–Hochberg adjusted p-values (q-values), in the input order.

    With the ``F`` p-values sorted, ``p₍₁₎ ≤ … ≤ p₍F₎``::

        p̃₍ᵢ₎ = min_{j ≥ i} min(1, F · p₍ⱼ₎ / j)

    Rejecting every test with ``p̃ ≤ q`` is the Benjamini–Hochberg step-up
    procedure at false discovery rate ``q``: reject ``H₍₁₎ … H₍k₎`` for the
    largest ``k`` with ``p₍k₎ ≤ k q / F``.

    References
    ----------
    Benjamini & Hochberg, "Controlling the false discovery rate", JRSS B 1995.
    """
    arr = _pvalues(p)
    f = arr.size
    order = np.argsort(arr, kind="stable")
    scaled = arr[order] * f / np.arange(1, f + 1)
    adj = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(f)
    out[order] = adj
    return out


def holm_adjust(p: Any) -> np.ndarray:
    r"""Holm adjusted p-values, in the input order.

    With the ``F`` p-values sorted, ``p₍₁₎ ≤ … ≤ p₍F₎``::

        p̃₍ᵢ₎ = max_{j ≤ i} min(1, (F − j + 1) · p₍ⱼ₎)

    Rejecting every test with ``p̃ ≤ q`` is Holm's step-down procedure at
    family-wise error rate ``q``: reject in order while ``p₍ᵢ₎ ≤ q / (F − i + 1)``.

    References
    ----------
    Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Stat. 1979.
    """
    arr = _pvalues(p)
    f = arr.size
    order = np.argsort(arr, kind="stable")
    scaled = np.minimum(1.0, arr[order] * (f - np.arange(f)))
    out = np.empty(f)
    out[order] = np.maximum.accumulate(scaled)
    return out


def adjust(p: Any, method: str = "bh") -> np.ndarray:
    """Adjusted p-values by ``method`` (``"bh"`` or ``"holm"``), in the input order."""
    return bh_adjust(p) if check_method(method) == "bh" else holm_adjust(p)


def classify(
    p: Any, floors: Any = None, *, method: str = "bh", q: float = 0.05
) -> tuple[np.ndarray, list[str]]:
    """Adjusted p-values and a verdict for each test of one family.

    Parameters
    ----------
    p : the family's p-values.
    floors : the smallest p-value each test could have produced (``1/(m + 1)``
        for a one-sided permutation test with ``m`` permutations, see
        :func:`pvalue_floor`); ``None`` (or NaN entries) when unknown.
    method, q : the adjustment and its level.

    Returns
    -------
    (adjusted, verdicts)
        ``verdicts[i]`` is ``"significant"`` when the adjusted p-value is at
        most ``q``; otherwise ``"underpowered"`` when the test would still not
        be significant if its p-value were at its floor (all other p-values
        unchanged) — the number of permutations cannot reveal an effect here —
        and ``"not significant"`` when it could have been.
    """
    check_method(method)
    q = check_q(q)
    arr = _pvalues(p)
    fl = np.full(arr.size, np.nan) if floors is None else np.asarray(floors, dtype=np.float64)
    if fl.shape != arr.shape:
        raise InvalidParameterError(f"floors must match the p-values: {fl.shape} vs {arr.shape}")
    adj = adjust(arr, method)
    verdicts: list[str] = []
    for i in range(arr.size):
        if adj[i] <= q:
            verdicts.append("significant")
        elif math.isfinite(fl[i]) and (fl[i] >= arr[i] or _adjusted_at(arr, i, fl[i], method) > q):
            verdicts.append("underpowered")  # not significant even at its floor
        else:
            verdicts.append("not significant")
    return adj, verdicts


def _adjusted_at(p: np.ndarray, i: int, value: float, method: str) -> float:
    """The adjusted p-value of test ``i`` if its p-value were ``value`` (others unchanged)."""
    moved = p.copy()
    moved[i] = value
    return float(adjust(moved, method)[i])


# ------------------------------------------------------------- floors and m
def pvalue_floor(n_permutations: int, alternative: str = "more_similar") -> float:
    """The smallest p-value of a permutation test with ``m`` permutations.

    ``1/(m + 1)`` for a one-sided test (``p = (b + 1)/(m + 1)`` with ``b = 0``),
    ``min(1, 2/(m + 1))`` for ``alternative="two-sided"``.
    """
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) \
            or n_permutations < 1:
        raise InvalidParameterError(f"n_permutations must be an integer >= 1, got "
                                    f"{n_permutations!r}")
    one = 1.0 / (int(n_permutations) + 1)
    return min(1.0, 2.0 * one) if alternative == "two-sided" else one


def smallest_threshold(family_size: int, q: float = 0.05) -> float:
    """``q / F``: the smallest rejection threshold of BH (rank 1) and of Holm (first step)."""
    if isinstance(family_size, bool) or not isinstance(family_size, (int, np.integer)) \
            or family_size < 1:
        raise InvalidParameterError(f"family_size must be an integer >= 1, got {family_size!r}")
    return check_q(q) / int(family_size)


def permutations_needed(family_size: int, q: float = 0.05,
                        alternative: str = "more_similar") -> int:
    """The smallest ``m`` whose p-value floor lies strictly below ``q / F``.

    One-sided: ``1/(m + 1) < q/F ⇔ m > F/q − 1``, i.e. ``m = ⌊F/q⌋``; two-sided
    (floor ``2/(m + 1)``): ``m = ⌊2F/q⌋``.  Computed exactly (no rounding
    trouble when ``F/q`` is an integer).
    """
    threshold = smallest_threshold(family_size, q)
    k = 2 if alternative == "two-sided" else 1
    m = max(1, math.floor(k * family_size / q) - 1)
    while pvalue_floor(m, alternative) >= threshold:
        m += 1
    while m > 1 and pvalue_floor(m - 1, alternative) < threshold:
        m -= 1
    return m


def permutations_for_family(
    family_size: int,
    q: float = 0.05,
    *,
    minimum: int = 0,
    cap: int | None = None,
    alternative: str = "more_similar",
) -> int:
    """Permutations for a family of ``F`` tests: ``max(minimum, min(needed, cap))``.

    ``needed`` is :func:`permutations_needed` (the floor ``1/(m + 1)`` below
    ``q/F``, so that any cell can reach significance under BH or Holm);
    ``cap`` is the budget (``None`` = none).  A requested ``minimum`` is always
    honoured.  Where the cap binds, cells whose p-values stay at the floor are
    reported ``"underpowered"`` by :func:`classify`.
    """
    needed = permutations_needed(family_size, q, alternative)
    if cap is not None:
        needed = min(needed, int(cap))
    return max(int(minimum), needed)


# ------------------------------------------------------------------ display
def at_floor(p: float | None, floor: float | None) -> bool:
    """Whether ``p`` equals its floor (no permuted value was as extreme)."""
    if p is None or floor is None:
        return False
    try:
        p, floor = float(p), float(floor)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(p) and math.isfinite(floor)):
        return False
    return p <= floor * (1 + 1e-9)


def format_pvalue(p: float | None, floor: float | None = None, digits: int = 3) -> str:
    """``"0.0123"``, or ``"≤ 0.00498"`` when ``p`` is at its floor ``1/(m + 1)``.

    At the floor the permutation test only says that the true p-value is at
    most ``1/(m + 1)``; printing the floor as if it were the p-value overstates
    what ``m`` permutations can show.  ``""`` for a missing p-value.
    """
    if p is None:
        return ""
    try:
        v = float(p)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(v):
        return ""
    text = f"{v:.{digits}g}"
    return f"≤ {text}" if at_floor(v, floor) else text

