"""Information-theoretic measures: information imbalance and clustering mutual information.

Both run on NumPy (neighbour ranks; k-means from scikit-learn) and convert
torch input explicitly.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from repscope.core.arrays import Array, to_numpy
from repscope.core.errors import InputShapeError, InsufficientSamplesError
from repscope.core.linalg import snap
from repscope.core.validation import as_representation, warn_degenerate
from repscope.measures._knn import KNNMeasure, neighbour_ranks
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import GEOMETRY, NEIGHBOURS, Invariance, MeasureInfo
from repscope.measures.registry import register

__all__ = [
    "ClusterMutualInformation",
    "InformationImbalance",
    "kmeans_labels",
    "normalized_mutual_information",
]

_EUCLIDEAN_INVARIANCES = frozenset(
    {
        Invariance.PERMUTATION,
        Invariance.ORTHOGONAL,
        Invariance.ISOTROPIC_SCALING,
        Invariance.TRANSLATION,
    }
)


@register
class InformationImbalance(KNNMeasure):
    r"""Information imbalance Δ(X → Y) (Glielmo et al. 2022), finite-sample centred.

    Let ``r^Y_ij`` be the rank of j among i's neighbours in Y (1 = nearest,
    ties by index) and ``N_X(i)`` the k nearest neighbours of i in X.  With the
    mean Y-rank of the X-neighbours ``⟨r⟩ = (1/(nk)) Σ_i Σ_{j ∈ N_X(i)} r^Y_ij``,
    the paper defines ``Δ_paper = 2⟨r⟩ / n`` (for k = 1:
    ``(2/n²) Σ_{i,j: r^X_ij = 1} r^Y_ij``).  repscope reports the same quantity
    rescaled so that its two reference points are exact for every n::

        Δ(X → Y) = (⟨r⟩ − (k + 1)/2) / ((n − k − 1)/2)
                 = (n Δ_paper / 2 − (k + 1)/2) / ((n − k − 1)/2)

    * Δ = 0 iff the k nearest neighbours in X are also the k nearest in Y
      (X fully predicts Y's neighbourhoods); ``Δ(X → X) = 0``.
    * E[Δ] = 1 when Y is independent of X (the ranks are then uniform on
      1..n−1, mean n/2): X carries no information about Y.
    * Δ ≤ 2, reached when X's neighbours are Y's farthest points.

    For large n, Δ ≈ Δ_paper.  The measure is asymmetric: a small Δ(X → Y)
    with a large Δ(Y → X) says X contains the information in Y but not
    conversely.  Use :meth:`both` for the pair of directions.  Invariant to
    orthogonal maps, isotropic scaling and translation of either argument
    (Euclidean ranks; cosine ranks lose translation), not to invertible linear
    maps.  Needs n >= k + 2.

    Parameters
    ----------
    k : int, default 1
        Number of X-neighbours whose Y-ranks are averaged (the paper uses 1).
    metric : {"euclidean", "cosine"}, default "euclidean"

    References
    ----------
    Glielmo, Zeni, Cheng, Csányi & Laio, "Ranking the information content of
    distance measures", PNAS Nexus 1(2), 2022.
    """

    info = MeasureInfo(
        name="information_imbalance",
        family="information",
        kind="distance",
        value_range=(0.0, 2.0),
        symmetric=False,
        metric=False,
        invariances=_EUCLIDEAN_INVARIANCES,
        assumptions="Rows are paired samples; n >= k + 2. Asymmetric: how well X's "
        "neighbourhoods predict Y's. Centred so that identical neighbourhoods give exactly 0 and "
        "independent representations 1 in expectation (the paper's 2<r>/n differs by O(1/n)).",
        reference="Glielmo et al., Ranking the information content of distance measures, "
        "PNAS Nexus 2022",
        backend="numpy",
        params={"k": 1, "metric": "euclidean"},
        variants=({}, {"k": 5}),
        version=2,
        **NEIGHBOURS.fields(),
    )

    def _check_n(self, n: int) -> None:
        k = self.params["k"]
        if n < k + 2:
            raise InsufficientSamplesError(
                f"{self.info.name} with k={k} needs at least k + 2 = {k + 2} samples, got {n}"
            )

    def _prepare(self, p: Prepared) -> None:
        self._check_n(p.n)
        super()._prepare(p)

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        self._check_n(px.n)  # px may have been prepared by another k-NN measure
        nx = self.neighbours(px)
        ranks = neighbour_ranks(py.data, nx.indices, self.params["metric"])
        k, n = nx.k, px.n
        mean_rank = float(np.mean(ranks, dtype=np.float64))
        return (mean_rank - (k + 1) / 2.0) / ((n - k - 1) / 2.0)

    def both(self, X: Any, Y: Any) -> tuple[float, float]:
        """``(Δ(X → Y), Δ(Y → X))``, preparing each representation once."""
        px, py = self.prepare(X, "X"), self.prepare(Y, "Y")
        return float(self.compare_prepared(px, py)), float(self.compare_prepared(py, px))


# ---------------------------------------------------------------- clustering
def normalized_mutual_information(a: Array, b: Array) -> float:
    """Normalised mutual information of two partitions (arithmetic-mean normalisation).

    ``NMI(A, B) = I(A; B) / ((H(A) + H(B)) / 2)`` with natural-log entropies of
    the empirical label distributions and ``I(A; B) = Σ_ab p_ab log(p_ab / (p_a p_b))``.
    When both partitions have a single block (H(A) = H(B) = 0) they are
    identical and NMI = 1.  In [0, 1]; invariant to relabelling the blocks.
    """
    a = np.asarray(to_numpy(a)).ravel()
    b = np.asarray(to_numpy(b)).ravel()
    if a.shape != b.shape:
        raise InputShapeError(
            f"partitions must label the same samples, got {a.size} and {b.size} labels"
        )
    n = a.size
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.float64)
    np.add.at(table, (ia, ib), 1.0)
    p = table / n
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    mi = float(np.sum(p[nz] * (np.log(p[nz]) - np.log(np.outer(pa, pb)[nz]))))
    ha = float(-np.sum(pa * np.log(pa)))
    hb = float(-np.sum(pb * np.log(pb)))
    if ha == 0.0 and hb == 0.0:
        return 1.0
    return float(np.clip(mi / ((ha + hb) / 2.0), 0.0, 1.0))


def _snapped_unit(x: np.ndarray) -> np.ndarray:
    """``x / max|x|`` snapped to a grid of 2⁻⁴⁰ (:func:`repscope.core.linalg.snap`).

    k-means' seeding draws and assignments can flip on rounding noise; dividing by
    the largest magnitude and snapping makes the input the same numbers for the
    data at any scale (up to the rare entry within rounding of a grid point), so
    the partition — hence the value — is invariant to isotropic scaling in
    floating point too, not only in exact arithmetic.
    """
    top = float(np.max(np.abs(x)))
    z = np.array(x, dtype=np.float64) / (top if top > 0 else 1.0)
    return snap(z, 1.0)


def _sklearn_kmeans() -> Any:
    try:
        from sklearn.cluster import KMeans
    except ImportError as exc:  # pragma: no cover - scikit-learn is in the test extras
        raise ImportError(
            "cluster_mutual_information needs scikit-learn: pip install scikit-learn"
        ) from exc
    return KMeans


def kmeans_labels(x: Any, n_clusters: int, *, seed: int = 0, n_init: int = 4) -> np.ndarray:
    """k-means (k-means++ initialisation, Lloyd iterations) cluster labels of the rows of ``x``.

    Deterministic for a fixed ``seed``: the OpenMP part runs on one thread, so
    the partition does not depend on the machine's thread count (this is also
    much faster for small inputs, where thread start-up dominates).  Emits a
    :class:`DegeneracyWarning` when fewer than ``n_clusters`` distinct
    clusters could be formed.
    """
    x = np.asarray(to_numpy(as_representation(x, "x", min_samples=n_clusters)))
    kmeans = _sklearn_kmeans()
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    km = kmeans(n_clusters=n_clusters, n_init=n_init, random_state=seed)
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1, "openmp"):
        warnings.simplefilter("always", ConvergenceWarning)
        labels = km.fit_predict(x)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            warn_degenerate(f"k-means: {w.message}")
        else:  # pragma: no cover - pass other warnings through
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return np.asarray(labels, dtype=np.int64)


@register
class ClusterMutualInformation(Measure):
    r"""Normalised mutual information of k-means partitions of the two representations.

    Each representation is clustered separately with k-means (``n_clusters``
    clusters, k-means++ initialisation, best of ``n_init`` runs, seeded by
    ``seed``); the two partitions A (of X) and B (of Y) are compared with::

        NMI(A, B) = I(A; B) / ((H(A) + H(B)) / 2)

    (arithmetic-mean normalisation, as scikit-learn's default).  In [0, 1];
    1 when the partitions agree up to relabelling, ≈ 0 for independent ones
    (NMI is not chance-corrected: expect small positive values for unrelated
    representations, growing with ``n_clusters / n``).

    k-means minimises Euclidean within-cluster scatter, so the partition (and
    the value) is invariant to orthogonal maps, isotropic scaling and
    translation — up to floating-point ties in the seeded k-means++ draws —
    but not to invertible linear maps.  Each representation is divided by its
    largest magnitude and snapped to a grid of 2⁻⁴⁰ before clustering, so a
    rescaled copy (by any factor) is clustered from the same numbers.
    Stochastic through the k-means initialisation; deterministic for a fixed
    ``seed``.  Needs scikit-learn.

    Parameters
    ----------
    n_clusters : int, default 8
    seed : int, default 0
    n_init : int, default 4
        Number of k-means restarts (the lowest-inertia partition is kept).

    References
    ----------
    Strehl & Ghosh, "Cluster ensembles", JMLR 2002 (NMI); clustering-based
    comparison as surveyed by Klabunde et al., ACM Computing Surveys 2025.
    """

    pair_bytes: ClassVar[float] = 0.0  # O(n·d) memory: no n × n matrix

    info = MeasureInfo(
        name="cluster_mutual_information",
        family="information",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_EUCLIDEAN_INVARIANCES,
        assumptions="Rows are paired samples; n >= n_clusters. Depends on k-means finding "
        "comparable partitions; not chance-corrected. Requires scikit-learn.",
        reference="Strehl & Ghosh, Cluster ensembles, JMLR 2002; Klabunde et al., "
        "ACM Computing Surveys 2025",
        backend="numpy",
        params={"n_clusters": 8, "seed": 0, "n_init": 4},
        stochastic=True,
        version=2,
        **GEOMETRY.fields(),
    )

    @property
    def min_samples(self) -> int:
        """At least ``n_clusters`` samples (k-means needs one per cluster)."""
        return max(self.info.min_samples, self.params["n_clusters"])

    @property
    def min_samples_reason(self) -> str:
        if self.params["n_clusters"] <= self.info.min_samples:
            return self.info.min_samples_reason
        return f"k-means with n_clusters={self.params['n_clusters']} needs a sample per cluster"

    def _check_params(self) -> None:
        self._param_range("n_clusters", 2, integer=True)
        self._param_range("seed", 0, 2**32 - 1, integer=True)
        self._param_range("n_init", 1, integer=True)
        for name in ("n_clusters", "seed", "n_init"):
            self.params[name] = int(self.params[name])

    def _prepare(self, p: Prepared) -> None:
        c = self.params["n_clusters"]
        if p.n < c:
            raise InsufficientSamplesError(
                f"{self.info.name} with n_clusters={c} needs at least {c} samples, got {p.n}"
            )
        key = ("kmeans", c, self.params["seed"], self.params["n_init"])
        if key not in p.cache:
            p.cache[key] = kmeans_labels(
                _snapped_unit(p.data), c, seed=self.params["seed"], n_init=self.params["n_init"]
            )

    def _labels(self, p: Prepared) -> np.ndarray:
        key = ("kmeans", self.params["n_clusters"], self.params["seed"], self.params["n_init"])
        if key not in p.cache:
            self._prepare(p)
        return p.cache[key]

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        return normalized_mutual_information(self._labels(px), self._labels(py))
