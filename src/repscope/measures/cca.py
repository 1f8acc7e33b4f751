"""Canonical correlation analysis (CCA) family.

Canonical correlations ρ₁ ≥ ρ₂ ≥ … are the singular values of the whitened
cross-covariance ``Σxx^{-1/2} Σxy Σyy^{-1/2}``, equivalently the cosines of the
principal angles between the column spaces of the centred X̃ and Ỹ.  They are
computed on the numerical range of each covariance (rank-deficient directions
are dropped), so there are ``min(rank X̃, rank Ỹ)`` of them.

When ``d >= n`` a centred representation spans the whole (n − 1)-dimensional
space of centred sample vectors, so every canonical correlation is 1: CCA
measures are then trivially 1 and repscope warns (:class:`DegeneracyWarning`).

Every measure here is computed from a :class:`CrossSpectra` object: both
representations expressed in the eigenbases of their own covariances,

    Sxx = Vx diag(wx) Vxᵀ,   Syy = Vy diag(wy) Vyᵀ,   C = Vxᵀ Sxy Vy,

which can be built from :class:`~repscope.SecondMoments` (feature path,
streamable) or from the centred Gram matrices (``Kx = Ux diag(wx) Uxᵀ``, and
then ``C = diag(√wx) UxᵀUy diag(√wy)``; Gram path, cheaper when n < d).  PCA
truncation (SVCCA), partial whitening (ridge CCA, shape metrics) and the
canonical directions (PWCCA) are all simple operations on ``(wx, wy, C)``.

Measures that need only the correlations (``mean_cca``, ``mean_sq_cca``) take
a cheaper exact route when both covariances are comfortably positive definite:
with Cholesky factors ``Sxx = LxLxᵀ``, ``Syy = LyLyᵀ`` the ρᵢ are the singular
values of ``Lx⁻¹ Sxy Ly⁻ᵀ`` (two Cholesky factorisations and triangular
inverses instead of two full eigen-decompositions, ~10× faster at d = 1024).
It is used only when ``1/‖L⁻¹‖²_F`` — a lower bound of the smallest eigenvalue —
exceeds the rank tolerance of the eigen route (computed with ``tr S >= λ_max``),
so no direction the eigen route would drop is kept and both routes agree.
The inverse factors (and, for the other measures, the eigenbases, shared with
regression R²) are cached per prepared representation, so a grid computes them
once per representation;
``mean_sq_cca`` needs no decomposition of the pair at all (``Σρᵢ² = ‖W‖²_F``),
and the ρᵢ of ``mean_cca`` come from :func:`repscope.core.linalg.singular_values`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.arrays import Array, is_torch, namespace, to_numpy
from repscope.core.linalg import cholesky_pd, range_basis, singular_values
from repscope.core.validation import warn_degenerate
from repscope.measures.metadata import GEOMETRY, Invariance, MeasureInfo
from repscope.measures.moment_measure import MomentMeasure
from repscope.measures.moments import SecondMoments
from repscope.measures.registry import register

__all__ = [
    "CrossSpectra",
    "cross_spectra",
    "eigenbasis",
    "cross_spectra_gram",
    "canonical_correlations",
    "canonical_correlations_gram",
    "pca_components_for_variance",
    "CCAMeasure",
    "MeanCCA",
    "MeanSqCCA",
    "shrunk_spectrum",
]

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
ORTHO_SCALE_SHIFT = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
    }
)


# ----------------------------------------------------------------- spectra
@dataclass(frozen=True)
class CrossSpectra:
    """A pair of representations in the eigenbases of their own covariances.

    Attributes
    ----------
    wx, wy : arrays (rx,), (ry,)
        Eigenvalues of ``Sxx = X̃ᵀX̃`` and ``Syy`` on their numerical ranges,
        in descending order (the PCA variances times n).
    cxy : array (rx, ry)
        Cross moment in those bases, ``Vxᵀ Sxy Vy``.
    n : int
        Number of samples.
    dx, dy : int
        Feature widths (``rx <= dx``; the widths set the scale reference of
        partial whitening, ``tr Sxx / dx``).
    lx : array (dx, rx) or None
        Loadings ``Vx diag(√wx) = X̃ᵀ Ux``: column k holds the inner products of
        X's neurons with the k-th unit-norm principal-component score vector.
    """

    wx: Array
    wy: Array
    cxy: Array
    n: int
    dx: int
    dy: int
    lx: Array | None = None

    def whitened(self) -> Array:
        """``diag(wx^{-1/2}) C diag(wy^{-1/2})`` whose singular values are the ρᵢ."""
        xp = namespace(self.cxy)
        return self.cxy / xp.sqrt(self.wx)[:, None] / xp.sqrt(self.wy)[None, :]

    def correlations(self) -> Array:
        """Canonical correlations (descending, clipped to [0, 1])."""
        xp = namespace(self.cxy)
        return xp.clip(singular_values(self.whitened()), 0.0, 1.0)

    def truncate(self, kx: int, ky: int) -> CrossSpectra:
        """Keep the ``kx`` (``ky``) leading principal components of X (Y)."""
        lx = None if self.lx is None else self.lx[:, :kx]
        return CrossSpectra(
            self.wx[:kx], self.wy[:ky], self.cxy[:kx, :ky], self.n, self.dx, self.dy, lx
        )


def _descending(v: Array, w: Array) -> tuple[Array, Array]:
    xp = namespace(w)
    return xp.flip(v, axis=1), xp.flip(w, axis=0)


def eigenbasis(s: Array) -> tuple[Array, Array]:
    """``(V, w)``: eigenvectors and eigenvalues of a covariance on its numerical range,
    eigenvalues descending."""
    return _descending(*range_basis(s))


def cross_spectra(
    mom: SecondMoments,
    *,
    loadings: bool = False,
    bases: tuple[tuple[Array, Array], tuple[Array, Array]] | None = None,
) -> CrossSpectra:
    """:class:`CrossSpectra` from second moments (feature path, d × d eigenproblems).

    ``bases`` — the :func:`eigenbasis` of ``mom.sxx`` and of ``mom.syy`` when
    already known (e.g. cached per representation in a grid).
    """
    xp = namespace(mom.sxy)
    (vx, wx), (vy, wy) = bases or (eigenbasis(mom.sxx), eigenbasis(mom.syy))
    lx = vx * xp.sqrt(wx)[None, :] if loadings else None
    dx, dy = mom.dims
    return CrossSpectra(wx, wy, vx.T @ mom.sxy @ vy, mom.n, dx, dy, lx)


def cross_spectra_gram(
    kx: Array, ky: Array, dx: int, dy: int, xc: Array | None = None
) -> CrossSpectra:
    """:class:`CrossSpectra` from centred Gram matrices (n × n eigenproblems).

    ``xc`` (the centred X) is needed only for the loadings ``X̃ᵀUx``.
    """
    xp = namespace(kx)
    ux, wx = _descending(*range_basis(kx))
    uy, wy = _descending(*range_basis(ky))
    cxy = xp.sqrt(wx)[:, None] * (ux.T @ uy) * xp.sqrt(wy)[None, :]
    lx = None if xc is None else xc.T @ ux
    return CrossSpectra(wx, wy, cxy, int(kx.shape[0]), dx, dy, lx)


def _inverse_cholesky(s: Array) -> Array | None:
    """``L⁻¹`` for ``s = LLᵀ`` when s is safely full rank (see the module docstring), else None."""
    xp = namespace(s)
    chol = cholesky_pd(s)
    if chol is None:
        return None
    d = int(s.shape[0])
    if is_torch(s):
        import torch

        eye = torch.eye(d, dtype=s.dtype, device=s.device)
        inv = torch.linalg.solve_triangular(chol, eye, upper=False)
    else:
        from scipy.linalg import lapack

        # triangular inverse (LAPACK trtri: d³/3 flops, a third of a solve against I),
        # on the Fortran-ordered upper factor Lᵀ (a view): (Lᵀ)⁻¹ᵀ = L⁻¹, zeros above
        if not chol.flags.c_contiguous:
            chol = np.ascontiguousarray(chol)
        inv_t, info = lapack.dtrtri(chol.T, lower=0)
        if info != 0:
            return None
        inv = inv_t.T
    sq = xp.sum(inv * inv)
    if not bool(xp.isfinite(sq)) or not bool(1.0 / sq > xp.linalg.trace(s) * d * 1e-13):
        return None
    return inv


def whitened_cholesky(mom: SecondMoments) -> Array | None:
    """``Lx⁻¹ Sxy Ly⁻ᵀ`` (its singular values are the ρᵢ), or None when a covariance is
    near singular."""
    lx = _inverse_cholesky(mom.sxx)
    if lx is None:
        return None
    ly = _inverse_cholesky(mom.syy)
    if ly is None:
        return None
    return _whiten(lx, mom.sxy, ly)


def _whiten(lx: Array, sxy: Array, ly: Array) -> Array:
    """``Lx⁻¹ Sxy Ly⁻ᵀ`` from the lower-triangular inverse factors.

    NumPy float64 uses two triangular multiplies (BLAS TRMM: d³ flops each, half
    a dense GEMM); other backends use matmul.
    """
    f64 = np.dtype(np.float64)
    if isinstance(sxy, np.ndarray) and sxy.dtype == lx.dtype == ly.dtype == f64:
        from scipy.linalg import blas

        # the transposes of C-ordered lower factors are Fortran-ordered upper ones (views)
        lxt, lyt = lx.T, ly.T
        if not (lxt.flags.f_contiguous and lyt.flags.f_contiguous):
            lxt, lyt = np.asfortranarray(lxt), np.asfortranarray(lyt)
        left = blas.dtrmm(1.0, lxt, np.array(sxy, order="F"), side=0, lower=0, trans_a=1)
        return blas.dtrmm(1.0, lyt, left, side=1, lower=0, overwrite_b=1)
    return lx @ sxy @ ly.T


def correlations_from_whitened(w: Array) -> Array:
    """Canonical correlations: the singular values of ``W = Lx⁻¹ Sxy Ly⁻ᵀ``, clipped to [0, 1]."""
    xp = namespace(w)
    return xp.clip(singular_values(w), 0.0, 1.0)


def correlations_cholesky(mom: SecondMoments) -> Array | None:
    """Canonical correlations by the Cholesky route, or None when a covariance is near singular."""
    w = whitened_cholesky(mom)
    return None if w is None else correlations_from_whitened(w)


def canonical_correlations(mom: SecondMoments) -> Array:
    """Canonical correlations from second moments, sorted descending, clipped to [0, 1]."""
    return cross_spectra(mom).correlations()


def canonical_correlations_gram(kx: Array, ky: Array) -> Array:
    """Canonical correlations from centred Gram matrices (cosines of principal angles)."""
    xp = namespace(kx)
    ux, _ = range_basis(kx)
    uy, _ = range_basis(ky)
    return xp.clip(singular_values(ux.T @ uy), 0.0, 1.0)


def pca_components_for_variance(eigenvalues: Any, var_fraction: float) -> int:
    """Fewest leading principal components explaining ``var_fraction`` of the variance.

    ``k = min{k : (λ₁ + … + λ_k) / (λ₁ + … + λ_r) >= var_fraction}`` for
    eigenvalues sorted in descending order.  The comparison is between the
    cumulative *fraction* and the threshold (never the threshold times the
    total variance), so the answer does not depend on the scale of the data.
    A relative slack of 1e-12 absorbs rounding (``var_fraction=1`` keeps every
    component of the numerical range).
    """
    w = np.sort(np.asarray(to_numpy(eigenvalues), dtype=np.float64))[::-1]
    total = float(np.sum(w))
    if w.size == 0 or total <= 0.0:
        return 0
    frac = np.cumsum(w) / total
    k = int(np.count_nonzero(frac < var_fraction - 1e-12)) + 1
    return min(k, int(w.size))


# ------------------------------------------------------------- base class
class CCAMeasure(MomentMeasure):
    """Shared machinery: cross spectra by the cheaper path + the d >= n warning.

    Subclasses implement ``_from_spectra`` (or only ``_reduce`` of the
    canonical correlations).
    """

    has_gram_path = True
    #: whether ``_from_spectra`` needs :attr:`CrossSpectra.lx`
    needs_loadings = False
    #: whether the value depends on the canonical correlations only (Cholesky route)
    correlations_only = False

    def _from_moment_stats(self, mom: SecondMoments) -> Any:
        if self.correlations_only:
            w = whitened_cholesky(mom)
            if w is not None:
                return self._reduce_whitened(w)
        return self._from_spectra(cross_spectra(mom, loadings=self.needs_loadings))

    def _reduce_whitened(self, w: Array) -> Any:
        """The value from ``W = Lx⁻¹ Sxy Ly⁻ᵀ`` (full-rank covariances; ρᵢ = σᵢ(W))."""
        return self._reduce(correlations_from_whitened(w))

    def check_regime(self, n: int, dx: int, dy: int) -> None:
        if max(dx, dy) >= n - 1:
            warn_degenerate(
                f"{self.info.name}: a representation has d={max(dx, dy)} >= n-1={n - 1} "
                "features; CCA-type measures are then trivially (close to) 1. Reduce "
                "dimension first (e.g. svcca) or use more samples."
            )

    def _from_moments(self, mom: SecondMoments) -> Any:
        self.check_regime(mom.n, *mom.dims)
        return self._from_moment_stats(mom)

    def _from_grams(self, kx: Array, ky: Array, px: Any, py: Any) -> Any:
        xc = self._centered(px) if self.needs_loadings else None
        dx, dy = int(px.data.shape[1]), int(py.data.shape[1])
        return self._from_spectra(cross_spectra_gram(kx, ky, dx, dy, xc))

    def _compare(self, px: Any, py: Any) -> Array:
        n, dx, dy = px.n, int(px.data.shape[1]), int(py.data.shape[1])
        self.check_regime(n, dx, dy)
        if self.use_gram(n, dx, dy):
            return self._from_grams(self._gram(px), self._gram(py), px, py)
        if self.correlations_only:  # whitening factors cached per representation
            lx, ly = (self._covariance_factor(p, "inverse_cholesky", _inverse_cholesky)
                      for p in (px, py))
            if lx is not None and ly is not None:
                # W, or Wᵀ for the reversed pair: both reductions (its singular values,
                # ‖W‖_F) are the same for the transpose; a grid computes W once per pair
                w = self._pair_value(px, py, False, "whitened_cross",
                                     lambda: _whiten(lx, self._cross_moment(px, py), ly))
                return self._reduce_whitened(w)
        mom = self._moments(px, py)
        # the range basis is cached under the name regression R² uses, so a grid with
        # both decomposes each covariance once
        bases = (_descending(*self._covariance_factor(px, "range_basis", range_basis)),
                 _descending(*self._covariance_factor(py, "range_basis", range_basis)))
        return self._from_spectra(cross_spectra(mom, loadings=self.needs_loadings, bases=bases))

    def _from_spectra(self, s: CrossSpectra) -> Any:
        return self._reduce(s.correlations())

    def _reduce(self, rho: Array) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------- measures
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
        **GEOMETRY.fields(),
    )

    correlations_only = True

    def _reduce(self, rho: Array) -> Any:
        xp = namespace(rho)
        return xp.mean(rho)


@register
class MeanSqCCA(CCAMeasure):
    r"""Mean squared canonical correlation (Yanai's generalised R²).

    ``R²_CCA = (1/m) Σᵢ ρᵢ²`` over the ``m = min(rank X̃, rank Ỹ)`` canonical
    correlations; equivalently ``tr(Px Py) / m`` with ``Px``, ``Py`` the
    orthogonal projections onto the column spaces of X̃ and Ỹ.

    Invariances: every affine map of either side (it depends only on the
    column spaces of the centred data).  Symmetric, values in [0, 1].

    Assumptions: n well above d; trivially 1 when d >= n − 1 (warned).

    References
    ----------
    Yanai, "Unification of various techniques of multivariate analysis by
    means of generalized coefficient of determination", 1974; Klabunde et al.,
    "Similarity of Neural Network Models: A Survey of Functional and
    Representational Measures", 2023.
    """

    info = MeasureInfo(
        name="mean_sq_cca",
        family="cca",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=AFFINE,
        assumptions="Needs n well above d; trivially 1 when d >= n-1 (warned).",
        reference="Yanai 1974 (generalized coefficient of determination); "
        "Klabunde et al., survey 2023",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    correlations_only = True

    def _reduce(self, rho: Array) -> Any:
        xp = namespace(rho)
        return xp.mean(rho * rho)

    def _reduce_whitened(self, w: Array) -> Any:
        """``Σρᵢ² = ‖W‖²_F``: no decomposition needed (m = min(dx, dy) at full rank)."""
        xp = namespace(w)
        return xp.clip(xp.sum(w * w) / min(int(w.shape[0]), int(w.shape[1])), 0.0, 1.0)


def shrunk_spectrum(w: Array, d: int, reg: float) -> Array:
    """Eigenvalues ``(1 − reg) λ + reg · (Σλ / d)`` of the shrunk covariance (on its range)."""
    xp = namespace(w)
    return (1.0 - reg) * w + reg * (xp.sum(w) / d)
