r"""Held-out fits of one representation from another, by class of map.

For a *source* ``S`` (n × d_s) and a *target* ``T`` (n × d_t) the samples are
split into two folds; on each fold's training half a map of the class is
fitted to the centred data and the other half is predicted.  Every sample is
predicted once, so the pooled **held-out R²**

.. math::  R^2 = 1 - \frac{\sum_i \|t_i - \hat t_i\|^2}{\sum_i \|t_i - \bar t_{\mathrm{train}}\|^2}

weighs every direction of ``T`` by its variance.  The estimators, each a map
in the class named:

* ``permutation`` — ``t̂ = s · S_{:,π}``: the assignment π of source to target
  units maximising ``Σ_j ⟨S_{:,π(j)}, T_{:,j}⟩`` (Hungarian algorithm) and the
  least-squares scale ``s`` (equal widths only);
* ``orthogonal`` — ``t̂ = s · S Q``: orthogonal Procrustes with scale,
  ``Q = U Vᵀ`` from the SVD of ``S̃ᵀT̃`` and ``s = tr Σ / ‖S̃‖²`` (``Q`` is
  semi-orthogonal when the widths differ);
* ``linear`` — ``t̂ = S B``: ridge regression, the penalty chosen on the
  training half by generalised cross-validation over a grid of 12 values.

The score of a class is the best held-out R² among the estimators whose map
lies in the class (linear ⊇ orthogonal ⊇ permutation), so the scores of the
nested classes are ordered by construction, on the data and on every
resample of the test rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["ESTIMATORS", "CLASS_ESTIMATORS", "Folds", "SourceFits", "HeldoutErrors",
           "class_scores", "duplicate_groups"]

#: estimators in containment order
ESTIMATORS: tuple[str, ...] = ("permutation", "orthogonal", "linear")

#: the estimators whose maps lie in each class
CLASS_ESTIMATORS: dict[str, tuple[str, ...]] = {
    "permutation": ("permutation",),
    "orthogonal": ("permutation", "orthogonal"),
    "linear": ("permutation", "orthogonal", "linear"),
}

#: ridge penalties, relative to the largest eigenvalue of the training source's scatter
_RIDGE_GRID = np.logspace(-10, 1, 12)


@dataclass(frozen=True)
class Folds:
    """Two complementary halves of the samples (``train[f]`` predicts ``test[f]``)."""

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]

    @classmethod
    def split(cls, n: int, rng: np.random.Generator,
              groups: np.ndarray | None = None) -> Folds:
        """Random halves; rows of one group (e.g. repeats of one input) stay together."""
        if groups is None:
            order = rng.permutation(n)
            a, b = np.sort(order[: n // 2]), np.sort(order[n // 2:])
            return cls((a, b), (b, a))
        ids, sizes = np.unique(groups, return_counts=True)
        side = np.zeros(ids.size, dtype=bool)
        filled = [0, 0]
        for g in rng.permutation(ids.size):  # each group to the emptier half
            half = int(filled[1] < filled[0])
            side[g] = bool(half)
            filled[half] += int(sizes[g])
        in_b = side[np.searchsorted(ids, groups)]
        a, b = np.flatnonzero(~in_b), np.flatnonzero(in_b)
        return cls((a, b), (b, a))


def duplicate_groups(*arrays: np.ndarray) -> np.ndarray | None:
    """Group labels joining rows that are identical in any of ``arrays``; ``None`` if none are.

    Held-out fits must not train on one copy of an input and test on another.
    """
    n = arrays[0].shape[0]
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    joined = False
    for a in arrays:
        _, first, inverse = np.unique(np.ascontiguousarray(a).view(
            np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel(),
            return_index=True, return_inverse=True)
        if first.size == n:
            continue
        joined = True
        for i, j in zip(range(n), first[inverse.ravel()]):
            ri, rj = find(i), find(int(j))
            if ri != rj:
                parent[ri] = rj
    if not joined:
        return None
    return np.array([find(i) for i in range(n)])


@dataclass(frozen=True)
class HeldoutErrors:
    """Per-sample held-out squared errors of each estimator, and the baselines.

    ``errors[name]`` is (n,): ``‖t_i − t̂_i‖²``; ``baseline`` is (n,):
    ``‖t_i − t̄_train‖²``; ``residuals`` (n × d_t) of the linear estimator
    (kept for the per-direction spectrum) when requested.
    """

    errors: dict[str, np.ndarray]
    baseline: np.ndarray
    residuals: np.ndarray | None = None
    centred: np.ndarray | None = None

    def r2(self, name: str, weights: np.ndarray | None = None) -> np.ndarray | float:
        """Pooled held-out R² (rows weighted by ``weights``: (B, n) resampling counts)."""
        if weights is None:
            return 1.0 - float(self.errors[name].sum()) / float(self.baseline.sum())
        return 1.0 - (weights @ self.errors[name]) / (weights @ self.baseline)


def class_scores(err: HeldoutErrors, weights: np.ndarray | None = None) -> dict[str, object]:
    """The score of each class: the best held-out R² among its estimators."""
    out: dict[str, object] = {}
    for cls_name, names in CLASS_ESTIMATORS.items():
        vals = [err.r2(n, weights) for n in names if n in err.errors]
        if vals:
            out[cls_name] = np.maximum.reduce(vals) if weights is not None else max(vals)
    return out


class _Fold:
    """The training source of one fold, centred, with its SVD (reused for every target)."""

    def __init__(self, s: np.ndarray, train: np.ndarray, test: np.ndarray) -> None:
        self.train, self.test = train, test
        self.mean = s[train].mean(axis=0)
        self.s_tr = s[train] - self.mean
        self.s_te = s[test] - self.mean
        self.sq = float(np.sum(self.s_tr * self.s_tr))
        u, sig, vt = np.linalg.svd(self.s_tr, full_matrices=False)
        keep = sig > sig[0] * 1e-12 if sig.size and sig[0] > 0 else np.zeros(0, bool)
        self.u, self.sig, self.vt = u[:, keep], sig[keep], vt[keep]
        self.s_te_v = self.s_te @ self.vt.T  # test source in the training source's basis

    def ridge_predict(self, t_tr: np.ndarray) -> np.ndarray:
        """Test predictions of ridge regression, the penalty chosen by GCV on training."""
        if self.sig.size == 0:
            return np.zeros((self.s_te.shape[0], t_tr.shape[1]))
        ut = self.u.T @ t_tr  # (r, d_t)
        f = _gcv_shrinkage(self.sig, ut, float(np.sum(t_tr * t_tr)), self.s_tr.shape[0])
        return self.s_te_v @ ((f / self.sig)[:, None] * ut)


def _gcv_shrinkage(sig: np.ndarray, ut: np.ndarray, total: float, n: int) -> np.ndarray:
    """Ridge shrinkage factors ``σ²/(σ² + λ)`` for the λ of the grid with the smallest GCV.

    ``ut`` is the target in the source's left singular basis, ``total`` its
    squared norm; GCV(λ) = RSS(λ) / (n − dof(λ))².
    """
    s2 = sig**2
    a = np.sum(ut * ut, axis=1)
    best, best_gcv = s2 / (s2 + _RIDGE_GRID[-1] * s2[0]), np.inf
    for rel in _RIDGE_GRID:
        f = s2 / (s2 + rel * s2[0])
        dof = float(np.sum(f))
        if dof >= n - 1:
            continue
        gcv = max(total - float(np.sum((2 * f - f * f) * a)), 0.0) / (n - dof) ** 2
        if gcv < best_gcv:
            best, best_gcv = f, gcv
    return best


class SourceFits:
    """Held-out fits from a fixed source: the folds' SVDs are computed once.

    ``errors(target)`` fits every requested estimator on each fold's training
    half and returns :class:`HeldoutErrors`; calling it again with another
    target (a permuted one, a simulated one) reuses the source's factorisations.
    """

    def __init__(self, source: np.ndarray, folds: Folds) -> None:
        self.source = source
        self.folds = [_Fold(source, tr, te) for tr, te in zip(folds.train, folds.test)]
        self.n, self.width = source.shape

    def errors(self, target: np.ndarray, estimators: tuple[str, ...] = ESTIMATORS,
               keep_residuals: bool = False) -> HeldoutErrors:
        n, dt = target.shape
        errs = {e: np.empty(n) for e in estimators
                if e != "permutation" or dt == self.width}
        base = np.empty(n)
        resid = np.empty((n, dt)) if keep_residuals else None
        centred = np.empty((n, dt)) if keep_residuals else None
        for fold in self.folds:
            t_mean = target[fold.train].mean(axis=0)
            t_tr = target[fold.train] - t_mean
            t_te = target[fold.test] - t_mean
            base[fold.test] = np.sum(t_te * t_te, axis=1)
            if keep_residuals:
                centred[fold.test] = t_te
            cross = None
            if "orthogonal" in errs or "permutation" in errs:
                cross = fold.s_tr.T @ t_tr
            if "permutation" in errs:
                rows, cols = linear_sum_assignment(cross, maximize=True)
                scale = float(cross[rows, cols].sum()) / fold.sq if fold.sq > 0 else 0.0
                pred = np.empty_like(t_te)
                pred[:, cols] = scale * fold.s_te[:, rows]
                errs["permutation"][fold.test] = np.sum((t_te - pred) ** 2, axis=1)
            if "orthogonal" in errs:
                # S̃ᵀT̃ = Vᵀ (Σ Uᵀ T̃): its SVD from the small factor Σ Uᵀ T̃ (rank ≤ n_train)
                p_, sig, rt = np.linalg.svd(fold.sig[:, None] * (fold.u.T @ t_tr),
                                            full_matrices=False)
                scale = float(sig.sum()) / fold.sq if fold.sq > 0 else 0.0
                pred = scale * (fold.s_te_v @ p_) @ rt
                errs["orthogonal"][fold.test] = np.sum((t_te - pred) ** 2, axis=1)
            if "linear" in errs:
                r = t_te - fold.ridge_predict(t_tr)
                errs["linear"][fold.test] = np.sum(r * r, axis=1)
                if keep_residuals:
                    resid[fold.test] = r
        return HeldoutErrors(errs, base, resid, centred)


def fitted_map(source: np.ndarray, target: np.ndarray, cls: str) -> np.ndarray:
    """The map of class ``cls`` fitted to all samples (centred): ``target ≈ source @ map``."""
    s = source - source.mean(axis=0)
    t = target - target.mean(axis=0)
    sq = float(np.sum(s * s))
    cross = s.T @ t
    if cls == "permutation":
        rows, cols = linear_sum_assignment(cross, maximize=True)
        out = np.zeros_like(cross)
        out[rows, cols] = float(cross[rows, cols].sum()) / sq
        return out
    if cls == "orthogonal":
        u, sig, vt = np.linalg.svd(cross, full_matrices=False)
        return (float(sig.sum()) / sq) * (u @ vt)
    everything = np.arange(source.shape[0])
    fold = _Fold(source, everything, everything)
    if fold.sig.size == 0:
        return np.zeros((source.shape[1], target.shape[1]))
    ut = fold.u.T @ t
    f = _gcv_shrinkage(fold.sig, ut, float(np.sum(t * t)), s.shape[0])
    return fold.vt.T @ ((f / fold.sig)[:, None] * ut)
