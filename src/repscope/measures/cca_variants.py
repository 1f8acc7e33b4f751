"""SVCCA, PWCCA and ridge CCA: CCA on principal subspaces, weighted, or regularised.

Each is a :class:`~repscope.measures.cca.CCAMeasure` (see :mod:`repscope.measures.cca`
for canonical correlations, their invariances and the shared spectra); the formula,
invariances and reference of each variant are in its class docstring.
"""

from __future__ import annotations

import math
from typing import Any

from repscope.core.arrays import namespace
from repscope.core.errors import InvalidParameterError
from repscope.core.validation import warn_degenerate
from repscope.measures.cca import (
    AFFINE,
    ORTHO_SCALE_SHIFT,
    CCAMeasure,
    CrossSpectra,
    pca_components_for_variance,
    shrunk_spectrum,
)
from repscope.measures.metadata import GEOMETRY, Invariance, MeasureInfo
from repscope.measures.registry import register

__all__ = ["SVCCA", "PWCCA", "RidgeCCA"]


@register
class SVCCA(CCAMeasure):
    r"""Singular-vector CCA: mean canonical correlation after PCA of each side.

    Each representation is reduced to its ``k`` leading principal components,
    ``X̃ ↦ X̃ V_{:k}`` with ``Sxx = V diag(λ) Vᵀ`` (λ descending), then the
    mean canonical correlation of the reduced pair is returned::

        k = min{k : (λ₁ + … + λ_k) / Σⱼ λⱼ >= var_fraction}    (or k = n_components)
        SVCCA(X, Y) = (1/m) Σᵢ ρᵢ(X̃ V_{:kx}, Ỹ U_{:ky}),   m = min(kx, ky)

    The number of components is chosen independently on each side by
    comparing the cumulative explained-variance *fraction* with
    ``var_fraction``, so it does not depend on the scale of the data (some
    implementations compare the fraction with ``var_fraction × total
    variance`` and keep one component on raw activations).  Computed from
    second moments (PCA = eigen-decomposition of Sxx), hence streamable, or
    from Gram matrices when n < d.

    Parameters
    ----------
    var_fraction : float in (0, 1], default 0.99
        Explained-variance fraction kept on each side.
    n_components : int or None, default None
        Keep exactly this many components on each side (capped at the rank);
        overrides ``var_fraction``.

    Invariances: orthogonal maps (hence permutations), isotropic scaling and
    translation of either side; *not* general invertible linear maps, which
    change the PCA spectrum and hence which directions are kept.

    Assumptions: the retained dimension must be well below n; warned when it
    reaches n − 1 (the reduced CCA is then trivially 1).

    References
    ----------
    Raghu, Gilmer, Yosinski & Sohl-Dickstein, "SVCCA: Singular Vector
    Canonical Correlation Analysis for Deep Learning Dynamics and
    Interpretability", NeurIPS 2017.
    """

    info = MeasureInfo(
        name="svcca",
        family="cca",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=ORTHO_SCALE_SHIFT,
        assumptions="PCA keeps the fewest components reaching var_fraction of the variance on "
        "each side; trivially 1 when the kept dimension reaches n-1 (warned).",
        reference="Raghu et al., SVCCA, NeurIPS 2017",
        differentiable=True,
        **GEOMETRY.fields(),
        params={"var_fraction": 0.99, "n_components": None},
        variants=({}, {"var_fraction": 0.8}, {"n_components": 3}),
    )

    def _check_params(self) -> None:
        self._param_range("var_fraction", 0.0, 1.0)
        if self.params["var_fraction"] <= 0.0:
            raise InvalidParameterError(
                f"svcca: var_fraction must be in (0, 1], got {self.params['var_fraction']!r}"
            )
        self._param_range("n_components", 1, math.inf, integer=True, allow_none=True)

    def check_regime(self, n: int, dx: int, dy: int) -> None:
        """Checked after choosing the number of components (see ``_from_spectra``)."""

    def n_kept(self, eigenvalues: Any) -> int:
        """Number of principal components kept for a spectrum (descending or not)."""
        k = self.params["n_components"]
        r = int(eigenvalues.shape[0])
        if k is not None:
            return min(int(k), r)
        return pca_components_for_variance(eigenvalues, self.params["var_fraction"])

    def _from_spectra(self, s: CrossSpectra) -> Any:
        kx, ky = self.n_kept(s.wx), self.n_kept(s.wy)
        if max(kx, ky) >= s.n - 1:
            warn_degenerate(
                f"svcca kept {max(kx, ky)} >= n-1={s.n - 1} principal components; the "
                "reduced CCA is trivially 1. Lower var_fraction or use more samples."
            )
        xp = namespace(s.cxy)
        return xp.mean(s.truncate(kx, ky).correlations())


