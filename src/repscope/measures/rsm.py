"""Measures built on representational similarity (Gram / distance) matrices.

* :class:`EigenspaceOverlap` – overlap of the column spaces (May et al. 2019).
* :class:`GULP` – distance between ridge-regression predictors (Boix-Adserà et al. 2022).
* :class:`RSMNormDifference` – Frobenius norm of the difference of linear RSMs.
* :class:`RiemannianDistance` – affine-invariant distance between SPD Gram matrices.

Several of these reduce to ``‖Bx Bxᵀ − By Byᵀ‖_F`` for per-representation
factors B (n × k).  :func:`gram_difference_norm` evaluates it without forming
n × n matrices when n > kx + ky, and without the cancellation of the expanded
form ``‖BxᵀBx‖² + ‖ByᵀBy‖² − 2‖BxᵀBy‖²`` (which loses all digits when the two
matrices nearly agree).
"""

from __future__ import annotations

import math

import numpy as np

from repscope.core.arrays import Array, namespace
from repscope.core.errors import DegenerateInputError
from repscope.core.linalg import center, psd_eigh, rank_tol
from repscope.core.validation import warn_degenerate
from repscope.measures._kernels import _dev
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import GEOMETRY, Invariance, MeasureInfo
from repscope.measures.registry import register

__all__ = [
    "gram_difference_norm",
    "EigenspaceOverlap",
    "GULP",
    "RSMNormDifference",
    "RiemannianDistance",
]

_P, _O, _S, _T, _L, _A = (
    Invariance.PERMUTATION,
    Invariance.ORTHOGONAL,
    Invariance.ISOTROPIC_SCALING,
    Invariance.TRANSLATION,
    Invariance.INVERTIBLE_LINEAR,
    Invariance.AFFINE,
)
_ORTHO_SCALE_SHIFT = frozenset({_P, _O, _S, _T})
_ALL = frozenset({_P, _O, _S, _T, _L, _A})


def gram_difference_norm(bx: Array, by: Array) -> Array:
    """``‖Bx Bxᵀ − By Byᵀ‖_F`` for factors Bx (n × kx), By (n × ky).

    For n <= kx + ky the n × n difference is formed directly.  Otherwise, with
    the thin QR factorisation ``[Bx, By] = Q [Rx, Ry]``,
    ``Bx Bxᵀ − By Byᵀ = Q (Rx Rxᵀ − Ry Ryᵀ) Qᵀ`` and Q has orthonormal columns,
    so the norm is that of the small (kx + ky)² matrix: O(n (kx + ky)²) time,
    O(n (kx + ky)) memory, and exact to rounding even when the value is ~0.
    """
    xp = namespace(bx)
    n, kx, ky = int(bx.shape[0]), int(bx.shape[1]), int(by.shape[1])
    if n <= kx + ky:
        diff = bx @ bx.T - by @ by.T
    else:
        r = xp.linalg.qr(xp.concat([bx, by], axis=1)).R
        rx, ry = r[:, :kx], r[:, kx:]
        diff = rx @ rx.T - ry @ ry.T
    return xp.sqrt(xp.sum(diff * diff))


