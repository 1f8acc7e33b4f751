"""Information imbalance and clustering mutual information."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

import repscope
from repscope.core.errors import DegeneracyWarning, InsufficientSamplesError, InvalidParameterError
from repscope.measures.information import kmeans_labels, normalized_mutual_information

# same line data as the neighbourhood tests
X_LINE = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
Y_LINE = np.array([[0.0], [1.5], [1.0], [12.0], [5.0]])


def _paper_imbalance(x: np.ndarray, y: np.ndarray, k: int = 1) -> float:
    """Glielmo et al.'s 2<r>/n by full sorting (ties cannot occur on random data)."""
    n = len(x)
    dx = np.linalg.norm(x[:, None] - x[None], axis=-1)
    dy = np.linalg.norm(y[:, None] - y[None], axis=-1)
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    ranks_y = np.argsort(np.argsort(dy, axis=1), axis=1) + 1
    nn_x = np.argsort(dx, axis=1)[:, :k]
    return 2.0 * np.take_along_axis(ranks_y, nn_x, axis=1).mean() / n


# ---------------------------------------------------------- information imbalance
def test_information_imbalance_hand_worked() -> None:
    # NN_X = [1, 0, 1, 2, 3]; their Y-ranks: 2, 2, 1, 3, 4 -> <r> = 12/5
    # Δ = (<r> - 1) / ((n - 2)/2) = 1.4 / 1.5
    m = repscope.measure("information_imbalance")
    assert m(X_LINE, Y_LINE) == pytest.approx(14 / 15)
    assert _paper_imbalance(X_LINE, Y_LINE) == pytest.approx(2 * 12 / 5 / 5)


@pytest.mark.parametrize("k", [1, 3])
def test_information_imbalance_matches_paper_formula(rng: np.random.Generator, k: int) -> None:
    x = rng.normal(size=(40, 3))
    y = x[:, :2] + 0.3 * rng.normal(size=(40, 2))
    n = len(x)
    paper = _paper_imbalance(x, y, k)
    expected = (n * paper / 2 - (k + 1) / 2) / ((n - k - 1) / 2)
    assert repscope.measure("information_imbalance", k=k)(x, y) == pytest.approx(expected)


def test_identical_is_zero_and_independent_is_one(rng: np.random.Generator) -> None:
    m = repscope.measure("information_imbalance")
    x = rng.normal(size=(400, 4))
    assert m(x, x) == 0.0
    assert m(x, 3.0 * x @ np.linalg.qr(rng.normal(size=(4, 4)))[0] + 1.0) == pytest.approx(0.0)
    noise = rng.normal(size=(400, 4))
    assert abs(m(x, noise) - 1.0) < 0.15
    assert abs(m(noise, x) - 1.0) < 0.15
    assert abs(repscope.measure("information_imbalance", k=5)(x, noise) - 1.0) < 0.15


def test_asymmetry_and_both(rng: np.random.Generator) -> None:
    # the full space predicts one coordinate; one coordinate does not predict the full space
    full = rng.normal(size=(200, 3))
    part = full[:, :1]
    m = repscope.measure("information_imbalance")
    d_full_part, d_part_full = m.both(full, part)
    assert d_full_part == pytest.approx(m(full, part))
    assert d_part_full == pytest.approx(m(part, full))
    assert d_full_part < 0.2 < 0.5 < d_part_full


def test_information_imbalance_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(6, 2))
    with pytest.raises(InsufficientSamplesError, match="k \\+ 2 = 7"):
        repscope.measure("information_imbalance", k=5)(x, x)
    with pytest.raises(InvalidParameterError):
        repscope.measure("information_imbalance", k=-1)


# ------------------------------------------------------------------------- NMI
@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(2, 60),
    st.integers(0, 2**32 - 1),
)
def test_nmi_matches_sklearn(ka: int, kb: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, ka, size=n), rng.integers(0, kb, size=n)
    assert normalized_mutual_information(a, b) == pytest.approx(
        normalized_mutual_info_score(a, b), abs=1e-12
    )


def test_nmi_relabelling_and_extremes() -> None:
    a = np.array([0, 0, 1, 1, 2, 2])
    assert normalized_mutual_information(a, (a + 1) % 3 * 10) == pytest.approx(1.0)
    assert normalized_mutual_information(np.zeros(6), np.zeros(6)) == 1.0
    assert normalized_mutual_information(a, np.zeros(6)) == 0.0
    assert normalized_mutual_information([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)


# --------------------------------------------------------- clustering measure
def test_cluster_mi_equals_sklearn_pipeline(rng: np.random.Generator) -> None:
    x = rng.normal(size=(60, 4))
    y = np.tanh(x @ rng.normal(size=(4, 3))) + 0.2 * rng.normal(size=(60, 3))
    m = repscope.measure("cluster_mutual_information", n_clusters=5, seed=3)
    la = KMeans(n_clusters=5, n_init=4, random_state=3).fit_predict(x)
    lb = KMeans(n_clusters=5, n_init=4, random_state=3).fit_predict(y)
    assert m(x, y) == pytest.approx(normalized_mutual_info_score(la, lb), abs=1e-12)
    assert m(x, y) == m(x, y)  # deterministic under a fixed seed


def test_cluster_mi_separated_blobs(rng: np.random.Generator) -> None:
    centres = rng.normal(scale=20.0, size=(4, 3))
    labels = np.repeat(np.arange(4), 15)
    x = centres[labels] + rng.normal(size=(60, 3))
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    m = repscope.measure("cluster_mutual_information", n_clusters=4)
    assert m(x, 5.0 * x @ q - 2.0) == pytest.approx(1.0)
    assert m(x, rng.normal(size=(60, 3))) < 0.3
    assert repscope.measure_info("cluster_mutual_information").stochastic


def test_kmeans_degenerate_warning() -> None:
    x = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 5, axis=0)  # 2 distinct points
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegeneracyWarning)
        with pytest.raises(DegeneracyWarning, match="k-means"):
            kmeans_labels(x, 3)


def test_cluster_mi_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(5, 2))
    with pytest.raises(InsufficientSamplesError, match="n_clusters=8"):
        repscope.measure("cluster_mutual_information")(x, x)
    with pytest.raises(InvalidParameterError, match="n_clusters"):
        repscope.measure("cluster_mutual_information", n_clusters=1)
    with pytest.raises(InvalidParameterError, match="seed"):
        repscope.measure("cluster_mutual_information", seed=-3)


def test_imbalance_checks_n_on_prepared_from_other_measures(rng: np.random.Generator) -> None:
    x = rng.normal(size=(4, 2))
    other = repscope.measure("mutual_knn", k=3)  # same prepare key, needs only k + 1 samples
    imb = repscope.measure("information_imbalance", k=3)
    assert other.prepare_key() == imb.prepare_key()
    px = other.prepare(x)
    with pytest.raises(InsufficientSamplesError, match="k \\+ 2 = 5"):
        imb.compare_prepared(px, px)
