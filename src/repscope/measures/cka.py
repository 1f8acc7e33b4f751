"""Centred kernel alignment (CKA) and HSIC.

Formulas
--------
With kernel matrices K (of X) and L (of Y) and centring H = I − 11ᵀ/n::

    HSIC_b(K, L) = tr(K H L H) / (n − 1)²                 (biased; Gretton et al. 2005)
    HSIC_u(K, L) = [tr(K̊L̊) + 1ᵀK̊1·1ᵀL̊1/((n−1)(n−2)) − 2·1ᵀK̊L̊1/(n−2)] / (n(n−3))
                                                         (unbiased; Song et al. 2012)
    CKA(K, L)    = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))

where K̊ is K with its diagonal set to zero.  HSIC_u equals the U-centred inner
product ⟨Ũ(K), Ũ(L)⟩/(n(n−3)) (Székely & Rizzo 2014), which is how it is computed.

Two exact computation paths for the linear kernel K = XXᵀ
---------------------------------------------------------
* Gram space (n × n), cheaper when n < d.
* Feature space (d × d), with X̃, Ỹ column-centred, S = X̃ᵀỸ and the squared
  row norms aᵢ = ‖x̃ᵢ‖², bᵢ = ‖ỹᵢ‖² (Kornblith et al. 2019)::

      biased:    HSIC_b = ‖X̃ᵀỸ‖²_F / (n − 1)²
      unbiased:  HSIC_u = [‖X̃ᵀỸ‖²_F − Σᵢaᵢbᵢ + tr(X̃ᵀX̃) tr(ỸᵀỸ)/((n−1)(n−2))
                           − 2 Σᵢaᵢbᵢ/(n−2)] / (n(n−3))

  (the unbiased estimator is translation invariant, so centring first is
  allowed; then K̊1 = −a and 1ᵀK̊1 = −tr(X̃ᵀX̃)).  The biased form depends on
  the data only through second moments, so it also streams
  (:meth:`MomentMeasure.from_moments`); the unbiased one needs Σᵢaᵢbᵢ, a
  fourth-order statistic, and is computed from the data.

The path is chosen by cost (:meth:`_KernelMixin.path_costs`: neither path
needs an eigen-decomposition, so the feature path costs ≈ n(dx + dy)² flops
and the Gram path ≈ n²(dx + dy)); both give the same value up to rounding.

Float32 inputs of the linear biased estimator use float32 GEMMs with float64
accumulation (see :mod:`repscope.measures.moment_measure`): within ~1e-7 of the
float64 answer at about twice the speed.
"""

from __future__ import annotations

from typing import Any

from repscope.core.arrays import Array, namespace
from repscope.core.errors import DegenerateInputError
from repscope.core.linalg import FROBENIUS_MIXED_BLOCK
from repscope.core.validation import warn_degenerate
from repscope.measures._kernels import (
    double_center,
    hsic_biased,
    hsic_unbiased,
    rbf_kernel,
    u_center,
)
from repscope.measures.base import Prepared
from repscope.measures.kernel_estimate import BANDWIDTH_SAMPLE, kernel_subsets
from repscope.measures.metadata import GEOMETRY, UNBIASED, Invariance, MeasureInfo
from repscope.measures.moment_measure import MomentMeasure, feature_cost, gram_cost
from repscope.measures.moments import SecondMoments
from repscope.measures.planning import Estimate, Plan, largest_n, shape_of
from repscope.measures.registry import register

__all__ = ["CKA", "HSIC"]

_ORTHO_SCALE_SHIFT = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
    }
)

#: below this many samples HSIC estimates are flagged (DegeneracyWarning)
_HSIC_SMALL_N = 20


