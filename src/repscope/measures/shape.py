"""Generalized shape metrics with partial whitening (Williams et al. 2021).

Each representation is centred and partially whitened by a map that depends
only on itself, then the two are compared by the angle left after the best
orthogonal alignment::

    Φx = ((1 − α) Sxx + α · (tr Sxx / dx) · I)^{-1/2}          (Sxx = X̃ᵀX̃)
    φ(X) = X̃ Φx
    d_α(X, Y) = arccos( ‖φ(X)ᵀ φ(Y)‖_* / (‖φ(X)‖_F ‖φ(Y)‖_F) )

``α = 1`` is the angular Procrustes distance, ``α = 0`` whitens completely
(a CCA-type metric: ``arccos(Σᵢ ρᵢ / sqrt(rank X̃ · rank Ỹ))``).  Williams et
al. regularise with the identity, ``α I + (1 − α) Sxx/n``, which makes the
value depend on the data's scale for 0 < α < 1; repscope scales the identity by
the mean eigenvalue ``tr Sxx / dx``, so the metric is invariant to isotropic
scaling for every α (and ``α`` is the fraction of the average variance mixed
in).
"""

from __future__ import annotations

import math
from typing import Any

from repscope.core.arrays import namespace
from repscope.core.linalg import nuclear_norm
from repscope.core.validation import warn_degenerate
from repscope.measures.cca import (
    AFFINE,
    ORTHO_SCALE_SHIFT,
    CCAMeasure,
    CrossSpectra,
    shrunk_spectrum,
)
from repscope.measures.metadata import GEOMETRY, Invariance, MeasureInfo
from repscope.measures.registry import register

__all__ = ["ShapeMetric"]


@register
class ShapeMetric(CCAMeasure):
    r"""Angular generalized shape metric with partial whitening ``α``.

    ``d_α(X, Y) = arccos(‖φ(X)ᵀφ(Y)‖_* / (‖φ(X)‖_F ‖φ(Y)‖_F))`` with the
    scale-free partial whitening ``φ(X) = X̃((1 − α)Sxx + α(tr Sxx/dx)I)^{-1/2}``
    described in the module docstring.  Computed in the eigenbases of Sxx and
    Syy from second moments (streamable) or from Gram matrices when n < d::

        Dx = (1 − α) λx + α mean(λx),   M = Dx^{-1/2} (Vxᵀ Sxy Vy) Dy^{-1/2}
        d_α = arccos(‖M‖_* / sqrt(Σ λx/Dx · Σ λy/Dy))

    Unequal widths: each representation is whitened at its own width (its
    own ``tr Sxx / dx``) and the narrower one is then implicitly zero-padded,
    which changes neither norm.  Because ``φ`` is a fixed map of each
    representation, ``d_α`` is the quotient of the angle between points on
    the unit sphere by the orthogonal group, hence a metric (Williams et al.,
    Prop. 1), also across widths.

    Parameters
    ----------
    alpha : float in [0, 1], default 1.0
        1 = no whitening (Procrustes angular distance), 0 = full whitening
        (on the numerical range of Sxx).

    Invariances: orthogonal maps (hence permutations), isotropic scaling and
    translation for every α; for ``alpha = 0`` every invertible affine map.

    Assumptions: for small α the whitening amplifies low-variance directions;
    with α = 0 and d >= n − 1 the distance is trivially ~0 (warned).

    References
    ----------
    Williams, Kunz, Kornblith & Linderman, "Generalized Shape Metrics on Neural
    Representations", NeurIPS 2021.
    """

    info = MeasureInfo(
        name="shape_metric",
        family="alignment",
        kind="distance",
        value_range=(0.0, math.pi / 2),
        symmetric=True,
        metric=True,
        invariances=ORTHO_SCALE_SHIFT,
        assumptions="Scale-free partial whitening (identity scaled by the mean eigenvalue); "
        "unequal widths are whitened separately then zero-padded; alpha=0 is degenerate "
        "when d >= n-1 (warned).",
        reference="Williams et al., Generalized Shape Metrics on Neural Representations, "
        "NeurIPS 2021",
        differentiable=True,
        **GEOMETRY.fields(),
        params={"alpha": 1.0},
        variants=({}, {"alpha": 0.0}, {"alpha": 0.5}),
    )

    def _check_params(self) -> None:
        self._param_range("alpha", 0.0, 1.0)

    @property
    def invariances(self) -> frozenset[Invariance]:
        return AFFINE if self.params["alpha"] == 0 else ORTHO_SCALE_SHIFT

    def check_regime(self, n: int, dx: int, dy: int) -> None:
        if self.params["alpha"] == 0 and max(dx, dy) >= n - 1:
            warn_degenerate(
                f"shape_metric: alpha=0 with d={max(dx, dy)} >= n-1={n - 1} features whitens "
                "every direction of the centred data, so the distance is trivially ~0; use "
                "alpha > 0 or more samples"
            )

    def _from_spectra(self, s: CrossSpectra) -> Any:
        xp = namespace(s.cxy)
        alpha = float(self.params["alpha"])
        dx_ = shrunk_spectrum(s.wx, s.dx, alpha)
        dy_ = shrunk_spectrum(s.wy, s.dy, alpha)
        m = s.cxy / xp.sqrt(dx_)[:, None] / xp.sqrt(dy_)[None, :]
        norm = xp.sqrt(xp.sum(s.wx / dx_) * xp.sum(s.wy / dy_))
        cos = xp.clip(nuclear_norm(m) / norm, 0.0, 1.0)
        return xp.acos(cos)
