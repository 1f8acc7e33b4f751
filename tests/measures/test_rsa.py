"""RSA against scipy.stats correlations of scipy.spatial.distance.pdist RDMs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial.distance import cosine as cosine_distance
from scipy.spatial.distance import pdist

import repscope
from repscope.core.errors import DegenerateInputError, InvalidParameterError
from repscope.measures import ranks as ranks_module
from repscope.measures import rsa as rsa_module
from repscope.measures.rsa import (
    COMPARATORS,
    FAST_MIN_N,
    RDMS,
    centred_ranks,
    rdm_gemm,
    rdm_vector,
)

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


# ------------------------------------------------------- fast-path kernels
def _scipy_centred_ranks(v: np.ndarray) -> np.ndarray:
    """2r − (m+1) from scipy's average ranks of the float32 rounding of ``v``."""
    return 2 * scipy.stats.rankdata(np.asarray(v, dtype=np.float32)) - (v.size + 1)


def _tied_vectors(rng: np.random.Generator) -> dict[str, np.ndarray]:
    chunk = rsa_module._CHUNK
    signed = rng.integers(-20, 21, size=30_000) / 7.0
    signed[::11] = -0.0
    signed[::13] = 0.0
    return {
        # narrow key range: the counting path under "auto"
        "narrow": 1.0 + rng.integers(0, 300, size=40_000).astype(np.float32) * 1e-6,
        # signed values, both zeros, a wide key range: the sort path under "auto"
        "signed": signed,
        # runs longer than a ranking chunk, crossing chunk borders
        "long_runs": rng.permutation(
            np.repeat([0.5, 1.0, 2.0, 3.0], [chunk + 5, 3, 2 * chunk + 17, 1000])
        ),
        # no ties at all: the tie-free shortcut of the sorted ranking
        "distinct": rng.permutation(np.arange(3 * chunk // 2, dtype=np.float32)),
        "constant": np.full(1000, 0.25),
        "single": np.array([3.0]),
    }


@pytest.mark.parametrize("method", ["auto", "count", "sort"])
def test_centred_ranks_equal_scipy_average_ranks(rng, method):
    for name, v in _tied_vectors(rng).items():
        ref = _scipy_centred_ranks(v)
        if method == "count" and name in ("signed", "long_runs", "distinct"):
            continue  # key ranges of 2^24 to 2^31 keys: too large a table, "auto" sorts
        for group in (10**9, 997, 5000):  # one group, many groups (sort path)
            got = centred_ranks(v, group=group, method=method)
            assert got.dtype == np.int32
            np.testing.assert_array_equal(got, ref, err_msg=f"{name}, group={group}")


def test_centred_ranks_auto_picks_counting_for_narrow_key_ranges(rng, monkeypatch):
    calls: list[str] = []
    count, sort = ranks_module._count_ranks, ranks_module._sort_ranks
    monkeypatch.setattr(ranks_module, "_count_ranks", lambda *a: calls.append("count") or count(*a))
    monkeypatch.setattr(ranks_module, "_sort_ranks", lambda *a: calls.append("sort") or sort(*a))
    vectors = _tied_vectors(rng)
    centred_ranks(vectors["narrow"])  # 300 keys for 40 000 entries
    centred_ranks(vectors["signed"])  # keys of −2.9 … 2.9: a ~2^31-key range
    centred_ranks(vectors["narrow"], group=1000)  # table would outgrow a 1000-entry group
    assert calls == ["count", "sort", "sort"]


def test_centred_ranks_edge_cases_and_errors(rng):
    assert centred_ranks(np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="method"):
        centred_ranks(np.ones(3), method="argsort")
    with pytest.raises(ValueError, match="finite"):
        centred_ranks(np.array([1.0, np.inf, 2.0]), method="count")
    # non-finite values still rank by sorting (inf is the largest value)
    v = np.array([1.0, np.inf, -np.inf, 1.0])
    np.testing.assert_array_equal(centred_ranks(v), _scipy_centred_ranks(v))


def test_rdm_gemm_blocks_and_zero_cleanup(rng):
    # more rows than one default block; duplicated and rescaled samples give exact zeros
    n = rsa_module._BLOCK_ROWS + 90
    x = rng.integers(0, 3, size=(n, 6)).astype(float) + rng.integers(0, 2, size=(n, 1))
    x[7] = x[400]
    x[n - 1] = 2.5 * x[3]
    x = x[np.ptp(x, axis=1) > 0]
    ref = pdist(x, "correlation")
    for dtype in (np.float64, np.float32):
        got = rdm_gemm(x, "correlation", dtype=dtype)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, atol=1e-6 if dtype == np.float32 else 1e-13)
        # every pair pdist puts within rounding of 0 is an exact 0, and no other
        np.testing.assert_array_equal(got == 0, np.abs(ref) <= 1e-12)
    assert (rdm_gemm(x, "correlation") == 0).sum() >= 2


def test_chunked_dot_matches_numpy(rng):
    a = rng.normal(size=3 * rsa_module._CHUNK + 7)
    b = rng.integers(-50, 50, size=a.size).astype(np.int32)
    assert rsa_module._chunked_dot(a, b, 0.5, -2.0) == pytest.approx((a - 0.5) @ (b + 2.0))
    assert rsa_module._chunked_dot(b, b) == float(b.astype(float) @ b)


def test_fast_spearman_threads_do_not_change_the_result(rng, monkeypatch):
    n = FAST_MIN_N + 30
    x = rng.integers(0, 4, size=(n, 5)).astype(np.float32) + 1.0  # tied cosines
    y = np.tanh(x @ rng.normal(size=(5, 7))).astype(np.float32)
    m = repscope.measure("rsa", rdm="cosine")
    threaded = m(x, y)
    monkeypatch.setattr(rsa_module, "available_cpus", lambda: 1)
    assert m(x, y) == threaded
    a, b = (np.round(pdist(v.astype(float), "cosine"), 12) for v in (x, y))
    assert threaded == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-7)


@pytest.mark.parametrize("cpus", [1, 2])
def test_fast_spearman_constant_rdm_names_x_first(rng, monkeypatch, cpus):
    monkeypatch.setattr(rsa_module, "available_cpus", lambda: cpus)
    n = FAST_MIN_N + 4
    base = rng.normal(size=(1, 6))
    const = base * rng.uniform(1.0, 2.0, size=(n, 1))  # every pair parallel: RDM all 0
    m = repscope.measure("rsa", rdm="cosine")
    with pytest.raises(DegenerateInputError, match="RDM of X is constant"):
        m(const, const * 3.0)
    with pytest.raises(DegenerateInputError, match="RDM of Y is constant"):
        m(rng.normal(size=(n, 6)), const)
