"""Linear regression (predictivity) measures: how well X linearly predicts Y.

Least squares with an intercept, scored by the pooled coefficient of
determination over all of Y's columns::

    R²(X → Y) = 1 − ‖Ỹ − X̃B‖²_F / ‖Ỹ‖²_F,     B = X̃⁺Ỹ = Sxx⁺ Sxy

(X̃, Ỹ column-centred; the pseudo-inverse acts on the numerical range of
Sxx, so rank-deficient X is handled).  In closed form
``R² = tr(Syx Sxx⁺ Sxy) / tr Syy``, a function of second moments (streamable),
or ``tr(Ux Uxᵀ Ky) / tr Ky`` from Gram matrices (Ux: basis of X̃'s column
space).  ``linear_regression_cv`` scores out-of-fold predictions instead.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from repscope.core.arrays import Array, is_torch, namespace
from repscope.core.errors import InsufficientSamplesError
from repscope.core.linalg import center, range_basis
from repscope.core.validation import warn_degenerate
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import CROSS_VALIDATED, GEOMETRY, Invariance, MeasureInfo
from repscope.measures.moment_measure import MomentMeasure
from repscope.measures.moments import SecondMoments
from repscope.measures.registry import register

__all__ = ["LinearRegression", "LinearRegressionCV", "kfold_indices"]

_ORTHO_SCALE_SHIFT = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
    }
)


@register
class LinearRegression(MomentMeasure):
    r"""In-sample R² of the least-squares prediction of Y from X (with intercept).

    ``R² = 1 − ‖Ỹ − X̃B‖²_F / ‖Ỹ‖²_F = tr(Syx Sxx⁺ Sxy) / tr Syy`` with
    ``B = Sxx⁺Sxy`` (pseudo-inverse on the numerical range).  Pooled over Y's
    columns, so high-variance targets weigh more (equals scikit-learn's
    ``r2_score(..., multioutput="variance_weighted")``).  Asymmetric; values in
    [0, 1]; ``R²(X → X) = 1``.

    Invariances: on the X side every affine map (only X̃'s column space
    matters); on the Y side orthogonal maps, isotropic scaling and
    translation.  Declared: the intersection (orthogonal, permutation,
    isotropic scaling, translation).

    Assumptions: an in-sample fit — with ``dx >= n − 1`` X̃ spans every centred
    vector and R² is trivially 1 (warned); use ``linear_regression_cv`` for an
    out-of-sample score.

    References
    ----------
    Klabunde et al., "Similarity of Neural Network Models: A Survey of
    Functional and Representational Measures", 2023 (linear regression);
    Kornblith et al., ICML 2019 (R²_LR).
    """

    has_gram_path = True

    info = MeasureInfo(
        name="linear_regression",
        family="alignment",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=False,
        metric=False,
        invariances=_ORTHO_SCALE_SHIFT,
        assumptions="In-sample least squares with intercept, predicting Y from X; trivially "
        "1 when dx >= n-1 (warned).",
        reference="Klabunde et al., survey 2023; Kornblith et al., ICML 2019",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    def check_regime(self, n: int, dx: int, dy: int) -> None:
        if dx >= n - 1:
            warn_degenerate(
                f"linear_regression: X has dx={dx} >= n-1={n - 1} features, so it fits any "
                "centred target exactly and R² is trivially 1; use linear_regression_cv or "
                "more samples",
                stacklevel=4,
            )

    def _from_moments(self, mom: SecondMoments) -> Any:
        self.check_regime(mom.n, *mom.dims)
        return self._r2_moments(mom)

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        n, dx, dy = px.n, int(px.data.shape[1]), int(py.data.shape[1])
        self.check_regime(n, dx, dy)
        if self.use_gram(n, dx, dy):
            return self._from_grams(self._gram(px), self._gram(py), px, py)
        basis = self._covariance_factor(px, "range_basis", range_basis)
        return self._r2_moments(self._moments(px, py), basis)

    @staticmethod
    def _r2_moments(mom: SecondMoments, basis: tuple[Array, Array] | None = None) -> Any:
        """``R² = ‖diag(wx)^{-1/2} Vxᵀ Sxy‖²_F / tr Syy`` (``Sxx = Vx diag(wx) Vxᵀ``)."""
        xp = namespace(mom.sxy)
        vx, wx = range_basis(mom.sxx) if basis is None else basis
        t = (vx.T @ mom.sxy) / xp.sqrt(wx)[:, None]
        return xp.clip(xp.sum(t * t) / xp.linalg.trace(mom.syy), 0.0, 1.0)

    def _from_grams(self, kx: Array, ky: Array, px: Prepared, py: Prepared) -> Any:
        xp = namespace(kx)
        ux, _ = range_basis(kx)
        return xp.clip(xp.sum(ux * (ky @ ux)) / xp.linalg.trace(ky), 0.0, 1.0)


def kfold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out index sets: ``np.array_split(default_rng(seed).permutation(n), folds)``."""
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(f) for f in np.array_split(perm, folds)]


