"""RSA against scipy.stats correlations of scipy.spatial.distance.pdist RDMs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial.distance import cosine as cosine_distance
from scipy.spatial.distance import pdist

import repscope
from repscope.errors import DegenerateInputError, InvalidParameterError
from repscope.measures.rsa import COMPARATORS, RDMS, rdm_vector

COMBOS = [(r, c) for r in RDMS for c in COMPARATORS]


def rsa_ref(x: np.ndarray, y: np.ndarray, rdm: str, compare: str) -> float:
    a, b = pdist(x, metric=rdm), pdist(y, metric=rdm)
    if compare == "pearson":
        return float(scipy.stats.pearsonr(a, b).statistic)
    if compare == "spearman":
        return float(scipy.stats.spearmanr(a, b).statistic)
    if compare == "kendall":
        return float(scipy.stats.kendalltau(a, b).statistic)
    return 1.0 - float(cosine_distance(a, b))


def _pair(rng: np.random.Generator, n: int = 14) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, 5)) + 0.5 * rng.normal(size=(n, 5)) + 1.0
    y = np.tanh(z @ rng.normal(size=(3, 4))) + 0.5 * rng.normal(size=(n, 4))
    return x, y


@pytest.mark.parametrize(("rdm", "compare"), COMBOS)
def test_rsa_equals_scipy(rng, rdm, compare):
    x, y = _pair(rng)
    m = repscope.measure("rsa", rdm=rdm, compare=compare)
    ref = rsa_ref(x, y, rdm, compare)
    assert m(x, y) == pytest.approx(ref, rel=1e-10, abs=1e-12)
    # torch input: the pearson/cosine path stays torch, the rank path converts
    out = m.compute(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor) == (compare in ("pearson", "cosine"))
    assert float(out) == pytest.approx(ref, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("rdm", RDMS)
def test_rdm_vector_equals_pdist(rng, rdm):
    x = rng.normal(size=(9, 4)) + 3.0
    np.testing.assert_allclose(rdm_vector(x, rdm), pdist(x, metric=rdm), rtol=1e-12)
    t = rdm_vector(torch.from_numpy(x), rdm)
    np.testing.assert_allclose(t.numpy(), pdist(x, metric=rdm), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("compare", COMPARATORS)
def test_rsa_with_tied_dissimilarities(rng, compare):
    # integer grids: many exactly tied distances, incl. duplicated samples
    x = rng.integers(0, 3, size=(12, 2)).astype(float)
    y = rng.integers(0, 3, size=(12, 3)).astype(float)
    m = repscope.measure("rsa", rdm="euclidean", compare=compare)
    assert m(x, y) == pytest.approx(rsa_ref(x, y, "euclidean", compare), rel=1e-10)


@pytest.mark.parametrize(("rdm", "compare"), COMBOS)
def test_identity_is_one(rng, rdm, compare):
    x, _ = _pair(rng)
    assert repscope.measure("rsa", rdm=rdm, compare=compare)(x, x) == pytest.approx(1.0)


def test_defaults_and_backends():
    m = repscope.measure("rsa")
    assert m.params == {"rdm": "correlation", "compare": "spearman"}
    assert m.backend == "numpy"
    assert repscope.measure("rsa", compare="kendall").backend == "numpy"
    assert repscope.measure("rsa", compare="pearson").backend == "array_api"
    assert repscope.measure("rsa", compare="cosine").backend == "array_api"


def test_invariances_depend_on_rdm():
    inv = repscope.Invariance
    euclid = repscope.measure("rsa", rdm="euclidean").invariances
    assert euclid == {inv.PERMUTATION, inv.ORTHOGONAL, inv.ISOTROPIC_SCALING, inv.TRANSLATION}
    assert repscope.measure("rsa", rdm="cosine").invariances == {
        inv.PERMUTATION, inv.ORTHOGONAL, inv.ISOTROPIC_SCALING
    }
    assert repscope.measure("rsa", rdm="correlation").invariances == {
        inv.PERMUTATION, inv.ISOTROPIC_SCALING
    }
    names = {(v["rdm"], v["compare"]) for v in repscope.measure_info("rsa").variants}
    assert names == set(COMBOS)


def test_correlation_rdm_is_not_rotation_invariant(rng):
    x, y = _pair(rng)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    corr = repscope.measure("rsa", rdm="correlation", compare="pearson")
    assert abs(corr(x, y) - corr(x, y @ q)) > 1e-4
    euclid = repscope.measure("rsa", rdm="euclidean", compare="pearson")
    assert euclid(x, y) == pytest.approx(euclid(x, y @ q + 4.0), rel=1e-10)


def test_prepared_rdm_is_reused_across_comparisons(rng):
    x, y = _pair(rng)
    others = [rng.normal(size=x.shape) for _ in range(3)]
    pearson = repscope.measure("rsa", rdm="euclidean", compare="pearson")
    cosine = repscope.measure("rsa", rdm="euclidean", compare="cosine")
    spearman = repscope.measure("rsa", rdm="euclidean", compare="spearman")
    assert pearson.prepare_key() == cosine.prepare_key()
    assert pearson.prepare_key() != spearman.prepare_key()  # different backends
    assert pearson.prepare_key() != repscope.measure("rsa", compare="pearson").prepare_key()
    px = pearson.prepare(x)
    rdm = px.cache["rdm"]
    for o in [y, *others]:
        po = pearson.prepare(o)
        assert float(pearson.compare_prepared(px, po)) == pytest.approx(pearson(x, o))
        assert float(cosine.compare_prepared(px, po)) == pytest.approx(cosine(x, o))
    assert px.cache["rdm"] is rdm  # computed once
    assert {"rdm_pearson", "rdm_cosine"} <= set(px.cache)


def test_pearson_rsa_is_differentiable():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(7, 4, dtype=torch.float64, generator=g, requires_grad=True)
    for rdm in RDMS:
        m = repscope.measure("rsa", rdm=rdm, compare="pearson")
        assert torch.autograd.gradcheck(lambda a, b, m=m: m.compute(a, b), (x, y))


# ------------------------------------------------------------------ errors
def test_invalid_parameters():
    with pytest.raises(InvalidParameterError):
        repscope.measure("rsa", rdm="mahalanobis")
    with pytest.raises(InvalidParameterError):
        repscope.measure("rsa", compare="tau-a")


@pytest.mark.parametrize("compare", ["pearson", "spearman"])
def test_cosine_rdm_zero_sample_raises(rng, compare):
    x = rng.normal(size=(6, 3))
    x[2] = 0.0
    with pytest.raises(DegenerateInputError, match="non-zero"):
        repscope.measure("rsa", rdm="cosine", compare=compare)(x, rng.normal(size=(6, 3)))


def test_correlation_rdm_needs_two_features(rng):
    with pytest.raises(DegenerateInputError, match="at least 2 features"):
        repscope.measure("rsa")(rng.normal(size=(6, 1)), rng.normal(size=(6, 3)))
    x = rng.normal(size=(6, 3))
    x[1] = 2.0  # a sample constant across features
    with pytest.raises(DegenerateInputError, match="variance across features"):
        repscope.measure("rsa")(x, rng.normal(size=(6, 3)))


@pytest.mark.parametrize("compare", COMPARATORS)
def test_constant_rdm(rng, compare):
    x = np.eye(4)  # regular simplex: all six distances are exactly sqrt(2)
    y = rng.normal(size=(4, 2))
    m = repscope.measure("rsa", rdm="euclidean", compare=compare)
    if compare == "cosine":  # the cosine of a constant non-zero RDM is well defined
        assert m(x, y) == pytest.approx(rsa_ref(x, y, "euclidean", "cosine"), rel=1e-12)
        return
    with pytest.raises(DegenerateInputError, match="constant"):
        m(x, y)
