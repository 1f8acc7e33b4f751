"""Centred kernel alignment (CKA) and HSIC.

Formulas
--------
With kernel matrices K (of X) and L (of Y) and centring H = I − 11ᵀ/n::

    HSIC(K, L) = tr(K H L H) / (n − 1)²                  (biased; Gretton et al. 2005)
    CKA(K, L)  = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

For the linear kernel K = XXᵀ this equals ‖X̃ᵀỸ‖²_F / (‖X̃ᵀX̃‖_F ‖ỸᵀỸ‖_F) on
column-centred X̃, Ỹ (Kornblith et al. 2019), the feature-space form used
when it is cheaper.  ``debiased=True`` replaces HSIC by the unbiased estimator
of Song et al. (2012) (via U-centring).
"""

from __future__ import annotations

from typing import Any

from .._array import Array, namespace
from ..metadata import Invariance, MeasureInfo
from ..moments import SecondMoments
from ..registry import register
from ..validation import warn_degenerate
from ._kernels import double_center, hsic_biased, hsic_unbiased, rbf_kernel, u_center
from ._moment import MomentMeasure
from .base import Prepared

_ORTHO_SCALE_SHIFT = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
    }
)

_HSIC_SMALL_N = 20


class _KernelMixin(MomentMeasure):
    """Shared kernel preparation for CKA and HSIC."""

    has_gram_path = True

    def _check_params(self) -> None:
        self._param_in("kernel", ("linear", "rbf"))
        self._param_range("sigma", 1e-6)
        self._param_in("debiased", (True, False))
        if self.params["debiased"] and self.info.min_samples < 4:  # pragma: no cover
            raise AssertionError("debiased HSIC needs n >= 4")

    @property
    def supports_moments(self) -> bool:
        return self.params["kernel"] == "linear" and not self.params["debiased"]

    def use_gram(self, n: int, dx: int, dy: int) -> bool:
        if not self.supports_moments:
            return True
        return super().use_gram(n, dx, dy)

    def _centered_kernel(self, p: Prepared) -> Array:
        key = ("ukernel" if self.params["debiased"] else "ckernel", self.params["kernel"],
               self.params["sigma"])
        k = p.cache.get(key)
        if k is None:
            if self.params["kernel"] == "linear":
                raw = self._gram(p)
            else:
                raw = rbf_kernel(p.data, self.params["sigma"])
            k = u_center(raw) if self.params["debiased"] else double_center(raw)
            p.cache[key] = k
        return k

    def _hsic(self, k: Array, l: Array) -> Array:
        return hsic_unbiased(k, l) if self.params["debiased"] else hsic_biased(k, l)

    def _check_regime(self, n: int, dx: int, dy: int) -> None:
        if n < _HSIC_SMALL_N:
            warn_degenerate(
                f"{self.info.name}: n={n} samples is small for an HSIC estimate "
                f"(< {_HSIC_SMALL_N}); the biased estimator is inflated and the debiased one "
                "has high variance"
            )


@register
class CKA(_KernelMixin):
    r"""Centred kernel alignment (Kornblith et al. 2019).

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))``; see the module
    docstring for the estimators.

    Parameters
    ----------
    kernel : {"linear", "rbf"}
        ``rbf`` uses ``exp(-‖xi − xj‖² / (2σ²))`` with σ = ``sigma`` × the median
        pairwise distance (so it stays invariant to isotropic scaling).
    sigma : float, default 0.8
        Bandwidth as a fraction of the median distance (rbf only).
    debiased : bool, default False
        Use the unbiased HSIC estimator (Song et al. 2012); values may be negative.

    Invariances
    -----------
    Orthogonal transforms (hence permutations), isotropic scaling and
    translation; *not* invertible linear maps.

    References
    ----------
    Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network
    Representations Revisited", ICML 2019.
    """

    info = MeasureInfo(
        name="cka",
        family="kernel",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_ORTHO_SCALE_SHIFT,
        assumptions="Rows are paired samples; biased estimator is inflated for small n "
        "(use debiased=True); 0 <= value <= 1 for the biased estimator.",
        reference="Kornblith et al., Similarity of Neural Network Representations Revisited, "
        "ICML 2019; Song et al., Feature Selection via Dependence Maximization, JMLR 2012",
        differentiable=True,
        min_samples=4,
        params={"kernel": "linear", "sigma": 0.8, "debiased": False},
        variants=({}, {"kernel": "rbf"}, {"debiased": True}),
    )

    def _from_moments(self, mom: SecondMoments) -> Any:
        xp = namespace(mom.sxy)
        num = xp.sum(mom.sxy * mom.sxy)
        den = xp.sqrt(xp.sum(mom.sxx * mom.sxx)) * xp.sqrt(xp.sum(mom.syy * mom.syy))
        return num / den

    def _from_grams(self, kx: Array, ky: Array, px: Prepared, py: Prepared) -> Any:
        xp = namespace(kx)
        k, l = self._centered_kernel(px), self._centered_kernel(py)
        hkl = self._hsic(k, l)
        hkk = self._hsic(k, k)
        hll = self._hsic(l, l)
        return hkl / xp.sqrt(hkk * hll)


@register
class HSIC(_KernelMixin):
    r"""Hilbert–Schmidt independence criterion ``HSIC(K, L)`` (Gretton et al. 2005).

    Unnormalised: the value scales with the data (``HSIC(aX, bY) = a²b² HSIC(X, Y)``
    for the linear kernel), so it is invariant only to orthogonal maps and
    translation.  Use :class:`CKA` for a normalised score.

    Parameters are those of :class:`CKA`.
    """

    info = MeasureInfo(
        name="hsic",
        family="kernel",
        kind="similarity",
        value_range=(-float("inf"), float("inf")),
        symmetric=True,
        metric=False,
        invariances=frozenset(
            {Invariance.PERMUTATION, Invariance.ORTHOGONAL, Invariance.TRANSLATION}
        ),
        assumptions="Scale-dependent; biased estimator >= 0, unbiased may be negative.",
        reference="Gretton et al., Measuring Statistical Dependence with Hilbert-Schmidt Norms, "
        "ALT 2005; Song et al., JMLR 2012",
        differentiable=True,
        min_samples=4,
        params={"kernel": "linear", "sigma": 0.8, "debiased": False},
        identity_value=float("nan"),
        variants=({}, {"debiased": True}),
    )

    def _from_moments(self, mom: SecondMoments) -> Any:
        xp = namespace(mom.sxy)
        return xp.sum(mom.sxy * mom.sxy) / ((mom.n - 1) ** 2)

    def _from_grams(self, kx: Array, ky: Array, px: Prepared, py: Prepared) -> Any:
        return self._hsic(self._centered_kernel(px), self._centered_kernel(py))

    @property
    def invariances(self) -> frozenset[Invariance]:
        if self.params["kernel"] == "rbf":  # bandwidth relative to the median distance
            return self.info.invariances | {Invariance.ISOTROPIC_SCALING}
        return self.info.invariances