class _KernelMixin(MomentMeasure):
    """Shared kernel preparation and path selection for CKA and HSIC."""

    has_gram_path = True
    mixed_precision = True
    mixed_block = FROBENIUS_MIXED_BLOCK

    def _check_params(self) -> None:
        self._param_in("kernel", ("linear", "rbf"))
        self._param_range("sigma", 1e-6)
        self._param_in("debiased", (True, False))

    @property
    def supports_moments(self) -> bool:
        return self.params["kernel"] == "linear" and not self.params["debiased"]

    def prepare_key(self) -> tuple[Any, ...]:
        # Every cached entry is keyed by its kernel settings, so CKA and HSIC of
        # any configuration can share prepared representations if they agree on
        # bringing them to unit scale (linear HSIC is in the data's units); the
        # unbiased estimator's larger minimum n is checked when comparing.
        return ("kernel-measures", self.normalises)

    @property
    def min_samples(self) -> int:
        """4 for the unbiased estimator (it divides by n − 3), else ``info.min_samples``."""
        return UNBIASED.n if self.params["debiased"] else self.info.min_samples

    @property
    def min_samples_reason(self) -> str:
        return UNBIASED.reason if self.params["debiased"] else self.info.min_samples_reason

    # ------------------------------------------------------- beyond memory
    #: the estimated path: samples per subset (at most) and number of disjoint subsets
    subset_size: int = 4000
    subsets: int = 16

    @property
    def estimable(self) -> bool:  # type: ignore[override]
        """RBF kernels and the debiased estimator (no blocked path): subsets."""
        return not self.supports_moments

    def exact_bytes(self, n: int, dx: int, dy: int) -> float:
        if self.params["kernel"] == "rbf":  # distances, kernels and their temporaries
            return 24.0 * n * (dx + dy) + 96.0 * float(n) * n
        return super().exact_bytes(n, dx, dy)

    def estimate_bytes(self, n: int, dx: int, dy: int) -> float | None:
        pairs = BANDWIDTH_SAMPLE * (BANDWIDTH_SAMPLE - 1) / 2.0
        return 8.0 * BANDWIDTH_SAMPLE * (dx + dy) + 8.0 * pairs + 64.0 * min(n, 200) ** 2

    def _estimated(self, X: Any, Y: Any, plan: Plan, seed: int, level: float) -> Estimate:
        n, dx = shape_of(X)
        dy = shape_of(Y)[1]
        room = plan.budget - 8.0 * BANDWIDTH_SAMPLE * (dx + dy)
        fits = largest_n(lambda s: 8.0 * s * (dx + dy) + 64.0 * float(s) * s, int(room))
        size = max(4, min(self.subset_size, n // 2, fits))
        subsets = max(2, min(self.subsets, n // size))
        return kernel_subsets(self.info.name, X, Y, self.params["kernel"], self.params["sigma"],
                              size, subsets, seed, level)

    def path_costs(self, n: int, dx: int, dy: int) -> tuple[float, float]:
        """Flops of the two linear-kernel paths (no eigenproblems on either)."""
        return feature_cost(n, dx, dy, eig=False), gram_cost(n, dx, dy, eig=False)

    def use_gram(self, n: int, dx: int, dy: int) -> bool:
        if self.params["kernel"] != "linear":
            return True
        return super().use_gram(n, dx, dy)

    # ---------------------------------------------------------------- kernels
    def _centered_kernel(self, p: Prepared) -> Array:
        """Double-centred (biased) or U-centred (debiased) kernel matrix, cached."""
        kernel, debiased = self.params["kernel"], self.params["debiased"]
        key = (
            "ukernel" if debiased else "ckernel",
            kernel,
            self.params["sigma"] if kernel == "rbf" else None,
        )
        if self._mixed(p):
            key = (*key, "mixed")

        def compute() -> Array:
            if kernel == "linear":
                # Gram of the centred data: already double-centred
                raw = self._gram(p, self._mixed(p))
                return u_center(raw) if debiased else raw
            raw = rbf_kernel(self._data64(p), self.params["sigma"])
            return u_center(raw) if debiased else double_center(raw)

        return p.cached(key, compute)  # type: ignore[arg-type]

    def _hsic(self, k: Array, l: Array) -> Array:
        return hsic_unbiased(k, l) if self.params["debiased"] else hsic_biased(k, l)

    # ------------------------------------------------------ feature space, unbiased
    def _row_norms2(self, p: Prepared) -> Array:
        def compute() -> Array:
            xc = self._centered(p)
            return namespace(xc).sum(xc * xc, axis=1)

        return p.cached("rownorm2", compute)

    def _hsic_u_features(self, s: Array, a: Array, b: Array, tra: Array, trb: Array,
                         n: int) -> Array:
        """Unbiased linear HSIC from ``S = X̃ᵀỸ``, row norms and traces (module docstring)."""
        xp = namespace(s)
        ab = xp.sum(a * b)
        num = (xp.sum(s * s) - ab + tra * trb / ((n - 1) * (n - 2)) - 2.0 * ab / (n - 2))
        return num / (n * (n - 3))

    def _hsic_u_triplet(self, px: Prepared, py: Prepared) -> tuple[Array, Array, Array]:
        """(HSIC_u(X,Y), HSIC_u(X,X), HSIC_u(Y,Y)) for the linear kernel, feature space."""
        xp = namespace(px.data)
        n = px.n
        sxx, syy = self._self_moment(px), self._self_moment(py)
        sxy = self._cross_moment(px, py)
        a, b = self._row_norms2(px), self._row_norms2(py)
        tra, trb = xp.linalg.trace(sxx), xp.linalg.trace(syy)
        return (
            self._hsic_u_features(sxy, a, b, tra, trb, n),
            self._hsic_u_features(sxx, a, a, tra, tra, n),
            self._hsic_u_features(syy, b, b, trb, trb, n),
        )

    # ---------------------------------------------------------------- dispatch
    def _compare(self, px: Prepared, py: Prepared) -> Array:
        n, dx, dy = px.n, int(px.data.shape[1]), int(py.data.shape[1])
        self.check_regime(n, dx, dy)
        if self.use_gram(n, dx, dy):
            return self._from_grams(None, None, px, py)
        if self.params["debiased"]:
            return self._from_hsic_triplet(*self._hsic_u_triplet(px, py))
        return self._from_moments(self._moments(px, py, self._mixed(px, py)))

    def _from_grams(self, kx: Array | None, ky: Array | None, px: Prepared,
                    py: Prepared) -> Any:
        k, l = self._centered_kernel(px), self._centered_kernel(py)
        return self._from_hsic_triplet(self._hsic(k, l), self._hsic(k, k), self._hsic(l, l))

    def _from_hsic_triplet(self, hxy: Array, hxx: Array, hyy: Array) -> Any:
        raise NotImplementedError  # pragma: no cover - abstract

    def check_regime(self, n: int, dx: int, dy: int) -> None:
        if n < _HSIC_SMALL_N:
            warn_degenerate(
                f"{self.info.name}: n={n} samples is small for an HSIC estimate "
                f"(< {_HSIC_SMALL_N}); the biased estimator is inflated and the debiased one "
                "has high variance"
            )


@register
class CKA(_KernelMixin):
    r"""Centred kernel alignment (Kornblith et al. 2019).

    ``CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))`` with K, L the
    kernel matrices of X and Y; for the linear kernel and the biased estimator
    this is ``‖X̃ᵀỸ‖²_F / (‖X̃ᵀX̃‖_F ‖ỸᵀỸ‖_F)`` on column-centred X̃, Ỹ.  See
    the module docstring for both estimators and both computation paths.

    Parameters
    ----------
    kernel : {"linear", "rbf"}, default "linear"
        ``rbf`` uses ``k(xᵢ, xⱼ) = exp(−‖xᵢ − xⱼ‖² / (2σ²))`` with
        σ = ``sigma`` × the median pairwise Euclidean distance of that
        representation (so it stays invariant to isotropic scaling).
    sigma : float, default 0.8
        RBF bandwidth as a fraction of the median distance (ignored for linear).
    debiased : bool, default False
        Use the unbiased HSIC estimator of Song et al. (2012).  Removes the
        small-n inflation of the biased estimator; values may then be negative.

    Invariances
    -----------
    Orthogonal transforms (hence permutations), isotropic scaling and
    translation, for both kernels and both estimators; *not* invertible linear
    maps.

    Assumptions
    -----------
    Rows of X and Y are paired samples.  The biased estimator lies in [0, 1]
    and is inflated for small n (≈ 0.2 for independent Gaussians at n = 32);
    the debiased one lies in [−1, 1].  n >= 3 (n >= 4 for the debiased estimator).

    References
    ----------
    Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network
    Representations Revisited", ICML 2019.  Song, Smola, Gretton, Bedo &
    Borgwardt, "Feature Selection via Dependence Maximization", JMLR 2012.
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
        "(use debiased=True); 0 <= value <= 1 for the biased estimator, [-1, 1] debiased.",
        reference="Kornblith et al., Similarity of Neural Network Representations Revisited, "
        "ICML 2019; Song et al., Feature Selection via Dependence Maximization, JMLR 2012",
        differentiable=True,
        **GEOMETRY.fields(),
        params={"kernel": "linear", "sigma": 0.8, "debiased": False},
        variants=(
            {},
            {"kernel": "rbf"},
            {"debiased": True},
            {"kernel": "rbf", "debiased": True, "sigma": 2.0},
        ),
    )

    def _from_moments(self, mom: SecondMoments) -> Any:
        xp = namespace(mom.sxy)
        num = xp.sum(mom.sxy * mom.sxy)
        den = xp.sqrt(xp.sum(mom.sxx * mom.sxx)) * xp.sqrt(xp.sum(mom.syy * mom.syy))
        return num / den

    def _from_hsic_triplet(self, hxy: Array, hxx: Array, hyy: Array) -> Any:
        xp = namespace(hxy)
        if not (bool(hxx > 0) and bool(hyy > 0)):
            raise DegenerateInputError(
                "cka: HSIC of a representation with itself is not positive (its centred "
                "kernel matrix vanishes, e.g. all samples equidistant); CKA is undefined"
            )
        return hxy / xp.sqrt(hxx * hyy)


@register
class HSIC(_KernelMixin):
    r"""Hilbert–Schmidt independence criterion ``HSIC(K, L)`` (Gretton et al. 2005).

    ``HSIC_b = tr(KHLH)/(n − 1)²`` (biased) or the unbiased estimator of Song et
    al. (2012); see the module docstring.  Parameters are those of :class:`CKA`.

    Unnormalised: the value scales with the data (``HSIC(aX, bY) = a²b² HSIC(X, Y)``
    for the linear kernel), so the linear version is invariant only to
    orthogonal maps (hence permutations) and translation.  The RBF version ties
    its bandwidth to the median distance and is therefore also invariant to
    isotropic scaling.  Use :class:`CKA` for a normalised score.

    References
    ----------
    Gretton, Bousquet, Smola & Schölkopf, "Measuring Statistical Dependence with
    Hilbert-Schmidt Norms", ALT 2005; Song et al., JMLR 2012.
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
        assumptions="Scale-dependent (linear kernel); biased estimator >= 0, unbiased may be "
        "negative; no fixed value for HSIC(X, X).",
        reference="Gretton et al., Measuring Statistical Dependence with Hilbert-Schmidt Norms, "
        "ALT 2005; Song et al., JMLR 2012",
        differentiable=True,
        **GEOMETRY.fields(),
        params={"kernel": "linear", "sigma": 0.8, "debiased": False},
        identity_value=float("nan"),
        variants=({}, {"debiased": True}, {"kernel": "rbf"}),
    )

    def _from_moments(self, mom: SecondMoments) -> Any:
        xp = namespace(mom.sxy)
        return xp.sum(mom.sxy * mom.sxy) / ((mom.n - 1) ** 2)

    def _from_grams(self, kx: Array | None, ky: Array | None, px: Prepared,
                    py: Prepared) -> Any:
        return self._hsic(self._centered_kernel(px), self._centered_kernel(py))

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        n, dx, dy = px.n, int(px.data.shape[1]), int(py.data.shape[1])
        if self.params["debiased"] and not self.use_gram(n, dx, dy):
            self.check_regime(n, dx, dy)
            xp = namespace(px.data)
            sxy = self._cross_moment(px, py)
            a, b = self._row_norms2(px), self._row_norms2(py)
            tra = xp.linalg.trace(self._self_moment(px))
            trb = xp.linalg.trace(self._self_moment(py))
            return self._hsic_u_features(sxy, a, b, tra, trb, n)
        return super()._compare(px, py)

    @property
    def invariances(self) -> frozenset[Invariance]:
        if self.params["kernel"] == "rbf":  # bandwidth relative to the median distance
            return self.info.invariances | {Invariance.ISOTROPIC_SCALING}
        return self.info.invariances