# --------------------------------------------------------------------------
@register
class EigenspaceOverlap(Measure):
    r"""Eigenspace overlap score (May et al. 2019).

    ``EOS(X, Y) = ‖Uxᵀ Uy‖²_F / max(rx, ry)`` where Ux (n × rx), Uy (n × ry)
    are orthonormal bases of the column spaces of X and Y (left singular
    vectors of a thin SVD, truncated at the numerical rank: singular values
    above ``s_max · max(n, d) · eps``).  ``‖UxᵀUy‖²_F = Σᵢ cos² θᵢ`` sums the
    squared cosines of the principal angles between the two spans, so the
    score is 1 iff the spans coincide and 0 iff they are orthogonal.

    Parameters
    ----------
    center : bool, default False
        ``False`` follows May et al.: the raw column spans (the all-ones
        direction of a mean offset counts).  ``True`` centres the columns first;
        the overlap is then ``Σρᵢ²/max(rx, ry)`` with ρᵢ the canonical
        correlations (a max-normalised R²_CCA), invariant to translation.

    Normalisation uses the numerical *ranks*, not the widths, so EOS(X, X) = 1
    even for rank-deficient X (d > n or collinear units).  When a span fills
    the whole space (rank n, or n − 1 centred) the score only counts ranks and
    repscope warns (:class:`~repscope.DegeneracyWarning`).

    Invariances
    -----------
    Any invertible linear map of the columns leaves the span unchanged, hence
    also orthogonal maps, permutations and isotropic scaling.  Translation
    only with ``center=True`` (then: affine invariance).

    Assumptions
    -----------
    Rows are paired samples; informative only when both ranks are well below
    n.  Uses a thin SVD (n × min(n, d) factors, never a full n × n U).

    References
    ----------
    May, Zhang, Dao & Ré, "On the Downstream Performance of Compressed Word
    Embeddings", NeurIPS 2019.  Klabunde et al., "Similarity of Neural Network
    Models: A Survey of Functional and Representational Measures", 2023.
    """

    info = MeasureInfo(
        name="eigenspace_overlap",
        family="rsm",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=frozenset({_P, _O, _S, _L}),
        assumptions="Rows are paired samples; compares column spans only (ignores variance "
        "along them); trivial when a rank reaches n (warned).",
        reference="May et al., On the Downstream Performance of Compressed Word Embeddings, "
        "NeurIPS 2019",
        differentiable=True,
        **GEOMETRY.fields(),
        params={"center": False},
        variants=({}, {"center": True}),
    )

    def _check_params(self) -> None:
        self._param_in("center", (True, False))

    @property
    def invariances(self) -> frozenset[Invariance]:
        return _ALL if self.params["center"] else self.info.invariances

    def _prepare(self, p: Prepared) -> None:
        xp = namespace(p.data)
        x = center(p.data) if self.params["center"] else p.data
        u, s, _ = xp.linalg.svd(x, full_matrices=False)
        tol = s[0] * max(x.shape) * np.finfo(np.float64).eps
        r = int(xp.sum(xp.astype(s > tol, xp.int64)))
        p.cache["span_basis"] = u[:, :r]

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        xp = namespace(px.data)
        ux, uy = px.cache["span_basis"], py.cache["span_basis"]
        rx, ry = int(ux.shape[1]), int(uy.shape[1])
        full = px.n - 1 if self.params["center"] else px.n
        if max(rx, ry) >= full:
            warn_degenerate(
                f"eigenspace_overlap: a representation has rank {max(rx, ry)} >= {full}, so "
                "its span is the whole sample space and the score only compares ranks"
            )
        m = ux.T @ uy
        return xp.clip(xp.sum(m * m) / max(rx, ry), 0.0, 1.0)