@register
class PWCCA(CCAMeasure):
    r"""Projection-weighted CCA (asymmetric: weights come from X).

    With canonical correlations ρ₁…ρ_m and X's unit-norm canonical variates
    ``hᵢ = X̃ aᵢ`` (``m = min(rank X̃, rank Ỹ)``), each correlation is weighted
    by how much of X's neurons it accounts for::

        αᵢ = Σⱼ |⟨hᵢ, x̃ⱼ⟩|        (x̃ⱼ: j-th centred neuron of X)
        PWCCA(X, Y) = Σᵢ αᵢ ρᵢ / Σᵢ αᵢ

    From moments, ``⟨hᵢ, x̃ⱼ⟩ = (Vx diag(√wx) uᵢ)ⱼ`` with ``uᵢ`` the i-th left
    singular vector of the whitened cross-covariance, so no per-sample pass
    is needed.  Both width orders are handled (``dx > dy`` and ``dx < dy``);
    only the ``m`` paired variates of X are weighted.

    Invariances (of either side): permutations, isotropic scaling and
    translation.  On the Y side it is even affine invariant, but on the X side
    the weights depend on X's neuron basis, so it is *not* orthogonally
    invariant.  Asymmetric.

    Assumptions: n well above d; trivially 1 when d >= n − 1 (warned).  The
    weights are unique when the canonical correlations are distinct.

    References
    ----------
    Morcos, Raghu & Bengio, "Insights on representational similarity in
    neural networks with canonical correlation", NeurIPS 2018.
    """

    needs_loadings = True

    info = MeasureInfo(
        name="pwcca",
        family="cca",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=False,
        metric=False,
        invariances=frozenset(
            {Invariance.PERMUTATION, Invariance.ISOTROPIC_SCALING, Invariance.TRANSLATION}
        ),
        assumptions="Weights from X's canonical variates (asymmetric); needs n well above d; "
        "trivially 1 when d >= n-1 (warned).",
        reference="Morcos, Raghu & Bengio, NeurIPS 2018",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    def _from_spectra(self, s: CrossSpectra) -> Any:
        xp = namespace(s.cxy)
        u, rho, _ = xp.linalg.svd(s.whitened(), full_matrices=False)
        rho = xp.clip(rho, 0.0, 1.0)
        if s.lx is None:  # pragma: no cover - guaranteed by needs_loadings
            raise RuntimeError("pwcca: cross spectra were built without loadings")
        alpha = xp.sum(xp.abs(s.lx @ u), axis=0)
        return xp.sum(alpha * rho) / xp.sum(alpha)


@register
class RidgeCCA(CCAMeasure):
    r"""Regularised (ridge / shrinkage) CCA: mean correlation of regularised canonical pairs.

    Each covariance is shrunk towards a multiple of the identity with the same
    trace, which keeps the measure free of the data's scale::

        Rxx = (1 − reg) Sxx + reg · (tr Sxx / dx) · I     (likewise Ryy)
        (aᵢ, bᵢ): singular pairs of Rxx^{-1/2} Sxy Ryy^{-1/2}   (a ← Rxx^{-1/2} u)
        ρ̃ᵢ = corr(X̃aᵢ, Ỹbᵢ) = aᵢᵀSxy bᵢ / sqrt(aᵢᵀSxx aᵢ · bᵢᵀSyy bᵢ)
        ridge_cca(X, Y) = (1/m) Σᵢ ρ̃ᵢ,   m = min(rank X̃, rank Ỹ)

    The reported ρ̃ᵢ are the actual correlations of the regularised canonical
    variates, so values stay in [0, 1] and ``m(X, X) = 1`` (the shrunk
    singular values themselves are not bounded by 1 for this shrinkage form).
    ``reg = 0`` is plain CCA (equals ``mean_cca``); ``reg = 1`` uses the
    directions of partial least squares (singular vectors of Sxy).  Computed on
    the numerical ranges of Sxx and Syy, from moments or Gram matrices.

    Parameters
    ----------
    reg : float in [0, 1], default 0.1
        Shrinkage weight.

    Invariances: reg = 0: every affine map; reg > 0: orthogonal maps,
    isotropic scaling and translation (not invertible linear maps).

    Assumptions: n well above d, as for plain CCA.  Shrinkage stabilises the
    whitening but does **not** remove the small-sample inflation: for two
    independent 100 × 300 Gaussians ridge_cca is 0.9997, 0.99 and 0.94 at reg =
    0.1, 0.5 and 0.9.  The d >= n − 1 DegeneracyWarning is issued only for
    reg = 0; at any reg, compare and grid report the chance level at the
    pair's shape (:mod:`repscope.inference.chance`) and warn when it is high.

    References
    ----------
    Vinod, "Canonical ridge and econometrics of joint production", J.
    Econometrics 1976; Kuss & Graepel, "The geometry of kernel canonical
    correlation analysis", MPI Tech. Report 108, 2003.
    """

    info = MeasureInfo(
        name="ridge_cca",
        family="cca",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=ORTHO_SCALE_SHIFT,
        assumptions="Shrinkage towards a scaled identity; reg=0 is plain CCA (affine "
        "invariant, trivially 1 when d >= n-1). Shrinkage does not remove the small-sample "
        "inflation: unrelated 100 x 300 Gaussians score 0.94-0.9997 at reg 0.9-0.1.",
        reference="Vinod 1976; Kuss & Graepel 2003",
        differentiable=True,
        **GEOMETRY.fields(),
        params={"reg": 0.1},
        variants=({}, {"reg": 0.0}, {"reg": 1.0}),
    )

    def _check_params(self) -> None:
        self._param_range("reg", 0.0, 1.0)

    @property
    def invariances(self) -> frozenset[Invariance]:
        return AFFINE if self.params["reg"] == 0 else ORTHO_SCALE_SHIFT

    def check_regime(self, n: int, dx: int, dy: int) -> None:
        if self.params["reg"] == 0:
            super().check_regime(n, dx, dy)

    def _from_spectra(self, s: CrossSpectra) -> Any:
        xp = namespace(s.cxy)
        dx_ = shrunk_spectrum(s.wx, s.dx, self.params["reg"])
        dy_ = shrunk_spectrum(s.wy, s.dy, self.params["reg"])
        m = s.cxy / xp.sqrt(dx_)[:, None] / xp.sqrt(dy_)[None, :]
        u, sig, vh = xp.linalg.svd(m, full_matrices=False)
        var_x = xp.sum((u * u) * (s.wx / dx_)[:, None], axis=0)
        var_y = xp.sum((vh.T * vh.T) * (s.wy / dy_)[:, None], axis=0)
        rho = xp.clip(sig / xp.sqrt(var_x * var_y), 0.0, 1.0)
        return xp.mean(rho)
