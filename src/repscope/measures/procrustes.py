"""Orthogonal Procrustes distance, its angular form, and the Bures family.

With X̃, Ỹ column-centred and scaled to unit Frobenius norm (zero-padding the
narrower one, which does not change the value)::

    min_Q ‖X̃ − Ỹ Q‖_F = sqrt(2 − 2 ‖X̃ᵀỸ‖_*)        (Q orthogonal)
    angular distance   = arccos ‖X̃ᵀỸ‖_*

``‖X̃ᵀỸ‖_*`` is the nuclear norm; it equals the fidelity
``F(Kx, Ky) = tr((Kx^{1/2} Ky Kx^{1/2})^{1/2})`` of the centred Gram matrices
``Kx = X̃X̃ᵀ``, which is how the Gram-space path computes it when n < d.  The
normalised fidelity is the normalised Bures similarity (NBS) of Tang et al.
(2020), and the unnormalised one gives the Bures distance between the Gram
matrices ``Kx/n`` and ``Ky/n``.

Computation paths (chosen by :meth:`FidelityMeasure.path_costs`)
--------------------------------------------------------------
* feature space (n >= d): only ``Sxy = X̃ᵀỸ`` (one GEMM), the squared
  Frobenius norms ``tr Sxx = ‖X̃‖²_F`` (no Sxx/Syy products) and the singular
  values of the dx × dy matrix Sxy;
* Gram space (n < d): ``F = tr((K̂x^{1/2} K̂y K̂x^{1/2})^{1/2})`` with the
  all-ones direction deflated by a Householder reflection, one Cholesky factor
  ``K̂x = LLᵀ`` and the eigenvalues (no eigenvectors) of ``Lᵀ K̂y L``
  (:func:`repscope.core.linalg.gram_fidelity`); when neither Gram is positive
  definite on the centred space (rank < n − 1) both are eigen-decomposed
  instead (:func:`fidelity_parts_gram`).

NBS is computed with float32 GEMMs for float32 inputs (its value is a smooth
ratio; error ~1e-8).  The Procrustes distances behave like ``sqrt(1 − F)`` near
0, which would turn a 1e-8 error of F into 1e-4: they use the float32 GEMMs only
with a guard — the value is accepted when the distance is at least
:data:`MIXED_MIN_DISTANCE` (error amplification ``1/d <= 5``, so a fidelity
error below 2e-7, ~100× the observed one, stays under 1e-6), and recomputed in
float64 otherwise.  For the same reason none of the three distances accepts
mixed-precision *streamed* statistics, and the Bures distance (in the data's
units) always uses float64.  The nuclear norm of a float32-GEMM cross product
takes the eigenvalue route of :func:`repscope.core.linalg.singular_values` under the
bound :data:`repscope.core.linalg.MIXED_SVD_RTOL` (1e-8, a tenth of the rounding
its entries already carry) instead of 1e-10, so decaying cross spectra do not
fall back to the SVD.
"""

from __future__ import annotations

import math
from typing import Any

from repscope.core.arrays import Array, namespace
from repscope.core.linalg import (
    GRAM_SVD_RTOL,
    MIXED_SVD_RTOL,
    gram_fidelity,
    nuclear_norm,
    range_basis,
)
from repscope.measures.base import Prepared
from repscope.measures.metadata import GEOMETRY, Invariance, MeasureInfo
from repscope.measures.moment_measure import EIG_WEIGHT, MomentMeasure
from repscope.measures.moments import SecondMoments
from repscope.measures.registry import register

__all__ = [
    "procrustes_fidelity",
    "procrustes_fidelity_gram",
    "fidelity_parts",
    "fidelity_parts_gram",
    "FidelityMeasure",
    "Procrustes",
    "ProcrustesAngular",
    "NBS",
    "BuresDistance",
]

#: Procrustes distances at least this large accept the float32-GEMM value (see above)
MIXED_MIN_DISTANCE = 0.2

ORTHO_SCALE_SHIFT = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
    }
)


def fidelity_parts(mom: SecondMoments) -> tuple[Array, Array, Array]:
    """``(‖Sxy‖_*, tr Sxx, tr Syy)`` from second moments (unnormalised fidelity and traces)."""
    xp = namespace(mom.sxy)
    rtol = MIXED_SVD_RTOL if mom.precision == "mixed" else GRAM_SVD_RTOL
    return nuclear_norm(mom.sxy, rtol), xp.linalg.trace(mom.sxx), xp.linalg.trace(mom.syy)


def fidelity_parts_gram(kx: Array, ky: Array) -> tuple[Array, Array, Array]:
    """Same triple from centred Gram matrices: singular values of Lxᵀ Ly, K = L Lᵀ.

    ``L`` is built on the numerical range of K only: rounding-level eigenvalues
    would otherwise add O(sqrt(eps)) noise through their square roots.
    """
    xp = namespace(kx)
    vx, wx = range_basis(kx)
    vy, wy = range_basis(ky)
    lx = vx * xp.sqrt(wx)
    ly = vy * xp.sqrt(wy)
    return nuclear_norm(lx.T @ ly), xp.linalg.trace(kx), xp.linalg.trace(ky)


