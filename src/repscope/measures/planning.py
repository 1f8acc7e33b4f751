"""How a measure fits a memory budget: its plan, its result, and row access to large inputs.

Every measure plans its computation for a shape ``(n, dx, dy)`` and a budget in
bytes (:meth:`repscope.Measure.plan`):

``"exact"``
    the in-memory path (the one every measure always had; its values never change);
``"exact-blocked"``
    the same value computed in blocks of rows whose memory stays within the budget
    (second-moment measures accumulate :class:`~repscope.SecondMoments` by blocks;
    RSA and the k-NN measures compute their distances by tiles);
``"estimated"``
    an estimate from random subsets of stimuli or a uniform random sample of query
    points, with a confidence interval (``ci_low``, ``ci_high``).

A measure without a path that fits raises :class:`~repscope.core.errors.MemoryBudgetError`
naming the largest n its paths handle within the budget, before anything large is
allocated.  :class:`Estimate` is what the non-default paths return.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repscope.core.arrays import is_torch, to_numpy
from repscope.core.errors import (
    InputShapeError,
    InputValueError,
    InvalidParameterError,
    MemoryBudgetError,
)
from repscope.core.memory import format_bytes

__all__ = [
    "PATHS",
    "Estimate",
    "Plan",
    "choose_path",
    "largest_n",
    "mean_interval",
    "read_rows",
    "row_blocks",
    "shape_of",
    "subset_mean",
    "t_interval",
]

#: the paths a plan may take
PATHS = ("exact", "exact-blocked", "estimated")
#: what a caller may ask for (``"auto"``: the plan decides)
REQUESTS = ("auto", *PATHS)


@dataclass(frozen=True)
class Plan:
    """The path a measure takes for one shape within one budget.

    ``exact_bytes`` is the modelled peak of the in-memory path, ``blocked_bytes``
    that of the blocked one (None: the measure has none), ``n_max`` the largest n
    the exact in-memory path handles within ``budget``.
    """

    path: str
    n: int
    budget: int
    exact_bytes: int
    blocked_bytes: int | None
    n_max: int
    reason: str = ""


@dataclass(frozen=True)
class Estimate:
    """The value of a measure on one planned path, with its interval when estimated."""

    value: float
    path: str
    ci_low: float | None = None
    ci_high: float | None = None
    level: float = 0.95
    #: what the estimate was made from (e.g. ``{"subsets": 16, "subset_size": 10000}``)
    detail: dict[str, Any] = field(default_factory=dict)


def shape_of(x: Any) -> tuple[int, int]:
    """``(n, d)`` of a representation without reading it (1-D inputs: d = 1)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return shape[0], 1
    if len(shape) != 2:
        raise InputShapeError(f"a representation must be 2-D (samples × features), got {shape}")
    return shape


def _as_float64(block: Any, who: str) -> np.ndarray:
    a = to_numpy(block) if is_torch(block) else np.asarray(block)
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a.sum()) and not np.all(np.isfinite(a)):
        raise InputValueError(f"{who} contains NaN or infinite values")
    return a