# --------------------------------------------------------------------------
@register
class GULP(Measure):
    r"""GULP distance between ridge-regression predictors (Boix-Adserà et al. 2022).

    Normalisation (as in the authors' code): centre each representation and
    scale it so that its covariance ``Σx = X̃ᵀX̃/n`` has trace 1.  For a target
    η the λ-ridge predictor on X is ``x ↦ xᵀ(Σx + λI)⁻¹E[xη]``; as a linear
    operator on the samples it is the ridge hat matrix
    ``Hx = X̃(Σx + λI)⁻¹X̃ᵀ/n`` (likewise Hy).  The GULP distance is the
    Hilbert–Schmidt distance between the two predictor maps::

        d_λ(X, Y)² = ‖Hx − Hy‖²_F
                   = tr(Σx(Σx+λ)⁻¹Σx(Σx+λ)⁻¹) + tr(Σy(Σy+λ)⁻¹Σy(Σy+λ)⁻¹)
                     − 2 tr((Σx+λ)⁻¹Σxy(Σy+λ)⁻¹Σyx)

    i.e. the expected squared difference ``E‖(Hx − Hy)η‖²`` of the two
    predictions for a white-noise target η on the samples (E ηηᵀ = I).
    repscope returns d_λ (the square root, a metric); the authors'
    ``predictor_dist`` and ReSi return d_λ².

    Parameters
    ----------
    lam : float, default 0.01
        Ridge penalty λ >= 0, in units of the total variance (tr Σ = 1).
        λ = 0 gives ``d₀² = rx + ry − 2Σρᵢ²`` (canonical correlations ρ: CCA-like,
        affine invariant, trivial when d >= n − 1, warned); λ → ∞ gives
        ``λ·d_λ → ‖X̃X̃ᵀ − ỸỸᵀ‖_F / n`` (a linear-kernel RSM distance, CKA-like).

    Invariances
    -----------
    Permutation, orthogonal maps, isotropic scaling and translation for λ > 0;
    every affine map for λ = 0 (Hx is then the projection onto the centred span).

    Assumptions
    -----------
    Rows are paired samples.  A pseudo-metric (0 for representations related by
    an orthogonal map and scaling).  Uses the d × d covariance when d <= n and
    the n × n Gram matrix otherwise; comparisons cost O(n (dx + dy)²).

    References
    ----------
    Boix-Adserà, Lawrence, Stepaniants & Rigollet, "GULP: a prediction-based
    metric between representations", NeurIPS 2022.
    """

    info = MeasureInfo(
        name="gulp",
        family="rsm",
        kind="distance",
        value_range=(0.0, math.inf),
        symmetric=True,
        metric=True,
        invariances=_ORTHO_SCALE_SHIFT,
        assumptions="Rows are paired samples; each representation is centred and scaled to "
        "unit total variance; lam in units of total variance; lam=0 is CCA-like and trivial "
        "when d >= n-1.",
        reference="Boix-Adserà et al., GULP: a prediction-based metric between "
        "representations, NeurIPS 2022",
        differentiable=True,
        **GEOMETRY.fields(),
        params={"lam": 0.01},
        variants=({}, {"lam": 0.0}, {"lam": 10.0}),
    )

    def _check_params(self) -> None:
        self._param_range("lam", 0.0)

    @property
    def invariances(self) -> frozenset[Invariance]:
        return _ALL if self.params["lam"] == 0 else self.info.invariances

    def _prepare(self, p: Prepared) -> None:
        xp = namespace(p.data)
        lam = float(self.params["lam"])
        n, d = p.n, int(p.data.shape[1])
        xc = center(p.data)
        xc = xc / xp.sqrt(xp.sum(xc * xc) / n)  # tr(Σx) = 1
        if d <= n:  # feature space: B = X̃ V (W + λ)^(-1/2) / sqrt(n)
            w, v = psd_eigh(xc.T @ xc / n)
            keep = w > rank_tol(w, d)
            b = (xc @ v[:, keep]) / xp.sqrt(w[keep] + lam) / math.sqrt(n)
        else:  # Gram space: Hx = U W (W + λ)^(-1) Uᵀ with X̃X̃ᵀ/n = U W Uᵀ
            w, u = psd_eigh(xc @ xc.T / n)
            keep = w > rank_tol(w, n)
            b = u[:, keep] * xp.sqrt(w[keep] / (w[keep] + lam))
        p.cache["gulp_factor"] = b

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        bx, by = px.cache["gulp_factor"], py.cache["gulp_factor"]
        if self.params["lam"] == 0:
            r = max(int(bx.shape[1]), int(by.shape[1]))
            if r >= px.n - 1:
                warn_degenerate(
                    f"gulp: with lam=0 a representation of rank {r} >= n-1={px.n - 1} spans "
                    "all centred sample vectors, so the distance is trivially about 0; use lam > 0"
                )
        return gram_difference_norm(bx, by)


