r"""The f side of d_{f,g}: the worst label subset, bracketed by a search and a bound.

``d_SVD(f) = max_S (1 − m_SVD(S))`` over the ``C(R, M)`` subsets ``S`` of ``M`` of the
``R = K − 2`` labels left after the pivot and the left-out label, where
``m_SVD(S) = ‖C_SS‖_* / M`` and ``C = Z_aᵀ Z_b / (n − 1)`` is the cross-correlation
matrix of the two models' standardised log-odds (one column per label; see
:mod:`.dissimilarity`).  Enumerating is impossible beyond a few labels
(``C(1498, 64) ≈ 10¹²⁰``), so the maximum is reported as an interval:

**Upper bound (analytic).**  For every subset ``‖C_SS‖_* ≥ Σ_{j∈S} |C_jj|`` (the
nuclear norm is at least ``tr(D C_SS)`` for any diagonal sign matrix ``D``), so
``1 − m_SVD(S) ≤ mean_{j∈S} (1 − |C_jj|)`` and the maximum is at most the mean
of the ``M`` largest ``h_j = 1 − |C_jj|``.  Since ``C_jj = 1 − Var[Z_j − Z'_j]/2``
and ``SD[Z_j − Z'_j] ≤ a_j + b_j ≤ 2·T1`` (the terms of d_LLV), this is below
``2·T1²`` and, for ``T1 ≤ 1``, below the paper's analytic ``2·T1``.  It therefore
satisfies ``d_{f,g} ≤ 2·d_LLV`` by construction and says nothing about whether the
paper's bound holds.

**Lower bound (search).**  Any subset's value is attained, so the best one found
bounds the maximum from below.  The search works on a *pool* of the ``pool``
labels with the largest ``h_j`` (their cross-correlations, ``n·pool²``
multiply-adds, are the only ones formed):

1. starting subsets: the ``M`` labels with the largest ``h_j`` (the subset that
   maximises the bound), a greedy subset (labels added one at a time, each the
   one that most lowers ``m_SVD`` of the partial subset), and ``n_random`` random
   subsets of the pool;
2. swap local search from the best ``restarts`` of them: with ``C_SS = U Σ Vᵀ``
   and ``G = U Vᵀ``, ``tr(Gᵀ C')`` is a lower bound of ``‖C'‖_*`` for every subset
   matrix ``C'`` (``‖G‖₂ = 1``), and it is linear in the replaced row and column,
   so the change Δ of every swap (one label out, one in) costs ``O(pool·M²)``.
   A swap can only raise ``1 − m_SVD`` when ``Δ < 0``; the ``swap_candidates``
   most negative of those are evaluated exactly and the best improving one is
   taken, until none improves or ``budget`` subsets have been evaluated.

**Certificate.**  A subset containing label ``j`` scores at most
``(h_j + sum of the M − 1 largest other h)/M``.  Labels for which this is not
above the value found cannot be in a better subset; when the remaining labels
are few enough (``C(·, M) ≤ max_enumerate``), their subsets are enumerated and
the maximum is exact (to 1e-12).  When ``C(R, M) ≤ max_enumerate`` everything is
enumerated from the start.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SubsetBounds", "batched_m_svd", "subset_bounds"]

#: subsets whose m_SVD are computed in one batch
_BATCH = 4096
#: a swap must change 1 − m_SVD by more than this to count as an improvement
_IMPROVE = 1e-13


@dataclass(frozen=True)
class SubsetBounds:
    """The maximum of ``1 − m_SVD`` over label subsets, bracketed.

    ``lower`` is attained by ``subset`` (positions into the label list); ``upper``
    is the trace bound; ``exact`` when both are the maximum (enumeration, directly
    or after the certificate).  ``values``/``subsets`` hold every enumerated
    subset's m_SVD when everything was enumerated, else only the best subset's.
    """

    lower: float
    upper: float
    subset: tuple[int, ...]
    exact: bool
    evaluations: int
    method: str
    values: np.ndarray
    subsets: np.ndarray
    settings: dict[str, Any]

    def describe(self) -> str:
        """The search and its budget, in words."""
        s = self.settings
        if self.method == "exhaustive":
            return f"exhaustive: all {self.evaluations} label subsets of size {s['m']}"
        text = (f"search among the {s['pool']} of {s['labels']} labels with the largest "
                f"1 − |C_jj|: {'; '.join(s.get('stages', []))}: {self.evaluations} of "
                f"C({s['labels']}, {s['m']}) subsets evaluated (budget {s['budget']}, seed "
                f"{s['seed']})")
        if self.method == "certified":
            rel = s.get("relevant", 0)
            text += ("; certified exact: " + (
                "no label subset can exceed the value found (trace bound)" if rel < s["m"]
                else f"the {rel} labels that could still exceed it were enumerated"))
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper, "exact": self.exact,
                "method": self.method, "evaluations": self.evaluations,
                "description": self.describe(), **{f"search_{k}": v
                                                  for k, v in self.settings.items()}}


def batched_m_svd(cross: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """m_SVD of every subset (rows of positions) from the cross-correlation ``cross``."""
    out = np.empty(subsets.shape[0])
    m = subsets.shape[1]
    per = max(1, min(50_000, 4_000_000 // max(1, m * m)))
    for start in range(0, subsets.shape[0], per):
        s = subsets[start : start + per]
        blocks = cross[s[:, :, None], s[:, None, :]]
        out[start : start + per] = np.linalg.svd(blocks, compute_uv=False).mean(axis=1)
    return np.clip(out, 0.0, 1.0)


class _Search:
    """Evaluations of subsets of a pool (positions into ``cross``), counted."""

    def __init__(self, cross: np.ndarray, m: int, budget: int, upper: float) -> None:
        self.cross, self.m, self.budget, self.upper = cross, m, budget, upper
        self.evaluations = 0
        self.best = (-np.inf, np.zeros(m, dtype=np.intp))

    def left(self) -> int:
        """Evaluations left; none once the best value found reaches the upper bound."""
        if self.best[0] >= self.upper - 1e-12:
            return 0
        return self.budget - self.evaluations

    def values(self, subsets: np.ndarray) -> np.ndarray:
        """``1 − m_SVD`` of each row of ``subsets`` (any common size)."""
        self.evaluations += subsets.shape[0]
        vals = 1.0 - batched_m_svd(self.cross, subsets)
        if subsets.shape[1] == self.m and vals.size:
            i = int(np.argmax(vals))
            if vals[i] > self.best[0]:
                self.best = (float(vals[i]), np.sort(subsets[i]))
        return vals

    def greedy(self, first: int, width: int) -> np.ndarray:
        """Add, one at a time, the label (among ``width`` by pool order) that most lowers m_SVD."""
        chosen = [first]
        p = self.cross.shape[0]
        while len(chosen) < self.m:
            rest = np.setdiff1d(np.arange(p), chosen)[:width]
            cand = np.column_stack([np.tile(chosen, (rest.size, 1)), rest])
            vals = self.values(cand)
            chosen.append(int(rest[int(np.argmax(vals))]))
        return np.asarray(chosen, dtype=np.intp)

    def local(self, start: np.ndarray, swap_candidates: int) -> tuple[float, bool]:
        """Best-improvement swaps from ``start``; returns the value and whether the last
        neighbourhood was covered completely (a local maximum over all swaps)."""
        c = self.cross
        s = np.array(start, dtype=np.intp)
        value = float(self.values(s[None, :])[0])
        complete = False
        while self.left() > 0:
            blk = c[np.ix_(s, s)]
            u, _, vt = np.linalg.svd(blk)
            g = u @ vt
            gii = np.diag(g)
            r1 = c[:, s] @ g.T  # r1[j, i] = Σ_b C[j, s_b] G[i, b]
            r2 = c[s, :].T @ g  # r2[j, i] = Σ_a C[s_a, j] G[a, i]
            cii = c[s, s]
            old_row = r1[s, np.arange(self.m)] - gii * cii
            old_col = r2[s, np.arange(self.m)] - gii * cii
            new_row = r1 - gii[None, :] * c[:, s]
            new_col = r2 - gii[None, :] * c[s, :].T
            delta = (new_row - old_row) + (new_col - old_col) + gii[None, :] * (
                np.diag(c)[:, None] - cii[None, :])
            delta[s, :] = np.inf  # labels already in the subset
            neg = np.flatnonzero(delta.ravel() < -1e-12 * self.m)
            if neg.size == 0:
                return value, True
            take = min(neg.size, swap_candidates, max(1, self.left()))
            order = neg[np.argsort(delta.ravel()[neg], kind="stable")[:take]]
            js, iis = np.unravel_index(order, delta.shape)
            cand = np.tile(s, (take, 1))
            cand[np.arange(take), iis] = js
            vals = self.values(cand)
            k = int(np.argmax(vals))
            complete = take == neg.size
            if vals[k] <= value + _IMPROVE:
                return value, complete
            s, value = cand[k], float(vals[k])
        return value, complete


def _enumerate(za: np.ndarray, zb: np.ndarray, labels: np.ndarray, m: int
               ) -> tuple[np.ndarray, np.ndarray]:
    n = za.shape[0]
    cross = za[:, labels].T @ zb[:, labels] / (n - 1)
    pos = np.asarray(list(itertools.combinations(range(labels.size), m)), dtype=np.intp)
    return batched_m_svd(cross, pos), labels[pos]


def subset_bounds(za: np.ndarray, zb: np.ndarray, m: int, *, max_enumerate: int = 100_000,
                  budget: int = 20_000, pool: int = 512, n_random: int = 200,
                  restarts: int = 4, swap_candidates: int = 256, seed: int = 0
                  ) -> SubsetBounds:
    """Bracket ``max_S (1 − m_SVD(S))`` over the M-subsets of the columns of ``za``/``zb``.

    ``za``, ``zb``: the two models' standardised log-odds (n × R, columns of unit SD,
    centred).  ``max_enumerate=0`` turns enumeration off (the plain search; used by
    the tests that certify the search against enumeration).
    """
    n, r = za.shape
    diag = np.einsum("ij,ij->j", za, zb) / (n - 1)
    h = np.clip(1.0 - np.abs(diag), 0.0, 1.0)
    order = np.argsort(-h, kind="stable")
    upper = float(min(1.0, np.mean(h[order[:m]])))
    settings: dict[str, Any] = {"m": m, "labels": r, "budget": budget,
                                "pool": min(pool, r), "n_random": n_random,
                                "restarts": restarts, "seed": seed}
    n_sub = math.comb(r, m)
    if n_sub <= max_enumerate:
        msvd, subs = _enumerate(za, zb, np.arange(r), m)
        i = int(np.argmin(msvd))
        value = float(1.0 - msvd[i])
        return SubsetBounds(value, value, tuple(int(v) for v in subs[i]), True, n_sub,
                            "exhaustive", msvd, subs, settings)

    members = np.sort(order[: settings["pool"]])
    members = members[np.argsort(-h[members], kind="stable")]  # pool order: largest h first
    cross = za[:, members].T @ zb[:, members] / (n - 1)
    search = _Search(cross, m, budget, upper)
    rng = np.random.default_rng(seed)
    p = members.size
    stages = ["the bound's worst subset"]
    starts = [np.arange(m, dtype=np.intp)]
    search.values(starts[0][None, :])
    if search.left() > 0:
        width = max(8, min(p, budget // (4 * m)))
        starts.append(search.greedy(0, width))
        stages.append(f"a greedy subset ({width} candidates per step)")
    if n_random > 0 and search.left() > 0:
        count = min(n_random, search.left())
        rand = np.stack([rng.choice(p, size=m, replace=False) for _ in range(count)])
        vals = search.values(rand)
        starts.extend(rand[np.argsort(-vals, kind="stable")[: max(0, restarts - 2)]])
        stages.append(f"{count} random subsets")
    climbs = 0
    for start in starts[:max(restarts, 2)]:
        if search.left() <= 0:
            break
        search.local(start, swap_candidates)
        climbs += 1
    # until the budget is spent, climb again from alternately a random subset of the pool
    # and the best subset found with a third of it replaced by random pool labels
    kicks, max_kicks = 0, max(8, budget // (4 * m))
    while search.left() > 0 and p > m and kicks < max_kicks:
        if kicks % 2 == 0:
            s = rng.choice(p, size=m, replace=False)
        else:
            s = search.best[1].copy()
            out = rng.choice(m, size=max(1, m // 3), replace=False)
            s[out] = rng.choice(np.setdiff1d(np.arange(p), s), size=out.size, replace=False)
        search.local(s, swap_candidates)
        kicks += 1
    if climbs:
        stages.append(f"swap local search from the best {climbs} of them")
    if kicks:
        stages.append(f"{kicks} more climbs from random subsets and from random changes "
                      "of the best")
    if search.best[0] >= upper - 1e-12:
        stages.append("stopped when the value found reached the upper bound")
    settings["stages"] = stages
    lower = max(search.best[0], 0.0)
    best = members[search.best[1]]
    method, exact = "search", False
    if max_enumerate > 0:
        # the certificate: labels that could still be in a better subset
        top = h[order[: m]]
        others = np.where(np.isin(np.arange(r), order[: m - 1]), top.sum(),
                          h + top[: m - 1].sum())
        relevant = np.flatnonzero(others / m > lower + 1e-12)
        settings["relevant"] = int(relevant.size)
        if relevant.size < m:
            method, exact = "certified", True
        elif math.comb(relevant.size, m) <= max_enumerate:
            msvd, subs = _enumerate(za, zb, relevant, m)
            search.evaluations += msvd.size
            i = int(np.argmin(msvd))
            if 1.0 - msvd[i] > lower:
                lower, best = float(1.0 - msvd[i]), subs[i]
            method, exact = "certified", True
    best = np.sort(best)
    if exact:
        upper = lower
    best_msvd = np.clip(np.array([1.0 - lower]), 0.0, 1.0)
    return SubsetBounds(float(lower), max(upper, float(lower)), tuple(int(v) for v in best),
                        exact, search.evaluations, method, best_msvd, best[None, :], settings)