def read_rows(x: Any, idx: np.ndarray, who: str = "X") -> np.ndarray:
    """Rows ``idx`` of ``x`` (NumPy, memory-mapped .npy, torch) as float64, checked finite.

    The rows are read in increasing order (sequential access for memory maps) and
    returned in the order of ``idx``.
    """
    idx = np.asarray(idx, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    out = np.empty((idx.shape[0], shape_of(x)[1]), dtype=np.float64)
    step = 4096
    for s in range(0, idx.shape[0], step):
        sel = order[s : s + step]
        rows = x[idx[sel]] if not is_torch(x) else x[idx[sel].tolist()]
        out[sel] = _as_float64(rows, who).reshape(len(sel), -1)
    return out


def row_blocks(x: Any, rows: int, who: str = "X", dtype: Any = np.float64
               ) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(s, e, x[s:e])`` for consecutive blocks of ``rows`` rows, as ``dtype``, checked finite."""
    n = shape_of(x)[0]
    for s in range(0, n, rows):
        e = min(n, s + rows)
        b = x[s:e]
        b = _as_float64(b, who).reshape(e - s, -1)
        yield s, e, b if dtype == np.float64 else b.astype(dtype)


def _t_quantile(level: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2.0, df))


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t interval (the between-subset spread)."""
    v = np.asarray(values, dtype=np.float64)
    k = v.shape[0]
    mean = float(v.mean())
    if k < 2:
        return mean, -math.inf, math.inf
    half = _t_quantile(level, k - 1) * float(v.std(ddof=1)) / math.sqrt(k)
    return mean, mean - half, mean + half


def mean_interval(values: np.ndarray, population: int, level: float = 0.95
                  ) -> tuple[float, float, float]:
    """Mean of a uniform sample without replacement of a population's per-item values and
    its normal interval with the finite-population correction ``sqrt(1 − q/N)``."""
    v = np.asarray(values, dtype=np.float64)
    q = v.shape[0]
    mean = float(v.mean())
    if q < 2:
        return mean, -math.inf, math.inf
    from scipy.stats import norm

    fpc = math.sqrt(max(0.0, 1.0 - q / population))
    half = float(norm.ppf(0.5 + level / 2.0)) * float(v.std(ddof=1)) / math.sqrt(q) * fpc
    return mean, mean - half, mean + half


def largest_n(cost: Callable[[int], float], budget: int, hi: int = 2**40) -> int:
    """Largest n >= 0 with ``cost(n) <= budget`` (``cost`` non-decreasing; 0 if none)."""
    if cost(1) > budget:
        return 0
    lo, top = 1, 2
    while top < hi and cost(top) <= budget:
        lo, top = top, top * 2
    if top >= hi and cost(hi) <= budget:
        return hi
    while top - lo > 1:
        mid = (lo + top) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            top = mid
    return lo


def choose_path(m: Any, n: int, dx: int, dy: int, budget: int, req: str) -> Plan:
    """The :class:`Plan` of measure ``m`` (see :meth:`repscope.Measure.plan`)."""
    if req not in REQUESTS:
        raise InvalidParameterError(f"path must be one of {REQUESTS}, got {req!r}")
    ex = m.exact_bytes(n, dx, dy)
    bl = m.blocked_bytes(n, dx, dy)
    es = m.estimate_bytes(n, dx, dy) if m.estimable else None
    n_max = largest_n(lambda k: m.exact_bytes(k, dx, dy), budget)

    def plan(path: str, why: str = "") -> Plan:
        return Plan(path, n, budget, int(ex), None if bl is None else int(bl), n_max, why)

    def refuse() -> MemoryBudgetError:
        paths = f"about {format_bytes(ex)} on its exact in-memory path"
        if bl is not None:
            paths += f", {format_bytes(bl)} on its exact blocked path"
        if es is not None:
            paths += f", {format_bytes(es)} to estimate"
        return MemoryBudgetError(
            f"{m.info.name}: n = {n} samples (widths {dx}, {dy}) need {paths}; the memory "
            f"budget is {format_bytes(budget)}, within which the exact in-memory path handles "
            f"n <= {n_max}.  Give a larger memory= (e.g. memory=\"{format_bytes(ex)}\"), or "
            "compare a random subset of the inputs"
        )

    if req == "exact" or (req == "auto" and ex <= budget):
        if ex > budget:
            raise refuse()
        return plan("exact")
    if req in ("auto", "exact-blocked") and bl is not None and bl <= budget:
        return plan("exact-blocked", f"the exact in-memory path needs {format_bytes(ex)}")
    if req == "exact-blocked":
        if bl is None:
            raise InvalidParameterError(
                f"{m.info.name}: no exact blocked path at n = {n} with {m.params}")
        raise refuse()
    if req == "estimated" and es is None:
        raise InvalidParameterError(f"{m.info.name}: no estimated path with {m.params}")
    if es is not None and es <= budget:
        return plan("estimated", f"the exact paths need {format_bytes(ex)} in memory"
                    + ("" if bl is None else f", {format_bytes(bl)} blocked"))
    raise refuse()


def subset_mean(measure: Any, x: Any, y: Any, size: int, subsets: int, seed: int,
                level: float) -> Estimate:
    """Mean of ``measure``'s in-memory value on ``subsets`` disjoint uniformly random subsets
    of ``size`` samples (drawn with ``seed``), with the Student-t interval of their spread.

    Rows of float32/float16 sources go back to float32 (exact), so each subset takes the
    path its in-memory computation takes for such input.
    """
    n = shape_of(x)[0]
    perm = np.random.default_rng(seed).permutation(n)[: size * subsets]
    values = []
    for i in range(subsets):
        idx = np.sort(perm[i * size : (i + 1) * size])
        xs, ys = _low(read_rows(x, idx, "X"), x), _low(read_rows(y, idx, "Y"), y)
        px, py = measure.prepare(xs, "X"), measure.prepare(ys, "Y")
        values.append(float(measure.compare_prepared(px, py)))
    est, lo, hi = t_interval(np.asarray(values), level)
    lo_v, hi_v = measure.info.value_range
    return Estimate(est, "estimated", max(lo_v, lo), min(hi_v, hi), level,
                    detail={"subsets": subsets, "subset_size": size, "seed": seed,
                            "values": values})


def subset_plan(measure: Any, n: int, dx: int, dy: int, budget: int, size: int,
                subsets: int) -> tuple[int, int]:
    """(size, subsets) of :func:`subset_mean`: at most ``size`` samples whose in-memory path
    fits 80 % of ``budget``, at most n/2, and as many disjoint subsets (up to ``subsets``,
    at least 2) as n holds."""
    fits = largest_n(lambda s: measure.exact_bytes(s, dx, dy), int(0.8 * budget))
    size = max(measure.min_samples, min(size, n // 2, fits))
    return size, max(2, min(subsets, n // size))


def _low(rows: np.ndarray, src: Any) -> np.ndarray:
    """Rows back in the source's low precision (exact: they came from it)."""
    dt = getattr(src, "dtype", None)
    if dt is not None and str(dt) in ("float32", "float16", "torch.float32", "torch.float16"):
        return rows.astype(np.float32)
    return rows