def _pinv_solve(xc: Array, yc: Array) -> Array:
    """Minimum-norm least-squares coefficients ``B = xc⁺ yc`` on the numerical range."""
    n, d = int(xc.shape[0]), int(xc.shape[1])
    if d <= n:
        v, w = range_basis(xc.T @ xc)
        return v @ ((v.T @ (xc.T @ yc)) / w[:, None])
    u, w = range_basis(xc @ xc.T)
    return xc.T @ (u @ ((u.T @ yc) / w[:, None]))


@register
class LinearRegressionCV(Measure):
    r"""Out-of-fold R² of the least-squares prediction of Y from X (k-fold).

    Samples are split into ``folds`` held-out sets
    (``np.array_split(np.random.default_rng(seed).permutation(n), folds)``).
    For each fold the model ``y = xB + c`` is fitted on the other folds
    (least squares with intercept; minimum-norm pseudo-inverse solution when
    the training data are rank deficient) and applied to the held-out
    samples; residuals are pooled over all folds and columns::

        R²_cv = 1 − Σ_folds ‖Y_test − Ŷ_test‖²_F / ‖Y − 1ȳᵀ‖²_F

    Asymmetric; values in (−∞, 1] (negative when the held-out prediction is
    worse than the overall mean); ``R²_cv(X → X) = 1`` when the training folds
    have full column rank.  Deterministic for a given ``seed``.

    Parameters
    ----------
    folds : int >= 2, default 5
    seed : int, default 0
        Seed of the fold assignment.

    Invariances: orthogonal maps (hence permutations), isotropic scaling and
    translation of either side (on the X side any affine map while the
    training folds have full column rank).

    Assumptions: needs ``n >= folds``; with ``dx >= n_train − 1`` the fits
    interpolate their training folds and the score is unreliable (warned).

    References
    ----------
    Klabunde et al., survey 2023 (linear regression); Stone, "Cross-validatory
    choice and assessment of statistical predictions", JRSS B 1974.
    """

    pair_bytes: ClassVar[float] = 0.0  # O(n·d) memory: no n × n matrix

    info = MeasureInfo(
        name="linear_regression_cv",
        family="alignment",
        kind="similarity",
        value_range=(-math.inf, 1.0),
        symmetric=False,
        metric=False,
        invariances=_ORTHO_SCALE_SHIFT,
        assumptions="k-fold out-of-sample least squares with intercept, predicting Y from X; "
        "needs n >= folds; unreliable when dx >= n_train-1 (warned).",
        reference="Klabunde et al., survey 2023; Stone, JRSS B 1974",
        differentiable=True,
        **CROSS_VALIDATED.fields(),
        params={"folds": 5, "seed": 0},
        stochastic=True,
        variants=({}, {"folds": 2, "seed": 3}),
    )

    @property
    def min_samples(self) -> int:
        """The smallest n >= folds whose training sets keep three samples."""
        k = int(self.params["folds"])
        n = max(k, self.info.min_samples)
        while n - math.ceil(n / k) < GEOMETRY.n:
            n += 1
        return n

    @property
    def min_samples_reason(self) -> str:
        return f"with folds={self.params['folds']}: {self.info.min_samples_reason}"

    def _check_params(self) -> None:
        self._param_range("folds", 2, math.inf, integer=True)
        self._param_range("seed", 0, math.inf, integer=True)

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        x, y = px.data, py.data
        xp = namespace(x)
        n, dx = px.n, int(x.shape[1])
        k = int(self.params["folds"])
        if n < k:
            raise InsufficientSamplesError(
                f"linear_regression_cv with folds={k} needs at least {k} samples, got {n}"
            )
        tests = kfold_indices(n, k, int(self.params["seed"]))
        n_train = n - max(len(t) for t in tests)
        if dx >= n_train - 1:
            warn_degenerate(
                f"linear_regression_cv: dx={dx} >= n_train-1={n_train - 1}; each fit "
                "interpolates its training folds and the out-of-fold R² is unreliable"
            )
        sse = xp.asarray(0.0, dtype=xp.float64)
        if is_torch(x):
            sse = sse.to(x.device)
        for test in tests:
            train = np.setdiff1d(np.arange(n), test)
            xtr, ytr = _rows(x, train), _rows(y, train)
            mx = xp.mean(xtr, axis=0, keepdims=True)
            my = xp.mean(ytr, axis=0, keepdims=True)
            b = _pinv_solve(xtr - mx, ytr - my)
            resid = _rows(y, test) - my - (_rows(x, test) - mx) @ b
            sse = sse + xp.sum(resid * resid)
        yc = center(y)
        return 1.0 - sse / xp.sum(yc * yc)


def _rows(a: Array, idx: np.ndarray) -> Array:
    xp = namespace(a)
    if is_torch(a):
        index = xp.asarray(idx, device=a.device)
    else:
        index = xp.asarray(idx)
    return xp.take(a, index, axis=0)
