"""Canonical correlation analysis (CCA) family.

Canonical correlations ρ₁ ≥ ρ₂ ≥ … are the singular values of the whitened
cross-covariance ``Σxx^{-1/2} Σxy Σyy^{-1/2}``, equivalently the cosines of the
principal angles between the column spaces of the centred X̃ and Ỹ.  They are
computed on the numerical range of each covariance (rank-deficient directions
are dropped), so there are ``min(rank X̃, rank Ỹ)`` of them.

When ``d >= n`` a centred representation spans the whole (n − 1)-dimensional
space of centred sample vectors, so every canonical correlation is 1: CCA
measures are then trivially 1 and repscope warns (:class:`DegeneracyWarning`).
"""

from __future__ import annotations

from typing import Any

from .._array import Array, namespace
from .._linalg import range_basis
from ..metadata import Invariance, MeasureInfo
from ..moments import SecondMoments
from ..registry import register
from ..validation import warn_degenerate
from ._moment import MomentMeasure
from .base import Prepared

__all__ = ["canonical_correlations", "MeanCCA"]

AFFINE = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
        Invariance.INVERTIBLE_LINEAR,
        Invariance.AFFINE,
    }
)


def _whitener(s: Array) -> Array:
    """``V Λ^{-1/2}`` on the numerical range of PSD ``s`` (d × r)."""
    xp = namespace(s)
    v, w = range_basis(s)
    return v / xp.sqrt(w)


def canonical_correlations(mom: SecondMoments) -> Array:
    """Canonical correlations from second moments, sorted descending, clipped to [0, 1]."""
    xp = namespace(mom.sxy)
    wx, wy = _whitener(mom.sxx), _whitener(mom.syy)
    rho = xp.linalg.svdvals(wx.T @ mom.sxy @ wy)
    return xp.clip(rho, 0.0, 1.0)


def canonical_correlations_gram(kx: Array, ky: Array) -> Array:
    """Canonical correlations from centred Gram matrices (cosines of principal angles)."""
    xp = namespace(kx)
    ux, _ = range_basis(kx)
    uy, _ = range_basis(ky)
    return xp.clip(xp.linalg.svdvals(ux.T @ uy), 0.0, 1.0)


class CCAMeasure(MomentMeasure):
    """Shared machinery: canonical correlations by the cheaper path + d >= n warning."""

    has_gram_path = True

    def _check_regime(self, n: int, dx: int, dy: int) -> None:
        if max(dx, dy) >= n - 1:
            warn_degenerate(
                f"{self.info.name}: a representation has d={max(dx, dy)} >= n-1={n - 1} "
                "features; CCA-type measures are then trivially (close to) 1. Reduce "
                "dimension first (e.g. svcca) or use more samples."
            )

    def _correlations(self, mom: SecondMoments | None = None,
                      grams: tuple[Array, Array] | None = None) -> Array:
        if grams is not None:
            return canonical_correlations_gram(*grams)
        assert mom is not None
        return canonical_correlations(mom)

    def _from_moments(self, mom: SecondMoments) -> Any:
        self._check_regime(mom.n, *mom.dims)
        return self._reduce(self._correlations(mom=mom))

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        n, dx, dy = px.n, int(px.data.shape[1]), int(py.data.shape[1])
        self._check_regime(n, dx, dy)
        if self.use_gram(n, dx, dy):
            return self._reduce(self._correlations(grams=(self._gram(px), self._gram(py))))
        return self._reduce(self._correlations(mom=self._moments(px, py)))

    def _reduce(self, rho: Array) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@register
class MeanCCA(CCAMeasure):
    r"""Mean canonical correlation ``ρ̄ = (1/m) Σᵢ ρᵢ`` over the ``m`` canonical pairs.

    Also the m_CCA baseline of Nielsen et al. (2025).  Invariant to any affine
    map of either representation.  Degenerate (= 1) when d >= n − 1.

    References
    ----------
    Hotelling, "Relations between two sets of variates", Biometrika 1936;
    Raghu et al., "SVCCA", NeurIPS 2017.
    """

    info = MeasureInfo(
        name="mean_cca",
        family="cca",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=AFFINE,
        assumptions="Needs n well above d; trivially 1 when d >= n-1 (warned).",
        reference="Hotelling 1936; Raghu et al., SVCCA, NeurIPS 2017",
        differentiable=True,
        min_samples=3,
    )

    def _reduce(self, rho: Array) -> Any:
        xp = namespace(rho)
        return xp.mean(rho)
