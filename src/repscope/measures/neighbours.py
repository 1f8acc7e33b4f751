"""Neighbourhood measures: do the two representations agree on who is near whom?

Every measure here compares the k-nearest-neighbour lists N_X(i) and N_Y(i)
of each sample i (itself excluded, ties broken by the smaller index; see
:mod:`repscope.measures._knn`).  Neighbour lists are computed once per
representation (chunked distances, ``argpartition`` top-k) and shared between
measures with equal ``k`` and ``metric``.

Parameters shared by all measures
---------------------------------
k : int, default 10
    Neighbourhood size, 1 <= k <= n − 1.
metric : {"euclidean", "cosine"}, default "euclidean"
    How neighbours are ranked.  Euclidean neighbourhoods are invariant to
    orthogonal maps, isotropic scaling and translation; cosine neighbourhoods
    are not invariant to translation.  Neither is invariant to general
    invertible linear maps (they change which points are close).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.core.errors import DegenerateInputError
from repscope.measures._knn import KNNMeasure, Neighbours, position_in, row_dots
from repscope.measures.base import Prepared
from repscope.measures.metadata import NEIGHBOURS, Invariance, MeasureInfo
from repscope.measures.registry import register

__all__ = [
    "CKNNA",
    "CycleKNN",
    "KNNJaccard",
    "MutualKNN",
    "RankSimilarity",
    "SecondOrderCosine",
    "shared_neighbours",
]

_KNN_INVARIANCES = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
    }
)
_ANGLE_INVARIANCES = _KNN_INVARIANCES - {Invariance.TRANSLATION}

_PARAMS = {"k": 10, "metric": "euclidean"}
_ASSUME = (
    "Rows are paired samples; k < n. Neighbours by Euclidean distance (metric='cosine' for "
    "cosine distance), the point itself excluded, ties broken by the smaller sample index."
)


def shared_neighbours(nx: Neighbours, ny: Neighbours) -> tuple[np.ndarray, np.ndarray]:
    """Match the two neighbour lists of every sample.

    Returns
    -------
    pos_y : (n, k) int array
        ``pos_y[i, m]`` is the 0-based position of ``nx.indices[i, m]`` in
        ``ny.indices[i]``, or −1 when it is not a Y-neighbour.
    counts : (n,) int array
        ``|N_X(i) ∩ N_Y(i)|``.
    """
    rows = np.broadcast_to(np.arange(nx.n)[:, None], nx.indices.shape)
    pos_y = position_in(ny.indices, rows, nx.indices)
    return pos_y, np.count_nonzero(pos_y >= 0, axis=1)


class _PairwiseKNN(KNNMeasure):
    """k-NN measures computed from the two neighbour lists."""

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        return self._from_neighbours(self.neighbours(px), self.neighbours(py), px, py)

    def _from_neighbours(
        self, nx: Neighbours, ny: Neighbours, px: Prepared, py: Prepared
    ) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


@register
class KNNJaccard(_PairwiseKNN):
    r"""Mean Jaccard index of the two k-NN sets.

    ``m(X, Y) = (1/n) Σ_i |N_X(i) ∩ N_Y(i)| / |N_X(i) ∪ N_Y(i)|
    = (1/n) Σ_i s_i / (2k − s_i)`` with ``s_i = |N_X(i) ∩ N_Y(i)|``.

    In [0, 1]; 1 iff every sample has the same k neighbours in both.
    Invariant to orthogonal maps, isotropic scaling and translation (Euclidean
    neighbours), not to invertible linear maps.

    References
    ----------
    Hryniowski & Wong, "Inter-layer information similarity assessment of deep
    neural networks via topological similarity and persistence analysis of
    data neighbour dynamics", 2020; Klabunde et al., "Similarity of neural
    network models: a survey of functional and representational measures",
    ACM Computing Surveys 2025 (k-NN Jaccard similarity).
    """

    info = MeasureInfo(
        name="knn_jaccard",
        family="neighbourhood",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_KNN_INVARIANCES,
        assumptions=_ASSUME,
        reference="Hryniowski & Wong 2020; Klabunde et al., ACM Computing Surveys 2025",
        backend="numpy",
        params=dict(_PARAMS),
        variants=({}, {"metric": "cosine"}, {"k": 3}),
        version=2,
        **NEIGHBOURS.fields(),
    )

    per_query = True

    def _values(self, nx: Neighbours, ny: Neighbours) -> np.ndarray:
        _, s = shared_neighbours(nx, ny)
        return s / (2.0 * nx.k - s)

    def _from_neighbours(self, nx: Neighbours, ny: Neighbours, px: Prepared, py: Prepared) -> float:
        return float(np.mean(self._values(nx, ny)))


@register
class MutualKNN(_PairwiseKNN):
    r"""Mutual k-NN alignment: mean fraction of shared nearest neighbours.

    ``m(X, Y) = (1/n) Σ_i |N_X(i) ∩ N_Y(i)| / k``.

    In [0, 1]; 1 iff all neighbour sets agree.  Same invariances as
    :class:`KNNJaccard` (a monotone per-sample transform of the same counts,
    but the averages differ).  Huh et al. compute neighbours by inner product
    on L2-normalised features, i.e. ``metric="cosine"``.

    References
    ----------
    Huh, Cheung, Wang & Isola, "The Platonic Representation Hypothesis",
    ICML 2024 (mutual nearest-neighbour metric).
    """

    info = MeasureInfo(
        name="mutual_knn",
        family="neighbourhood",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_KNN_INVARIANCES,
        assumptions=_ASSUME,
        reference="Huh et al., The Platonic Representation Hypothesis, ICML 2024",
        backend="numpy",
        params=dict(_PARAMS),
        version=2,
        **NEIGHBOURS.fields(),
    )

    per_query = True

    def _values(self, nx: Neighbours, ny: Neighbours) -> np.ndarray:
        _, s = shared_neighbours(nx, ny)
        return s / nx.k

    def _from_neighbours(self, nx: Neighbours, ny: Neighbours, px: Prepared, py: Prepared) -> float:
        return float(np.mean(self._values(nx, ny)))


@register
class CycleKNN(_PairwiseKNN):
    r"""Cycle k-NN: can a sample be recovered by going to Y-neighbours and back through X?

    ``m(X, Y) = (1/n) Σ_i 1[∃ j ∈ N_Y(i) : i ∈ N_X(j)]``

    i.e. the fraction of samples i for which at least one of i's k nearest
    neighbours in Y has i among its own k nearest neighbours in X (the
    "Y-neighbours → X-neighbours" cycle of Huh et al., who retrieve with one
    modality and answer with the other).

    Asymmetric.  In [0, 1].  ``m(X, X)`` is *not* fixed: it is the fraction of
    samples with at least one reciprocal neighbour in X (often, but not
    always, 1; for k = 1 it is the fraction of mutual nearest-neighbour pairs),
    so no identity value is declared.  Invariances as :class:`KNNJaccard`.

    References
    ----------
    Huh, Cheung, Wang & Isola, "The Platonic Representation Hypothesis",
    ICML 2024 (cycle k-NN; authors' code ``AlignmentMetrics.cycle_knn``).
    """

    info = MeasureInfo(
        name="cycle_knn",
        family="neighbourhood",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=False,
        metric=False,
        invariances=_KNN_INVARIANCES,
        assumptions=_ASSUME + " Asymmetric: Y-neighbours first, then X-neighbours. m(X, X) "
        "depends on X (fraction of samples with a reciprocal neighbour).",
        reference="Huh et al., The Platonic Representation Hypothesis, ICML 2024",
        backend="numpy",
        params=dict(_PARAMS),
        identity_value=float("nan"),
        variants=({}, {"k": 3}),
        version=2,
        **NEIGHBOURS.fields(),
    )

    def _from_neighbours(self, nx: Neighbours, ny: Neighbours, px: Prepared, py: Prepared) -> float:
        n, k = ny.indices.shape
        me = np.broadcast_to(np.arange(n)[:, None], (n, k))
        # is i in N_X(j) for j = N_Y(i)[m]?
        back = position_in(nx.indices, ny.indices, me) >= 0
        return float(np.mean(np.any(back, axis=1)))


@register
class RankSimilarity(_PairwiseKNN):
    r"""Rank similarity of the k-NN lists (Wang et al. 2020).

    For sample i with joint neighbours ``J_i = N_X(i) ∩ N_Y(i)`` and ranks
    ``r_i(j)``, ``r'_i(j)`` (1 = nearest) in the two lists::

        v_i = (1 / H_{|J_i|}) Σ_{j ∈ J_i} 2 / ((1 + |r_i(j) − r'_i(j)|) (r_i(j) + r'_i(j)))
        m(X, Y) = (1/n) Σ_i v_i ,     v_i = 0 when J_i is empty,

    where ``H_K = Σ_{q=1}^{K} 1/q`` is the largest value the sum can take with
    K joint neighbours (all at equal ranks 1..K), so ``v_i ∈ [0, 1]``.  Close
    neighbours count more than distant ones and rank disagreements are
    penalised.  Symmetric; invariances as :class:`KNNJaccard`.

    References
    ----------
    Wang, Rao, Guo, Wang, Liu & Guan, "Towards understanding the instability
    of network embedding", IEEE TKDE 34(2), 2022 (online 2020); formula as in
    Klabunde et al., ACM Computing Surveys 2025 (rank similarity).
    """

    info = MeasureInfo(
        name="rank_similarity",
        family="neighbourhood",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_KNN_INVARIANCES,
        assumptions=_ASSUME,
        reference="Wang et al., Towards understanding the instability of network embedding, "
        "IEEE TKDE 2020/2022; Klabunde et al., ACM Computing Surveys 2025",
        backend="numpy",
        params=dict(_PARAMS),
        version=2,
        **NEIGHBOURS.fields(),
    )

    per_query = True

    def _from_neighbours(self, nx: Neighbours, ny: Neighbours, px: Prepared, py: Prepared) -> float:
        return float(np.mean(self._values(nx, ny)))

    def _values(self, nx: Neighbours, ny: Neighbours) -> np.ndarray:
        pos_y, counts = shared_neighbours(nx, ny)
        joint = pos_y >= 0
        r = np.arange(1, nx.k + 1, dtype=np.float64)[None, :]  # ranks in X's list
        r2 = pos_y.astype(np.float64) + 1.0  # ranks in Y's list
        terms = np.where(joint, 2.0 / ((1.0 + np.abs(r - r2)) * (r + r2)), 0.0)
        harmonic = np.concatenate(([1.0], np.cumsum(1.0 / np.arange(1, nx.k + 1))))
        return np.where(counts > 0, terms.sum(axis=1) / harmonic[counts], 0.0)


def _unit_rows(x: np.ndarray, who: str, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1)
    if np.any(norms == 0.0):
        raise DegenerateInputError(
            f"{who} has all-zero rows; {name} needs cosine similarities, undefined for them"
        )
    return x / norms[:, None]


@register
class SecondOrderCosine(_PairwiseKNN):
    r"""Second-order cosine similarity (Hamilton et al. 2016).

    For each sample i let ``U_i = N_X(i) ∪ N_Y(i)`` (between k and 2k
    samples) and compare i's cosine similarities to those samples in the two
    spaces::

        s_X(i) = (cos(x_i, x_j))_{j ∈ U_i},   s_Y(i) = (cos(y_i, y_j))_{j ∈ U_i}
        m(X, Y) = (1/n) Σ_i cos(s_X(i), s_Y(i)).

    In [−1, 1] (in [0, 1] when all first-order similarities are positive);
    identity 1.  Because first-order similarities are cosines, the value is
    invariant to orthogonal maps and isotropic scaling but *not* to
    translation (whatever ``metric`` ranks the neighbours), nor to
    invertible linear maps.  Hamilton et al. pick neighbours by cosine
    similarity (``metric="cosine"``); the default here is Euclidean like the
    other k-NN measures.  (ReSi uses cosine *distances* 1 − cos in s_X, s_Y;
    we follow the paper's similarities.)

    Raises :class:`DegenerateInputError` for all-zero rows or when a
    similarity vector is identically zero.

    References
    ----------
    Hamilton, Leskovec & Jurafsky, "Cultural shift or linguistic drift?
    Comparing two computational measures of semantic change", EMNLP 2016.
    """

    info = MeasureInfo(
        name="second_order_cosine",
        family="neighbourhood",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_ANGLE_INVARIANCES,
        assumptions=_ASSUME + " First-order similarities are cosines (rows must be non-zero), "
        "so the value depends on the origin.",
        reference="Hamilton, Leskovec & Jurafsky, EMNLP 2016",
        backend="numpy",
        params=dict(_PARAMS),
        variants=({}, {"metric": "cosine"}),
        version=2,
        **NEIGHBOURS.fields(),
    )

    def _from_neighbours(self, nx: Neighbours, ny: Neighbours, px: Prepared, py: Prepared) -> float:
        name = self.info.name
        ux, uy = _unit_rows(px.data, "X", name), _unit_rows(py.data, "Y", name)
        pos_x, _ = shared_neighbours(ny, nx)  # Y-neighbours already among the X-neighbours
        cand = np.concatenate([nx.indices, ny.indices], axis=1)
        keep = np.concatenate([np.ones_like(pos_x, dtype=bool), pos_x < 0], axis=1)
        sx = np.where(keep, row_dots(ux, ux, cand), 0.0)
        sy = np.where(keep, row_dots(uy, uy, cand), 0.0)
        nrm = np.sqrt(np.sum(sx * sx, axis=1) * np.sum(sy * sy, axis=1))
        if np.any(nrm == 0.0):
            raise DegenerateInputError(
                f"{name}: a sample is orthogonal to all its neighbours in one representation, "
                "so its second-order similarity vector is zero"
            )
        return float(np.mean(np.clip(np.sum(sx * sy, axis=1) / nrm, -1.0, 1.0)))


@register
class CKNNA(_PairwiseKNN):
    r"""Centred kernel nearest-neighbour alignment (Huh et al. 2024).

    CKA restricted to mutual k-NN pairs.  With column-centred features
    ``x̃_i = x_i − x̄`` (likewise ỹ), linear kernels ``K_ij = ⟨x̃_i, x̃_j⟩``,
    ``L_ij = ⟨ỹ_i, ỹ_j⟩`` and the mutual-neighbour indicator
    ``α_ij = 1[i ≠ j, j ∈ N_X(i), j ∈ N_Y(i)]``::

        Align(K, L) = Σ_i Σ_j α_ij K_ij L_ij
        CKNNA(X, Y) = Align(K, L) / sqrt(Align_X(K, K) · Align_Y(L, L))

    where the self-alignments use each representation's own neighbours
    (``Align_X(K, K) = Σ_i Σ_{j ∈ N_X(i)} K_ij²``), as in the paper.  The paper
    writes the kernel entries row-centred, ``K_ij − E_l K_il``; for centred
    features that term is zero, so this is the paper's formula on centred
    features (the centring CKA uses), which makes the value translation
    invariant.  With ``k = n − 1`` it is linear CKA with the diagonal of the
    kernel removed.

    In [−1, 1] by Cauchy–Schwarz (the numerator's pairs are a subset of both
    denominators'); identity 1; 0 when no neighbours are shared.  Invariant
    to orthogonal maps, isotropic scaling and translation; not to invertible
    linear maps.  Note: the authors' code instead applies the unbiased HSIC
    estimator to the masked raw inner-product kernels, so its numbers differ.

    Raises :class:`DegenerateInputError` when a self-alignment is zero.

    References
    ----------
    Huh, Cheung, Wang & Isola, "The Platonic Representation Hypothesis",
    ICML 2024, Appendix (CKNNA).
    """

    info = MeasureInfo(
        name="cknna",
        family="neighbourhood",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_KNN_INVARIANCES,
        assumptions=_ASSUME + " Linear kernel on column-centred features.",
        reference="Huh et al., The Platonic Representation Hypothesis, ICML 2024",
        backend="numpy",
        params=dict(_PARAMS),
        version=2,
        **NEIGHBOURS.fields(),
    )

    def _from_neighbours(self, nx: Neighbours, ny: Neighbours, px: Prepared, py: Prepared) -> float:
        xc = px.data - px.data.mean(axis=0)
        yc = py.data - py.data.mean(axis=0)
        kxx = row_dots(xc, xc, nx.indices)  # K on X's neighbour pairs
        lyy = row_dots(yc, yc, ny.indices)  # L on Y's neighbour pairs
        den = np.sqrt(np.sum(kxx * kxx)) * np.sqrt(np.sum(lyy * lyy))
        if den == 0.0:
            raise DegenerateInputError(
                f"{self.info.name}: a representation's kernel vanishes on all its neighbour "
                "pairs, so its self-alignment is zero"
            )
        pos_y, _ = shared_neighbours(nx, ny)
        lxy = row_dots(yc, yc, nx.indices)  # L on X's neighbour pairs
        num = np.sum(np.where(pos_y >= 0, kxx * lxy, 0.0))
        return float(np.clip(num / den, -1.0, 1.0))
