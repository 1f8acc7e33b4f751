"""Representational similarity analysis (RSA; Kriegeskorte, Mur & Bandettini 2008).

Each representation is summarised by its representational dissimilarity
matrix (RDM) over the n samples; RSA compares the two RDMs' upper triangles
(the m = n(n−1)/2 pairwise dissimilarities, in ``scipy.spatial.distance.pdist``
order) with a correlation or cosine.

The RDM is computed once per representation in :meth:`RSA.prepare` and cached,
together with the comparator-ready vector (standardised values or ranks), so
comparing one representation with many costs one O(m) pass per pair (one
O(m log m) pass for Kendall's τ).  RSA measures with the same ``rdm`` and
backend share prepared representations (:meth:`RSA.prepare_key`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._array import Array, namespace
from ..errors import DegenerateInputError
from ..metadata import Invariance, MeasureInfo
from ..registry import register
from ._kernels import distances, sq_distances, upper_triangle
from .base import Measure, Prepared

__all__ = ["RSA", "rdm_vector"]

RDMS = ("euclidean", "sqeuclidean", "correlation", "cosine")
COMPARATORS = ("pearson", "spearman", "kendall", "cosine")

_P, _O, _S, _T = (
    Invariance.PERMUTATION,
    Invariance.ORTHOGONAL,
    Invariance.ISOTROPIC_SCALING,
    Invariance.TRANSLATION,
)

#: invariances of RSA by RDM (every comparator is invariant to positive rescaling of an RDM)
_RDM_INVARIANCES: dict[str, frozenset[Invariance]] = {
    "euclidean": frozenset({_P, _O, _S, _T}),
    "sqeuclidean": frozenset({_P, _O, _S, _T}),
    "cosine": frozenset({_P, _O, _S}),
    "correlation": frozenset({_P, _S}),
}


def _unit_rows(x: Array, what: str) -> Array:
    xp = namespace(x)
    norms = xp.sqrt(xp.sum(x * x, axis=1, keepdims=True))
    if not bool(xp.all(norms > 0)):
        raise DegenerateInputError(
            f"rsa: the {what} RDM needs every sample to have a non-zero "
            f"{'vector' if what == 'cosine' else 'variance across features'}; some do not"
        )
    return x / norms


def rdm_vector(x: Array, rdm: str) -> Array:
    """Upper triangle of the RDM of ``x`` (samples as rows), in ``pdist`` order.

    ``euclidean``: ‖xᵢ − xⱼ‖; ``sqeuclidean``: ‖xᵢ − xⱼ‖²;
    ``cosine``: 1 − cos(xᵢ, xⱼ); ``correlation``: 1 − Pearson r(xᵢ, xⱼ) across
    features.  NumPy input uses :func:`scipy.spatial.distance.pdist` (exact,
    condensed); torch input uses Gram-matrix expansions so it stays on its
    device and differentiable.
    """
    xp = namespace(x)
    if rdm == "correlation":
        if int(x.shape[1]) < 2:
            raise DegenerateInputError("rsa: the correlation RDM needs at least 2 features")
        xr = x - xp.mean(x, axis=1, keepdims=True)
        _unit_rows(xr, "correlation")
    elif rdm == "cosine":
        _unit_rows(x, "cosine")
    if isinstance(x, np.ndarray):
        from scipy.spatial.distance import pdist

        return pdist(x, metric=rdm)
    if rdm == "euclidean":
        return upper_triangle(distances(x))
    if rdm == "sqeuclidean":
        return upper_triangle(sq_distances(x))
    z = _unit_rows(xr if rdm == "correlation" else x, rdm)
    return upper_triangle(1.0 - z @ z.T)


def _standardise(v: Array, center: bool) -> Array | None:
    """``(v − mean)/‖v − mean‖`` (or ``v/‖v‖``); None when the norm is 0."""
    xp = namespace(v)
    if center:
        v = v - xp.mean(v)
    nrm = xp.sqrt(xp.sum(v * v))
    if not bool(nrm > 0):
        return None
    return v / nrm


@register
class RSA(Measure):
    r"""Representational similarity analysis: correlate the two RDMs.

    ``RSA(X, Y) = c(rdm(X), rdm(Y))`` on the upper triangles (i < j).

    Parameters
    ----------
    rdm : {"correlation", "euclidean", "sqeuclidean", "cosine"}, default "correlation"
        Dissimilarity of two samples i, j: ``1 − r(xᵢ, xⱼ)`` (Pearson across
        features), ``‖xᵢ − xⱼ‖``, ``‖xᵢ − xⱼ‖²`` or ``1 − cos(xᵢ, xⱼ)`` — the
        definitions of ``scipy.spatial.distance.pdist``.
    compare : {"spearman", "pearson", "kendall", "cosine"}, default "spearman"
        Pearson r, Spearman ρ (Pearson r of average ranks), Kendall τ_b, or the
        cosine ``⟨a, b⟩/(‖a‖‖b‖)`` of the uncentred vectors.

    The default (correlation RDM, Spearman comparison) is the classic choice of
    Kriegeskorte et al. (2008).  Pearson and cosine comparisons run natively on
    torch (differentiable); Spearman and Kendall need ranks and run in
    NumPy/SciPy (torch input is converted explicitly).

    Invariances (per ``rdm``; all comparators are invariant to rescaling an RDM)
    ---------------------------------------------------------------------------
    * euclidean, sqeuclidean: orthogonal maps, permutations, isotropic scaling,
      translation.
    * cosine: orthogonal maps, permutations, isotropic scaling (not translation).
    * correlation: permutations and isotropic scaling only (an orthogonal map
      or a translation changes each sample's mean across features).
    None is invariant to general invertible linear maps.

    Assumptions
    -----------
    Rows are paired samples.  O(n²) memory for the RDM.  Values in [−1, 1],
    1 for X = Y.  The correlation RDM needs d >= 2 and non-constant samples;
    the cosine RDM needs non-zero samples.

    References
    ----------
    Kriegeskorte, Mur & Bandettini, "Representational similarity analysis –
    connecting the branches of systems neuroscience", Front. Syst. Neurosci.
    2008.  Nili et al., "A toolbox for representational similarity analysis",
    PLoS Comput. Biol. 2014.
    """

    info = MeasureInfo(
        name="rsa",
        family="rsm",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_RDM_INVARIANCES["correlation"],
        assumptions="Rows are paired samples; O(n^2) memory; invariances depend on rdm; "
        "spearman/kendall run in NumPy/SciPy, pearson/cosine also natively on torch.",
        reference="Kriegeskorte, Mur & Bandettini, Representational similarity analysis, "
        "Front. Syst. Neurosci. 2008",
        backend="numpy",
        differentiable=False,
        min_samples=3,
        params={"rdm": "correlation", "compare": "spearman"},
        variants=tuple({"rdm": r, "compare": c} for r in RDMS for c in COMPARATORS),
    )

    def _check_params(self) -> None:
        self._param_in("rdm", RDMS)
        self._param_in("compare", COMPARATORS)

    @property
    def backend(self) -> str:
        return "numpy" if self.params["compare"] in ("spearman", "kendall") else "array_api"

    @property
    def invariances(self) -> frozenset[Invariance]:
        return _RDM_INVARIANCES[self.params["rdm"]]

    def prepare_key(self) -> tuple[Any, ...]:
        # The cached RDM depends on rdm and backend only; comparator-ready vectors
        # are cached lazily under their own keys.
        return ("rsa", self.params["rdm"], self.backend)

    def _prepare(self, p: Prepared) -> None:
        p.cache["rdm"] = rdm_vector(p.data, self.params["rdm"])

    def _vector(self, p: Prepared, name: str) -> Array:
        """The comparator-ready form of ``p``'s RDM, computed once and cached."""
        compare = self.params["compare"]
        key = f"rdm_{compare}"
        v = p.cache.get(key)
        if v is None:
            a = p.cache["rdm"]
            if compare == "kendall":
                v = a
            else:
                if compare == "spearman":
                    from scipy.stats import rankdata

                    a = rankdata(a)
                v = _standardise(a, center=compare != "cosine")
                if v is None:
                    raise DegenerateInputError(
                        f"rsa: the {self.params['rdm']} RDM of {name} is constant (all pairwise "
                        f"dissimilarities equal{'' if compare != 'cosine' else ' to 0'}); "
                        f"its {compare} correlation is undefined"
                    )
            p.cache[key] = v
        return v

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        a, b = self._vector(px, "X"), self._vector(py, "Y")
        if self.params["compare"] == "kendall":
            from scipy.stats import kendalltau

            tau = float(kendalltau(a, b).statistic)
            if not np.isfinite(tau):
                raise DegenerateInputError(
                    f"rsa: an RDM ({self.params['rdm']}) is constant; Kendall's tau is undefined"
                )
            return np.asarray(tau, dtype=np.float64)
        xp = namespace(a)
        return xp.clip(xp.sum(a * b), -1.0, 1.0)