# --------------------------------------------------------------------------
@register
class RSMNormDifference(Measure):
    r"""Frobenius norm of the difference of linear RSMs of centred data.

    ``d(X, Y) = ‖X̃X̃ᵀ − ỸỸᵀ‖_F`` with X̃, Ỹ column-centred: the representational
    similarity matrices are the linear kernels (inner products) of the centred
    representations, as in Klabunde et al.'s survey; there is no normalisation
    by n or d.  (ReSi compares Euclidean *distance* matrices instead.)

    Computed without n × n matrices when n > dx + dy (see
    :func:`gram_difference_norm`), exactly also near 0.

    Invariances
    -----------
    Orthogonal maps (hence permutations) and translation.  *Not* isotropic
    scaling: the value is in the units of the data squared, so compare only
    representations of comparable scale (or use ``cka``).

    Assumptions
    -----------
    Rows are paired samples; scale dependent; a pseudo-metric (0 iff the centred
    RSMs agree, i.e. X̃ = ỸQ for an orthogonal Q when widths allow).

    References
    ----------
    Klabunde, Schumacher, Strohmaier & Lemmerich, "Similarity of Neural Network
    Models: A Survey of Functional and Representational Measures", 2023.
    """

    info = MeasureInfo(
        name="rsm_norm_difference",
        family="rsm",
        kind="distance",
        value_range=(0.0, math.inf),
        symmetric=True,
        metric=True,
        invariances=frozenset({_P, _O, _T}),
        assumptions="Rows are paired samples; scale dependent (no normalisation); linear "
        "kernel of column-centred data.",
        reference="Klabunde et al., Similarity of Neural Network Models: A Survey of "
        "Functional and Representational Measures, 2023",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    def _prepare(self, p: Prepared) -> None:
        p.cache["centered"] = center(p.data)

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        return gram_difference_norm(px.cache["centered"], py.cache["centered"])


# --------------------------------------------------------------------------
@register
class RiemannianDistance(Measure):
    r"""Affine-invariant Riemannian distance between SPD Gram matrices (Shahbazi et al. 2021).

    ``d(X, Y) = sqrt(Σᵢ log² λᵢ(Kx⁻¹ Ky))`` with Kx = XXᵀ/dx and Ky = YYᵀ/dy (n × n,
    uncentred, as in Shahbazi et al.), i.e. the geodesic distance on the
    manifold of symmetric positive-definite matrices.  Computed as the
    eigenvalues of ``Lx⁻¹ Ky Lx⁻ᵀ`` with the Cholesky factor Kx = LxLxᵀ.

    Positive definiteness
    ---------------------
    XXᵀ/d is SPD only when X has n linearly independent rows (needs d >= n).
    ``ridge`` > 0 (default 1e-3) uses ``K + ridge · (tr K / n) · I`` — a ridge
    relative to the mean eigenvalue — so any representation works; directions
    outside the span of X then count as eigenvalue ≈ ridge · mean eigenvalue.
    ``ridge=0`` gives the unregularised distance and raises
    :class:`~repscope.DegenerateInputError` when a Gram matrix is not
    numerically SPD (smallest eigenvalue below ``n · 1e-13`` × the largest).

    Invariances
    -----------
    Orthogonal maps of the features (hence permutations) leave XXᵀ unchanged.
    Not isotropic scaling (Kx⁻¹Ky scales, shifting every log-eigenvalue), nor
    translation (K is uncentred).

    Assumptions
    -----------
    Rows are paired samples.  O(n²) memory and O(n³) time.  A metric on SPD
    matrices, hence a pseudo-metric on representations.

    References
    ----------
    Shahbazi, Shirali, Aghajan & Nili, "Using distance on the Riemannian
    manifold to compare representations in brain and in models", NeuroImage
    2021.  Pennec, Fillard & Ayache, "A Riemannian framework for tensor
    computing", IJCV 2006.
    """

    info = MeasureInfo(
        name="riemannian_distance",
        family="rsm",
        kind="distance",
        value_range=(0.0, math.inf),
        symmetric=True,
        metric=True,
        invariances=frozenset({_P, _O}),
        assumptions="Rows are paired samples; Gram matrices XX^T/d must be SPD (d >= n) unless "
        "ridge > 0 (default 1e-3, relative to the mean eigenvalue); scale dependent; O(n^3).",
        reference="Shahbazi et al., Using distance on the Riemannian manifold to compare "
        "representations in brain and in models, NeuroImage 2021",
        differentiable=True,
        **GEOMETRY.fields(),
        params={"ridge": 1e-3},
        variants=({}, {"ridge": 0.1}),
    )

    def _check_params(self) -> None:
        self._param_range("ridge", 0.0)

    def _prepare(self, p: Prepared) -> None:
        xp = namespace(p.data)
        n, d = p.n, int(p.data.shape[1])
        k = p.data @ p.data.T / d
        ridge = float(self.params["ridge"])
        if ridge > 0:
            k = k + (ridge * xp.linalg.trace(k) / n) * xp.eye(n, dtype=k.dtype, **_dev(k))
        else:
            w = xp.linalg.eigvalsh(k)
            if not bool(w[0] > w[-1] * n * 1e-13):
                raise DegenerateInputError(
                    f"riemannian_distance with ridge=0 needs a symmetric positive-definite "
                    f"Gram matrix XX^T/d, but it is singular for this {n} x {d} input (needs "
                    "n linearly independent rows, so d >= n); pass ridge > 0 to regularise"
                )
        try:
            chol = xp.linalg.cholesky(k)
        except (np.linalg.LinAlgError, RuntimeError) as exc:  # torch raises a RuntimeError
            raise DegenerateInputError(
                f"riemannian_distance: the Gram matrix is not positive definite ({exc})"
            ) from exc
        p.cache["spd_gram"] = k
        p.cache["spd_chol"] = chol

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        xp = namespace(px.data)
        lx, ky = px.cache["spd_chol"], py.cache["spd_gram"]
        m = xp.linalg.solve(lx, xp.linalg.solve(lx, ky).T)  # Lx⁻¹ Ky Lx⁻ᵀ
        w = xp.linalg.eigvalsh((m + m.T) / 2)
        w = xp.clip(w, np.finfo(np.float64).tiny, None)
        logs = xp.log(w)
        return xp.sqrt(xp.sum(logs * logs))
