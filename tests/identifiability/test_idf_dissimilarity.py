"""m_SVD (vs scikit-learn PLSSVD), m_CCA (vs scikit-learn CCA) and d_{f,g}."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from sklearn.cross_decomposition import CCA, PLSSVD

import repscope
from repscope.core.errors import DegenerateInputError, InputShapeError, InsufficientSamplesError
from repscope.identifiability import (
    DiversityConditionError,
    MeanSVD,
    SoftmaxModel,
    llv_distance,
    m_cca,
    m_svd,
    representation_dissimilarity,
)
from repscope.testing import check_measure


def _sklearn_m_svd(x: np.ndarray, y: np.ndarray) -> float:
    """The reference procedure: standardise, PLSSVD, mean covariance of component pairs."""
    zx = (x - x.mean(0)) / x.std(0, ddof=1)
    zy = (y - y.mean(0)) / y.std(0, ddof=1)
    k = min(x.shape[1], y.shape[1])
    u, v = PLSSVD(n_components=k).fit(zx, zy).transform(zx, zy)
    return float(np.mean([np.cov(u[:, j], v[:, j])[0, 1] for j in range(k)]))


def _sklearn_m_cca(x: np.ndarray, y: np.ndarray) -> float:
    k = min(x.shape[1], y.shape[1])
    u, v = CCA(n_components=k, max_iter=5000, tol=1e-12).fit(x, y).transform(x, y)
    return float(np.mean([np.corrcoef(u[:, j], v[:, j])[0, 1] for j in range(k)]))


@pytest.mark.parametrize(("n", "dx", "dy"), [(50, 2, 2), (80, 3, 3), (60, 4, 3), (40, 5, 5)])
def test_m_svd_closed_form_matches_plssvd(rng: np.random.Generator, n: int, dx: int, dy: int
                                          ) -> None:
    x = rng.normal(size=(n, dx)) * rng.uniform(0.5, 3, size=dx)
    y = x[:, :dy] @ rng.normal(size=(dy, dy)) + rng.normal(size=(n, dy))
    assert m_svd(x, y) == pytest.approx(_sklearn_m_svd(x, y), rel=1e-8)
    assert MeanSVD()(x, y) == pytest.approx(_sklearn_m_svd(x, y), rel=1e-8)


@pytest.mark.parametrize(("n", "d"), [(200, 2), (300, 3), (250, 5)])
def test_m_cca_matches_sklearn_cca(rng: np.random.Generator, n: int, d: int) -> None:
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=(d, d)) + 1.5 * rng.normal(size=(n, d))
    assert m_cca(x, y) == pytest.approx(_sklearn_m_cca(x, y), abs=1e-5)
    assert m_cca(x, y) == repscope.measure("mean_cca")(x, y)


def test_m_svd_identity_and_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(30, 3))
    assert m_svd(x, x) == pytest.approx(1.0)
    assert m_svd(x, -2 * x[:, ::-1] + 4) == pytest.approx(1.0)  # per-column scale, permutation
    const = x.copy()
    const[:, 1] = 2.0
    with pytest.raises(DegenerateInputError, match="constant"):
        m_svd(const, x)
    with pytest.raises(InputShapeError):
        m_svd(x, x[:-1])


def test_mean_svd_measure_conformance() -> None:
    report = check_measure(MeanSVD())
    assert report.ok


def _models(rng: np.random.Generator, n: int = 60, k: int = 6, m: int = 2, noise: float = 0.3
            ) -> tuple[SoftmaxModel, SoftmaxModel]:
    f, g = rng.normal(size=(n, m)), rng.normal(size=(k, m)) * 2
    return SoftmaxModel(f, g), SoftmaxModel(f + noise * rng.normal(size=f.shape), g)


@pytest.mark.parametrize("m", [1, 2, 3])
def test_d_fg_matches_explicit_construction(rng: np.random.Generator, m: int) -> None:
    a, b = _models(rng, k=7, m=m)
    llv = llv_distance(a, b, n_candidates=20, seed=1)
    res = representation_dissimilarity(a, b, llv)
    p, lo = llv.pivot, llv.left_out
    rest = [y for y in range(7) if y not in (p, lo)]
    expected = []
    for sub in itertools.combinations(rest, m):
        la = (a.G[list(sub)] - a.G[p]).T  # columns g(y_j) - g(y_0)
        lb = (b.G[list(sub)] - b.G[p]).T
        expected.append(_sklearn_m_svd(a.F @ la, b.F @ lb))
    np.testing.assert_allclose(res.m_svd_f, expected, rtol=1e-8)
    assert res.label_subsets == tuple(itertools.combinations(rest, m))
    x0, xs = llv.input_set[0], list(llv.input_set[1:])
    na, nb = (a.F[xs] - a.F[x0]).T, (b.F[xs] - b.F[x0]).T
    assert res.m_svd_g == pytest.approx(_sklearn_m_svd(a.G @ na, b.G @ nb), rel=1e-8)
    assert res.d_svd_f == pytest.approx(1 - min(expected))
    assert res.d_fg == max(res.d_svd_f, res.d_svd_g)
    worst = res.label_subsets.index(res.worst_subset)
    assert expected[worst] == pytest.approx(min(expected), rel=1e-8)
    assert {"d_fg", "d_svd_f", "d_svd_g", "m_svd_f"} <= set(res.to_dict())


def test_d_fg_is_invariant_to_the_identifiability_class(rng: np.random.Generator) -> None:
    a, b = _models(rng, m=3, k=7)
    A = rng.normal(size=(3, 3)) + 2 * np.eye(3)
    b2 = b.transformed(A, shift=rng.normal(size=3))
    r1 = llv_distance(a, b, input_set=(0, 1, 2, 3))
    r2 = llv_distance(a, b2, input_set=(0, 1, 2, 3))
    assert r2.distance == pytest.approx(r1.distance, rel=1e-8)
    d1 = representation_dissimilarity(a, b, r1)
    d2 = representation_dissimilarity(a, b2, r2)
    np.testing.assert_allclose(d2.m_svd_f, d1.m_svd_f, rtol=1e-8)
    assert d2.d_svd_g == pytest.approx(d1.d_svd_g, abs=1e-10)


def test_dissimilarity_errors(rng: np.random.Generator) -> None:
    a, b = _models(rng)
    llv = llv_distance(a, b, n_candidates=5)
    with pytest.raises(TypeError):
        representation_dissimilarity(a, b, {"pivot": 0})  # type: ignore[arg-type]
    with pytest.raises(InputShapeError):
        representation_dissimilarity(a, b, dataclasses.replace(llv, input_set=(0, 1, 999)))
    small = SoftmaxModel(rng.normal(size=(20, 2)), rng.normal(size=(3, 2)))
    with pytest.raises(InsufficientSamplesError, match="K-2 >= M"):
        representation_dissimilarity(small, small, llv_distance(small, small, n_candidates=3))
    f = a.F.copy()
    f[1] = f[0]  # duplicate inputs make a column of N^T g vanish
    dup = SoftmaxModel(f, a.G)
    with pytest.raises(DiversityConditionError):
        representation_dissimilarity(dup, dup, dataclasses.replace(llv, input_set=(0, 1, 2)))
