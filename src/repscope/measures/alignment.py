"""Alignment-based measures: permutation Procrustes, aligned cosine, correlation matching.

* ``permutation_procrustes``: Procrustes distance with the alignment restricted
  to permutations of the neurons (an assignment problem on X̃ᵀỸ).
* ``aligned_cosine``: rotate Y onto X with the optimal orthogonal map, then
  average the per-sample cosine similarities.
* ``hard_correlation_match`` / ``soft_correlation_match``: the neuron-to-neuron
  Pearson correlations of Li et al. (2016), matched one-to-one or to the best
  partner.

The permutation and correlation measures depend on the data only through
second moments, so they stream (:meth:`MomentMeasure.from_moments`); their
assignment step uses :func:`scipy.optimize.linear_sum_assignment`, hence
``backend="numpy"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from repscope.core.arrays import Array, namespace, to_numpy
from repscope.core.errors import DegenerateInputError, InputShapeError
from repscope.core.validation import warn_degenerate
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import GEOMETRY, Invariance, MeasureInfo
from repscope.measures.moment_measure import MomentMeasure
from repscope.measures.moments import SecondMoments
from repscope.measures.registry import register

__all__ = [
    "PermutationProcrustes",
    "AlignedCosine",
    "HardCorrelationMatch",
    "SoftCorrelationMatch",
    "neuron_correlations",
]

_PERM_SCALE_SHIFT = frozenset(
    {Invariance.PERMUTATION, Invariance.ISOTROPIC_SCALING, Invariance.TRANSLATION}
)


# --------------------------------------------------------- permutation
@register
class PermutationProcrustes(MomentMeasure):
    r"""Procrustes distance with the alignment restricted to neuron permutations.

    With X̃, Ỹ column-centred and scaled to unit Frobenius norm::

        d(X, Y) = min_P ‖X̃ − ỸP‖_F = sqrt(2 − 2 max_π Σⱼ (X̃ᵀỸ)_{j, π(j)})

    over permutation matrices P; the maximisation is a linear assignment
    problem on ``X̃ᵀỸ`` (solved exactly by
    :func:`scipy.optimize.linear_sum_assignment`).  Needs equal widths.  A
    metric (quotient of the Frobenius distance on the unit sphere by the
    permutation group), values in [0, 2].

    Invariances: permutations, isotropic scaling and translation; *not*
    general orthogonal maps.

    References
    ----------
    Williams et al., "Generalized Shape Metrics on Neural Representations",
    NeurIPS 2021 (permutation group); Klabunde et al., ReSi benchmark, ICLR 2025.
    """

    info = MeasureInfo(
        name="permutation_procrustes",
        family="alignment",
        kind="distance",
        value_range=(0.0, 2.0),
        symmetric=True,
        metric=True,
        invariances=_PERM_SCALE_SHIFT,
        assumptions="Equal widths; neurons are matched one-to-one; centred and "
        "unit-Frobenius-normalised first.",
        reference="Williams et al., NeurIPS 2021; Klabunde et al., ReSi, ICLR 2025",
        backend="numpy",
        differentiable=False,
        **GEOMETRY.fields(),
        same_dim=True,
    )

    def _from_moments(self, mom: SecondMoments) -> Any:
        sxy = np.asarray(to_numpy(mom.sxy), dtype=np.float64)
        if sxy.shape[0] != sxy.shape[1]:
            raise InputShapeError(
                f"permutation_procrustes needs X and Y of equal width, got {sxy.shape}"
            )
        tx = float(np.trace(to_numpy(mom.sxx)))
        ty = float(np.trace(to_numpy(mom.syy)))
        c = sxy / np.sqrt(tx * ty)
        rows, cols = linear_sum_assignment(c, maximize=True)
        return np.float64(np.sqrt(max(2.0 - 2.0 * float(np.sum(c[rows, cols])), 0.0)))


# ------------------------------------------------------------ cosine
@register
class AlignedCosine(Measure):
    r"""Mean per-sample cosine similarity after optimal orthogonal alignment.

    Y is mapped onto X by the orthogonal Procrustes solution
    ``Q = argmin_Q ‖X − YQ‖_F = U Vᵀ`` (``YᵀX = U S Vᵀ``), then::

        aligned_cosine(X, Y) = (1/n) Σᵢ ⟨xᵢ, (YQ)ᵢ⟩ / (‖xᵢ‖ ‖yᵢ‖)

    The data are *not* centred (as in the survey and ReSi), so the measure
    depends on translations.  Unequal widths: ``Q`` is the optimal partial
    isometry (equivalent to zero-padding the narrower side), and the
    denominator uses the original row norms, which keeps the measure
    symmetric.  Values in [-1, 1], ``m(X, X) = 1``.

    Invariances: orthogonal maps (hence permutations) and isotropic scaling.

    Assumptions: no sample may be the zero vector (cosine undefined; raises
    :class:`DegenerateInputError`); the alignment is unique when ``YᵀX`` has
    full rank.

    References
    ----------
    Hamilton, Leskovec & Jurafsky, "Diachronic Word Embeddings Reveal
    Statistical Laws of Semantic Change", ACL 2016; Klabunde et al., "Similarity
    of Neural Network Models: A Survey of Functional and Representational
    Measures", 2023.
    """

    pair_bytes: ClassVar[float] = 0.0  # O(n·d) memory: no n × n matrix

    info = MeasureInfo(
        name="aligned_cosine",
        family="alignment",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=frozenset(
            {Invariance.PERMUTATION, Invariance.ORTHOGONAL, Invariance.ISOTROPIC_SCALING}
        ),
        assumptions="Uncentred data (not translation invariant); no all-zero sample; "
        "unequal widths aligned by a partial isometry.",
        reference="Hamilton et al., ACL 2016; Klabunde et al., survey 2023",
        differentiable=True,
        **GEOMETRY.fields(),
    )

    def _prepare(self, p: Prepared) -> None:
        xp = namespace(p.data)
        norms = xp.linalg.vector_norm(p.data, axis=1)
        if not bool(xp.all(norms > 0)):
            raise DegenerateInputError(
                "aligned_cosine: a sample (row) is the zero vector; its cosine similarity is "
                "undefined"
            )
        p.cache["row_norms"] = norms

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        x, y = px.data, py.data
        xp = namespace(x)
        u, _, vh = xp.linalg.svd(y.T @ x, full_matrices=False)
        yq = y @ (u @ vh)
        cos = xp.sum(x * yq, axis=1) / (px.cache["row_norms"] * py.cache["row_norms"])
        return xp.mean(cos)


# ------------------------------------------------------- correlations
def neuron_correlations(mom: SecondMoments) -> np.ndarray:
    """Pearson correlations between X's and Y's neurons (dx × dy), constant neurons dropped.

    A neuron is constant when its standard deviation is below 1e-10 times its
    mean's magnitude (or exactly zero).  Dropped neurons are reported with a
    :class:`DegeneracyWarning`; if a whole side is constant,
    :class:`DegenerateInputError` is raised.
    """
    n = mom.n
    vx = np.diag(to_numpy(mom.sxx)) / n
    vy = np.diag(to_numpy(mom.syy)) / n
    kx = _varying(vx, to_numpy(mom.mean_x), "X")
    ky = _varying(vy, to_numpy(mom.mean_y), "Y")
    sxy = np.asarray(to_numpy(mom.sxy), dtype=np.float64)[np.ix_(kx, ky)] / n
    corr = sxy / np.sqrt(vx[kx])[:, None] / np.sqrt(vy[ky])[None, :]
    return np.clip(corr, -1.0, 1.0)


def _varying(var: np.ndarray, mean: np.ndarray, name: str) -> np.ndarray:
    keep = var > (1e-10 * np.abs(mean)) ** 2
    keep &= var > 0
    if not keep.any():
        raise DegenerateInputError(f"every neuron of {name} is constant; correlations undefined")
    dropped = int(keep.size - keep.sum())
    if dropped:
        warn_degenerate(
            f"{dropped} constant neuron(s) of {name} have no correlation and are left out of "
            "the matching",
            stacklevel=4,
        )
    return np.flatnonzero(keep)


class _CorrelationMatch(MomentMeasure):
    """Shared: neuron correlation matrix from moments, then a matching rule."""

    def _from_moments(self, mom: SecondMoments) -> Any:
        return np.float64(self._match(neuron_correlations(mom)))

    def _match(self, corr: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


@register
class HardCorrelationMatch(_CorrelationMatch):
    r"""Mean correlation of the best one-to-one matching of neurons (Li et al. 2016).

    With ``C[i, j] = corr(xᵢ, yⱼ)`` the Pearson correlation of neuron i of X
    and neuron j of Y over the samples::

        hard(X, Y) = max_π (1/m) Σᵢ C[i, π(i)],    m = min(dx, dy)

    over injective matchings π between the smaller and the larger set of
    neurons (a linear assignment problem, solved exactly).  Correlations are
    signed (an anti-correlated pair counts as dissimilar).  Symmetric; values
    in [-1, 1]; ``m(X, X) = 1``.  Constant neurons are left out (warned).

    Invariances: permutations, isotropic scaling and translation (also any
    positive rescaling of single neurons); *not* rotations.

    References
    ----------
    Li, Yosinski, Clune, Lipson & Hopcroft, "Convergent Learning: Do different
    neural networks learn the same representations?", ICLR 2016.
    """

    info = MeasureInfo(
        name="hard_correlation_match",
        family="alignment",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_PERM_SCALE_SHIFT,
        assumptions="Neurons are the units of comparison; one-to-one matching of "
        "min(dx, dy) pairs; constant neurons are left out (warned).",
        reference="Li et al., Convergent Learning, ICLR 2016",
        backend="numpy",
        differentiable=False,
        **GEOMETRY.fields(),
    )

    def _match(self, corr: np.ndarray) -> float:
        rows, cols = linear_sum_assignment(corr, maximize=True)
        return float(np.mean(corr[rows, cols]))


@register
class SoftCorrelationMatch(_CorrelationMatch):
    r"""Mean over X's neurons of the best correlation with any neuron of Y (Li et al. 2016).

    ``soft(X, Y) = (1/dx) Σᵢ maxⱼ corr(xᵢ, yⱼ)`` — the "semi-matching" of
    Li et al.: several neurons of X may pick the same neuron of Y.
    Asymmetric (``soft(Y, X)`` averages over Y's neurons).  Correlations are
    signed.  Values in [-1, 1]; ``m(X, X) = 1``.  Constant neurons are left out
    (warned).

    Invariances: permutations, isotropic scaling and translation of either
    side; *not* rotations.

    References
    ----------
    Li, Yosinski, Clune, Lipson & Hopcroft, "Convergent Learning: Do different
    neural networks learn the same representations?", ICLR 2016.
    """

    info = MeasureInfo(
        name="soft_correlation_match",
        family="alignment",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=False,
        metric=False,
        invariances=_PERM_SCALE_SHIFT,
        assumptions="Each neuron of X is matched to its most correlated neuron of Y "
        "(asymmetric); constant neurons are left out (warned).",
        reference="Li et al., Convergent Learning, ICLR 2016",
        backend="numpy",
        differentiable=False,
        **GEOMETRY.fields(),
    )

    def _match(self, corr: np.ndarray) -> float:
        return float(np.mean(np.max(corr, axis=1)))