def _normalised(parts: tuple[Array, Array, Array]) -> Array:
    nuc, tx, ty = parts
    xp = namespace(nuc)
    return xp.clip(nuc / xp.sqrt(tx * ty), 0.0, 1.0)


def procrustes_fidelity(mom: SecondMoments) -> Array:
    """``‖X̃ᵀỸ‖_* / (‖X̃‖_F ‖Ỹ‖_F)`` from second moments, in [0, 1]."""
    return _normalised(fidelity_parts(mom))


def procrustes_fidelity_gram(kx: Array, ky: Array) -> Array:
    """Same quantity from centred Gram matrices."""
    return _normalised(fidelity_parts_gram(kx, ky))


class FidelityMeasure(MomentMeasure):
    """Measures that are a function of the (normalised) Procrustes fidelity.

    Subclasses implement ``_transform(fid)`` of the normalised fidelity, or
    override ``_from_parts(nuc, tx, ty, n)`` to use the unnormalised parts.
    """

    has_gram_path = True

    def path_costs(self, n: int, dx: int, dy: int) -> tuple[float, float]:
        """Feature: one GEMM + an SVD of dx × dy; Gram: two Grams + one n × n eigenproblem."""
        lo, hi = min(dx, dy), max(dx, dy)
        feature = 2.0 * n * dx * dy + EIG_WEIGHT * 2.0 * lo * lo * hi
        gram = float(n * n * (dx + dy)) + EIG_WEIGHT * n**3 + 2.0 * n**3
        return feature, gram

    def _mixed_ok(self, value: Any) -> bool:
        """Whether a value computed with float32 GEMMs is accurate to 1e-6 (see module doc)."""
        return True

    @property
    def tolerates_mixed(self) -> bool:
        return self.mixed_precision and type(self)._mixed_ok is FidelityMeasure._mixed_ok

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        mixed = self._mixed(px, py)
        value = self._compare_path(px, py, mixed)
        if mixed and not self._mixed_ok(value):
            value = self._compare_path(px, py, False)
        return value

    def _compare_path(self, px: Prepared, py: Prepared, mixed: bool) -> Array:
        n, dx, dy = px.n, int(px.data.shape[1]), int(py.data.shape[1])
        self.check_regime(n, dx, dy)
        xp = namespace(px.data)
        if self.use_gram(n, dx, dy):
            kx, ky = self._gram(px, mixed), self._gram(py, mixed)
            nuc = gram_fidelity(kx, ky)
            if nuc is None:
                return self._from_parts(*fidelity_parts_gram(kx, ky), n)
            return self._from_parts(nuc, xp.linalg.trace(kx), xp.linalg.trace(ky), n)
        nuc = self._pair_value(
            px, py, mixed, "nuclear_norm",
            lambda: nuclear_norm(self._cross_moment(px, py, mixed),
                                 MIXED_SVD_RTOL if mixed else GRAM_SVD_RTOL),
        )
        tx, ty = self._sq_frobenius(px, mixed), self._sq_frobenius(py, mixed)
        return self._from_parts(nuc, tx, ty, n)

    def _sq_frobenius(self, p: Prepared, mixed: bool) -> Array:
        """``‖X̃‖²_F = tr Sxx`` summed in float64 (cached)."""
        def compute() -> Array:
            xp = namespace(p.data)
            if mixed:  # Σ(z − e)² = Σz² − n‖e‖² since Σz = n e
                # float32 squares (each within 2⁻²⁴ relative, all positive, so the sum
                # is too) summed in float64
                z, e = self._centered32(p)
                step = 4096
                t = sum(
                    xp.sum(z[i : i + step] * z[i : i + step], dtype=xp.float64)
                    for i in range(0, p.n, step)
                )
                return t - p.n * xp.sum(e * e)
            xc = self._centered(p)
            return xp.sum(xc * xc)

        return p.cached("sq_frobenius_mixed" if mixed else "sq_frobenius", compute)

    def _from_moments(self, mom: SecondMoments) -> Any:
        return self._from_parts(*fidelity_parts(mom), mom.n)

    def _from_grams(self, kx: Array, ky: Array, px: Prepared, py: Prepared) -> Any:
        return self._from_parts(*fidelity_parts_gram(kx, ky), px.n)

    def _from_parts(self, nuc: Array, tx: Array, ty: Array, n: int) -> Any:
        return self._transform(_normalised((nuc, tx, ty)))

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
        **GEOMETRY.fields(),
    )

    mixed_precision = True

    def _mixed_ok(self, value: Any) -> bool:
        return float(value) >= MIXED_MIN_DISTANCE

    def _transform(self, fid: Array) -> Any:
        xp = namespace(fid)
        return xp.sqrt(xp.clip(2.0 - 2.0 * fid, 0.0, None))


