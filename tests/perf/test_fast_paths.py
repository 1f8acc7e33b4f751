"""Cost-based paths and mixed-precision fast paths give the exact answers; nothing is timed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial.distance import pdist

import repscope
from repscope.core.errors import DegeneracyWarning
from repscope.core.linalg import (
    MIXED_BLOCK,
    cholesky_pd,
    deflate_ones,
    gram_fidelity,
    mixed_cross,
    mixed_gram,
    psd_sqrt_trace,
)
from repscope.measures.cca import canonical_correlations, correlations_cholesky
from repscope.measures.moment_measure import choose_gram
from repscope.measures.rsa import FAST_MIN_N, centred_ranks, rdm_gemm


def _pair32(rng: np.random.Generator, n: int, d: int, offset: float = 50.0):
    z = rng.normal(size=(n, 16)).astype(np.float32)
    x = z @ rng.normal(size=(16, d)).astype(np.float32) + rng.normal(size=(n, d)).astype(
        np.float32
    )
    y = np.tanh(x[:, : d // 2] / 4).astype(np.float32) * 3 + rng.normal(
        size=(n, d - d // 2)
    ).astype(np.float32)
    y = np.concatenate([y, x[:, d // 2 :] * 0.5], axis=1)
    return (x + offset).astype(np.float32), (y - offset / 2).astype(np.float32)


def _quiet(f, *a):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        return f(*a)


# ------------------------------------------------------------ mixed precision
@pytest.mark.parametrize("name", ["cka", "hsic", "nbs"])
@pytest.mark.parametrize(("n", "d"), [(6000, 160), (120, 500)])  # feature and Gram paths
def test_float32_fast_path_within_1e6_of_float64(rng, name, n, d):
    x, y = _pair32(rng, n, d)
    m = repscope.measure(name)
    px = m.prepare(x)
    assert px.cache.get("low_precision") and px.data.dtype == np.float32  # no float64 copy
    fast = m(x, y)
    exact = m(x.astype(np.float64), y.astype(np.float64))
    assert abs(fast - exact) <= 1e-6 * max(1.0, abs(exact))
    t = m(torch.from_numpy(x), torch.from_numpy(y))
    assert abs(t - exact) <= 1e-6 * max(1.0, abs(exact))


def test_float32_fast_path_near_identity(rng):
    x, _ = _pair32(rng, 4000, 96)
    y = x + np.float32(1e-3) * rng.normal(size=x.shape).astype(np.float32)
    for name in ("cka", "nbs"):
        m = repscope.measure(name)
        exact = m(x.astype(np.float64), y.astype(np.float64))
        assert abs(m(x, y) - exact) <= 1e-6


def test_procrustes_float32_path_is_guarded(rng):
    x, y = _pair32(rng, 5000, 64)
    near = x + np.float32(1e-3) * rng.normal(size=x.shape).astype(np.float32)
    for name in ("procrustes", "procrustes_angular"):
        m = repscope.measure(name)
        assert m.prepare(x).data.dtype == np.float32 and not m.tolerates_mixed
        exact = m(x.astype(np.float64), y.astype(np.float64))
        assert exact > 0.2 and abs(m(x, y) - exact) <= 1e-6
        # near-identical inputs: the float32 value would be off by ~1e-5; float64 is redone
        exact_near = m(x.astype(np.float64), near.astype(np.float64))
        assert exact_near < 0.2
        assert m(x, near) == pytest.approx(exact_near, rel=1e-10, abs=1e-12)


def test_mixed_nuclear_norm_takes_the_eigenvalue_route_within_bounds(rng, monkeypatch):
    """A decaying cross spectrum (σ_min/σ_max ~ 1e-5): the 1e-10 bound would need the
    SVD; float32-GEMM products use the 1e-8 bound and stay within 1e-7 of float64."""
    import array_api_compat.numpy.linalg as compat_linalg

    from repscope.core.linalg import GRAM_SVD_RTOL, MIXED_SVD_RTOL, nuclear_norm

    n, d = 3000, 48
    z = rng.normal(size=(n, 4))
    x = (z @ rng.normal(size=(4, d)) + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
    y = (z @ rng.normal(size=(4, d)) + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    m = (x64 - x64.mean(0)).T @ (y64 - y64.mean(0))
    svds: list[tuple[int, ...]] = []
    original = compat_linalg.svdvals
    monkeypatch.setattr(compat_linalg, "svdvals", lambda a: svds.append(a.shape) or original(a))
    exact = np.linalg.svd(m, compute_uv=False).sum()
    assert nuclear_norm(m, GRAM_SVD_RTOL) == pytest.approx(exact, rel=1e-12)
    assert len(svds) == 1  # the strict bound fails here
    assert nuclear_norm(m, MIXED_SVD_RTOL) == pytest.approx(exact, rel=1e-12)
    assert len(svds) == 1  # the mixed bound holds: eigenvalues only
    for name in ("procrustes", "nbs"):
        measure = repscope.measure(name)
        assert abs(measure(x, y) - measure(x64, y64)) <= 1e-7
    assert len(svds) == 3  # the two float64 calls; the float32 ones took the eigenvalue route


@pytest.mark.parametrize("name", ["bures_distance", "mean_cca", "linear_regression"])
def test_sensitive_measures_keep_float64_for_float32_input(rng, name):
    x, y = _pair32(rng, 400, 20)
    m = repscope.measure(name)
    assert m.prepare(x).data.dtype == np.float64
    assert not m.tolerates_mixed
    assert _quiet(m, x, y) == pytest.approx(
        _quiet(m, x.astype(np.float64), y.astype(np.float64)), rel=1e-12, abs=1e-12
    )


def test_debiased_and_rbf_cka_on_float32_prepared_data_stay_exact(rng):
    x, y = _pair32(rng, 300, 12)
    for params in ({"debiased": True}, {"kernel": "rbf"}):
        m = repscope.measure("cka", **params)
        assert m(x, y) == pytest.approx(m(x.astype(float), y.astype(float)), rel=1e-12)


def test_mixed_products_are_blockwise_float64_sums(rng):
    a = rng.normal(size=(2 * MIXED_BLOCK + 17, 5)).astype(np.float32)
    b = rng.normal(size=(2 * MIXED_BLOCK + 17, 3)).astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(mixed_cross(a, b), a64.T @ b64, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(mixed_cross(a), a64.T @ a64, rtol=1e-5, atol=1e-3)
    assert mixed_cross(a).dtype == np.float64
    g = mixed_gram(a[:40], block=2)
    np.testing.assert_allclose(g, a64[:40] @ a64[:40].T, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------ path choice
def test_path_choice_follows_cost():
    assert choose_gram(100, 2000, 2000) and not choose_gram(10_000, 100, 100)
    cka, proc, cca = (repscope.measure(n) for n in ("cka", "procrustes", "mean_cca"))
    assert cka.use_gram(500, 1024, 1024) and not cka.use_gram(10_000, 1024, 1024)
    assert proc.use_gram(2000, 4096, 4096) and not proc.use_gram(10_000, 1024, 1024)
    assert not cca.use_gram(10_000, 1024, 1024)
    for m in (cka, proc, cca):
        feat, gram = m.path_costs(2000, 4096, 4096)
        assert gram < feat
        feat, gram = m.path_costs(10_000, 512, 512)
        assert feat < gram


@pytest.mark.parametrize(
    "name", ["cka", "nbs", "procrustes", "procrustes_angular", "bures_distance", "mean_cca"]
)
@pytest.mark.parametrize(("dx", "dy"), [(80, 60), (30, 90), (48, 100)])
def test_gram_and_feature_paths_agree(rng, name, dx, dy):
    n = 50
    x = rng.normal(size=(n, dx))
    y = x[:, : min(dx, dy)] @ rng.normal(size=(min(dx, dy), dy)) * 0.3 + rng.normal(size=(n, dy))
    feat, gram = repscope.measure(name), repscope.measure(name)
    feat.use_gram = lambda *a: False
    gram.use_gram = lambda *a: True
    assert _quiet(gram, x, y) == pytest.approx(_quiet(feat, x, y), rel=1e-9, abs=1e-9)


# ------------------------------------------------------- Gram-space fidelity
def test_deflate_ones_keeps_the_nonzero_spectrum(rng):
    x = rng.normal(size=(30, 50))
    xc = x - x.mean(0)
    k = xc @ xc.T
    kd = deflate_ones(k)
    assert kd.shape == (29, 29)
    np.testing.assert_allclose(np.linalg.eigvalsh(kd), np.linalg.eigvalsh(k)[1:], rtol=1e-10)
    assert cholesky_pd(kd) is not None and cholesky_pd(k) is None


def test_gram_fidelity_equals_nuclear_norm_and_falls_back(rng):
    n = 40
    x, y = rng.normal(size=(n, 70)), rng.normal(size=(n, 25))
    xc, yc = x - x.mean(0), y - y.mean(0)
    ref = np.linalg.svd(xc.T @ yc, compute_uv=False).sum()
    # Ky has rank 25 < n - 1: the Cholesky of the other Gram is used
    assert float(gram_fidelity(xc @ xc.T, yc @ yc.T)) == pytest.approx(ref, rel=1e-10)
    low = rng.normal(size=(n, 10))
    lc = low - low.mean(0)
    assert gram_fidelity(lc @ lc.T, yc @ yc.T) is None  # neither is positive definite
    t = gram_fidelity(torch.from_numpy(xc @ xc.T), torch.from_numpy(yc @ yc.T))
    assert float(t) == pytest.approx(ref, rel=1e-10)


def test_psd_sqrt_trace_ignores_rounding_level_eigenvalues(rng):
    a = rng.normal(size=(60, 5))
    m = a @ a.T  # rank 5: 55 eigenvalues at rounding level
    ref = np.sqrt(np.linalg.eigvalsh(a.T @ a)).sum()
    assert float(psd_sqrt_trace(m)) == pytest.approx(ref, rel=1e-12)


def test_procrustes_gram_route_at_n_below_d(rng):
    n, d = 120, 600
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=(d, d)) * 0.02 + rng.normal(size=(n, d))
    m = repscope.measure("procrustes")
    assert m.use_gram(n, d, d)
    xc, yc = x - x.mean(0), y - y.mean(0)
    fid = np.linalg.svd(xc.T @ yc, compute_uv=False).sum() / np.sqrt(
        (xc**2).sum() * (yc**2).sum()
    )
    assert m(x, y) == pytest.approx(np.sqrt(2 - 2 * fid), rel=1e-10)


# ------------------------------------------------------------ CCA Cholesky route
def test_cholesky_cca_equals_eigen_route_and_falls_back(rng):
    x = rng.normal(size=(500, 20))
    y = x[:, :8] @ rng.normal(size=(8, 15)) + rng.normal(size=(500, 15))
    mom = repscope.SecondMoments.from_arrays(x, y)
    fast = correlations_cholesky(mom)
    assert fast is not None
    np.testing.assert_allclose(np.sort(fast), np.sort(canonical_correlations(mom)), atol=1e-12)
    xs = np.concatenate([x, x[:, :3] @ rng.normal(size=(3, 2))], axis=1)  # collinear columns
    mom_s = repscope.SecondMoments.from_arrays(xs, y)
    assert correlations_cholesky(mom_s) is None
    m = repscope.measure("mean_cca")
    assert m(xs, y) == pytest.approx(float(np.mean(canonical_correlations(mom_s))), rel=1e-12)


# ------------------------------------------------------------------- RSA
@pytest.mark.parametrize("rdm", ["correlation", "cosine"])
@pytest.mark.parametrize("compare", ["spearman", "pearson", "cosine"])
def test_rsa_fast_path_matches_scipy(rng, rdm, compare):
    n = FAST_MIN_N + 44
    x = rng.normal(size=(n, 16)) + 1.0
    y = np.tanh(x @ rng.normal(size=(16, 24))) + rng.normal(size=(n, 24))
    a, b = pdist(x, rdm), pdist(y, rdm)
    ref = {
        "spearman": scipy.stats.spearmanr(a, b).statistic,
        "pearson": scipy.stats.pearsonr(a, b).statistic,
        "cosine": a @ b / np.linalg.norm(a) / np.linalg.norm(b),
    }[compare]
    m = repscope.measure("rsa", rdm=rdm, compare=compare)
    # Spearman ranks the float32 rounding of the RDM: ties within ~1e-7 relative
    assert m(x, y) == pytest.approx(ref, abs=1e-7 if compare == "spearman" else 1e-10)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    assert m.prepare(x32).cache["rdm"].dtype == np.float32
    assert abs(m(x32, y32) - m(x32.astype(float), y32.astype(float))) <= 1e-6


def test_rsa_fast_ranks_handle_ties(rng):
    n = FAST_MIN_N + 10
    x = rng.integers(1, 4, size=(n, 3)).astype(np.float32)  # many tied cosines
    y = rng.integers(1, 4, size=(n, 4)).astype(np.float32)
    x[5] = x[9]  # and a duplicate sample
    m = repscope.measure("rsa", rdm="cosine")
    # exact ties: pdist's float64 rounding splits equal cosines by ~1e-16, so the
    # reference ranks values rounded to 12 decimals (equal cosines tie again)
    a, b = (np.round(pdist(v.astype(float), "cosine"), 12) for v in (x, y))
    assert np.unique(a).size < a.size / 10  # heavily tied
    ref = scipy.stats.spearmanr(a, b).statistic
    assert m(x, y) == pytest.approx(ref, abs=1e-12)
    assert m(x.astype(float), y.astype(float)) == pytest.approx(ref, abs=1e-12)


def test_centred_ranks_equal_rankdata_in_groups(rng):
    v = rng.integers(0, 40, size=20_000).astype(np.float32) / 7
    v[::13] = -0.0
    v[::17] = 0.0
    ref = 2 * scipy.stats.rankdata(v) - (v.size + 1)
    for group in (1000, 5000, 10**9):  # many groups, a few, one
        np.testing.assert_array_equal(centred_ranks(v, group=group), ref)
    w = rng.normal(size=3000)  # float64: scipy's exact ranks
    np.testing.assert_array_equal(centred_ranks(w), 2 * scipy.stats.rankdata(w) - 3001)


def test_rdm_gemm_blocks_are_bounded_and_exact(rng):
    x = rng.normal(size=(97, 12)) + 2.0
    ref = pdist(x, "correlation")
    for block_bytes in (1, 97 * 8 * 5, 10**9):  # one row, five rows, all rows per block
        np.testing.assert_allclose(
            rdm_gemm(x, "correlation", block_bytes=block_bytes), ref, atol=1e-13
        )
    assert rdm_gemm(x.astype(np.float32), "cosine").dtype == np.float32
    big_m_dtype = rdm_gemm(x, "cosine", dtype=np.float32).dtype
    assert big_m_dtype == np.float32
