"""Orthogonal Procrustes distance and its angular form.

With X̃, Ỹ column-centred and scaled to unit Frobenius norm (zero-padding the
narrower one, which does not change the value)::

    min_Q ‖X̃ − Ỹ Q‖_F = sqrt(2 − 2 ‖X̃ᵀỸ‖_*)        (Q orthogonal)
    angular distance   = arccos ‖X̃ᵀỸ‖_*

``‖X̃ᵀỸ‖_*`` is the nuclear norm; it equals the fidelity
``tr((Kx^{1/2} Ky Kx^{1/2})^{1/2})`` of the normalised Gram matrices, which is
how the Gram-space path computes it when n < d.
"""

from __future__ import annotations

from typing import Any

from .._array import Array, namespace
from .._linalg import nuclear_norm, psd_eigh
from ..metadata import Invariance, MeasureInfo
from ..moments import SecondMoments
from ..registry import register
from ._moment import MomentMeasure
from .base import Prepared

__all__ = ["procrustes_fidelity", "Procrustes"]

ORTHO_SCALE_SHIFT = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
    }
)


def procrustes_fidelity(mom: SecondMoments) -> Array:
    """``‖X̃ᵀỸ‖_* / (‖X̃‖_F ‖Ỹ‖_F)`` from second moments, in [0, 1]."""
    xp = namespace(mom.sxy)
    nrm = xp.sqrt(xp.linalg.trace(mom.sxx) * xp.linalg.trace(mom.syy))
    return xp.clip(nuclear_norm(mom.sxy) / nrm, 0.0, 1.0)


def procrustes_fidelity_gram(kx: Array, ky: Array) -> Array:
    """Same quantity from centred Gram matrices: singular values of Lxᵀ Ly, K = L Lᵀ."""
    xp = namespace(kx)
    wx, vx = psd_eigh(kx)
    wy, vy = psd_eigh(ky)
    lx = vx * xp.sqrt(wx)
    ly = vy * xp.sqrt(wy)
    nrm = xp.sqrt(xp.linalg.trace(kx) * xp.linalg.trace(ky))
    return xp.clip(nuclear_norm(lx.T @ ly) / nrm, 0.0, 1.0)


class FidelityMeasure(MomentMeasure):
    """Measures that are a function of the normalised Procrustes fidelity."""

    has_gram_path = True

    def _from_moments(self, mom: SecondMoments) -> Any:
        return self._transform(procrustes_fidelity(mom))

    def _from_grams(self, kx: Array, ky: Array, px: Prepared, py: Prepared) -> Any:
        return self._transform(procrustes_fidelity_gram(kx, ky))

    def _transform(self, fid: Array) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@register
class Procrustes(FidelityMeasure):
    r"""Orthogonal Procrustes distance on centred, unit-Frobenius-norm representations.

    ``d(X, Y) = min_Q ‖X̃ − ỸQ‖_F = sqrt(2 − 2‖X̃ᵀỸ‖_*)`` with Q orthogonal,
    X̃ = (X − 1μₓᵀ)/‖X − 1μₓᵀ‖_F (likewise Ỹ).  Unequal widths are allowed
    (the narrower one is implicitly zero-padded).  A metric on shapes.

    References
    ----------
    Schönemann 1966; Ding, Denain & Steinhardt, "Grounding representation
    similarity through statistical testing", NeurIPS 2021; Williams et al. 2021.
    """

    info = MeasureInfo(
        name="procrustes",
        family="alignment",
        kind="distance",
        value_range=(0.0, 2.0**0.5),
        symmetric=True,
        metric=True,
        invariances=ORTHO_SCALE_SHIFT,
        assumptions="Rows are paired samples; compares shapes after centring and scaling.",
        reference="Schönemann 1966; Ding et al., NeurIPS 2021; Williams et al., NeurIPS 2021",
        differentiable=True,
        min_samples=2,
    )

    def _transform(self, fid: Array) -> Any:
        xp = namespace(fid)
        return xp.sqrt(xp.clip(2.0 - 2.0 * fid, 0.0, None))