@register
class ProcrustesAngular(FidelityMeasure):
    r"""Angular Procrustes distance ``arccos(‖X̃ᵀỸ‖_*)`` on centred, unit-norm data.

    ``d(X, Y) = arccos(‖X̃ᵀỸ‖_* / (‖X̃‖_F ‖Ỹ‖_F))`` with X̃, Ỹ column-centred:
    the angle between the two representations after the best orthogonal
    alignment.  A metric (Williams et al. 2021, shape metric with α = 1);
    unequal widths are allowed (implicit zero-padding).

    Invariances: orthogonal maps (hence permutations), isotropic scaling and
    translation of either side; not general invertible linear maps.

    Assumptions: rows are paired samples; only the shape (after centring and
    scaling) is compared.  Values in [0, π/2].

    References
    ----------
    Williams, Kunz, Kornblith & Linderman, "Generalized Shape Metrics on Neural
    Representations", NeurIPS 2021.
    """

    info = MeasureInfo(
        name="procrustes_angular",
        family="alignment",
        kind="distance",
        value_range=(0.0, math.pi / 2),
        symmetric=True,
        metric=True,
        invariances=ORTHO_SCALE_SHIFT,
        assumptions="Rows are paired samples; compares shapes after centring and scaling.",
        reference="Williams et al., Generalized Shape Metrics on Neural Representations, "
        "NeurIPS 2021",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    mixed_precision = True

    def _mixed_ok(self, value: Any) -> bool:  # d/dF arccos F = −1/sin θ
        return math.sin(float(value)) >= MIXED_MIN_DISTANCE

    def _transform(self, fid: Array) -> Any:
        xp = namespace(fid)
        return xp.acos(fid)


@register
class NBS(FidelityMeasure):
    r"""Normalized Bures similarity of the centred Gram matrices.

    ``NBS(X, Y) = F(Kx, Ky) / sqrt(tr Kx · tr Ky)`` with
    ``F(Kx, Ky) = tr((Kx^{1/2} Ky Kx^{1/2})^{1/2})`` the fidelity of the
    centred linear Gram matrices ``Kx = X̃X̃ᵀ``.  It equals the normalised
    nuclear norm ``‖X̃ᵀỸ‖_* / (‖X̃‖_F ‖Ỹ‖_F)``, i.e. the cosine of the angular
    Procrustes distance (Harvey et al. 2023), and is computed that way from
    moments when d < n.  Values in [0, 1], ``NBS(X, X) = 1``.

    Invariances: orthogonal maps (hence permutations), isotropic scaling and
    translation (the Gram matrices are centred).

    Assumptions: linear kernel; rows are paired samples.

    References
    ----------
    Tang, Maddox, Dickens, Diethe & Damianou, "Similarity of Neural Networks
    with Gradients", arXiv:2003.11498, 2020; Harvey, Lipshutz & Williams,
    "Duality of Bures and Shape Distances with Implications for Comparing
    Neural Representations", UniReps 2023.
    """

    info = MeasureInfo(
        name="nbs",
        family="rsm",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=ORTHO_SCALE_SHIFT,
        assumptions="Linear kernel on centred data; equals cos(procrustes_angular).",
        reference="Tang et al., arXiv:2003.11498, 2020; Harvey et al., UniReps 2023",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    mixed_precision = True

    def _transform(self, fid: Array) -> Any:
        return fid


@register
class BuresDistance(FidelityMeasure):
    r"""Bures distance between the centred covariance-scaled Gram matrices.

    With ``Kx = X̃X̃ᵀ/n`` and ``Ky = ỸỸᵀ/n`` (X̃, Ỹ column-centred)::

        d_B(X, Y) = sqrt(tr Kx + tr Ky − 2 F(Kx, Ky))
                  = min_Q ‖X̃ − ỸQ‖_F / sqrt(n)        (Q orthogonal, zero-padding)

    since ``F(Kx, Ky) = ‖X̃ᵀỸ‖_* / n``.  A metric; *not* scale invariant (it
    is measured in the units of the data).

    Invariances: orthogonal maps (hence permutations) and translation.

    Assumptions: rows are paired samples; the value is in the data's units
    (compare representations on a common scale).

    References
    ----------
    Bures 1969; Bhatia, Jain & Lim, "On the Bures–Wasserstein distance between
    positive definite matrices", Expo. Math. 2019; Harvey et al., UniReps 2023.
    """

    info = MeasureInfo(
        name="bures_distance",
        family="rsm",
        kind="distance",
        value_range=(0.0, math.inf),
        symmetric=True,
        metric=True,
        invariances=frozenset(
            {Invariance.PERMUTATION, Invariance.ORTHOGONAL, Invariance.TRANSLATION}
        ),
        assumptions="Scale dependent (units of the data); Gram matrices divided by n.",
        reference="Bures 1969; Bhatia, Jain & Lim 2019; Harvey et al., UniReps 2023",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    def _from_parts(self, nuc: Array, tx: Array, ty: Array, n: int) -> Any:
        xp = namespace(nuc)
        return xp.sqrt(xp.clip((tx + ty - 2.0 * nuc) / n, 0.0, None))
