"""CCA family: mean_cca, mean_sq_cca, svcca, pwcca, ridge_cca.

Reference values come from independent computations: principal angles
(scipy.linalg.subspace_angles), scikit-learn's iterative CCA, numpy PCA, QR
bases of the centred data and explicit matrix square roots.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.cross_decomposition import CCA

import repscope
from repscope.measures.cca import (
    canonical_correlations,
    canonical_correlations_gram,
    pca_components_for_variance,
)
from repscope.measures.cca_variants import SVCCA

CCA_NAMES = ["mean_cca", "mean_sq_cca", "svcca", "pwcca", "ridge_cca"]


def _pair(rng: np.random.Generator, n: int = 60, dx: int = 6, dy: int = 4):
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, dx)) + 0.5 * rng.normal(size=(n, dx)) + 2.0
    y = np.tanh(z @ rng.normal(size=(3, dy))) + 0.5 * rng.normal(size=(n, dy)) - 1.0
    return x, y


def _centre(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=0)


def _cos_angles(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sort(np.cos(scipy.linalg.subspace_angles(_centre(x), _centre(y))))[::-1]


def _quiet(m, x, y) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", repscope.DegeneracyWarning)
        return m(x, y)


# --------------------------------------------------------- correlations
def test_canonical_correlations_are_cosines_of_principal_angles(rng) -> None:
    x, y = _pair(rng)
    ref = _cos_angles(x, y)
    mom = repscope.SecondMoments.from_arrays(x, y)
    np.testing.assert_allclose(canonical_correlations(mom), ref, atol=1e-10)
    xc, yc = _centre(x), _centre(y)
    gram = canonical_correlations_gram(xc @ xc.T, yc @ yc.T)
    np.testing.assert_allclose(np.sort(gram)[::-1], ref, atol=1e-10)


def test_first_canonical_correlation_matches_sklearn(rng) -> None:
    x, y = _pair(rng, n=200)
    cca = CCA(n_components=1, max_iter=5000, tol=1e-12).fit(x, y)
    u, v = cca.transform(x, y)
    ref = abs(np.corrcoef(u[:, 0], v[:, 0])[0, 1])
    rho = canonical_correlations(repscope.SecondMoments.from_arrays(x, y))
    assert rho[0] == pytest.approx(ref, abs=1e-6)


def test_mean_and_mean_squared_cca_match_principal_angles(rng) -> None:
    x, y = _pair(rng)
    cos = _cos_angles(x, y)
    assert repscope.measure("mean_cca")(x, y) == pytest.approx(cos.mean(), abs=1e-10)
    assert repscope.measure("mean_sq_cca")(x, y) == pytest.approx((cos**2).mean(), abs=1e-10)


def test_mean_cca_with_d_at_least_n_is_one_and_warns(rng) -> None:
    x, y = rng.normal(size=(10, 12)), rng.normal(size=(10, 15))
    for name in ("mean_cca", "mean_sq_cca", "pwcca"):
        with pytest.warns(repscope.DegeneracyWarning, match="trivially"):
            v = repscope.measure(name)(x, y)
        assert v == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("name", CCA_NAMES)
@pytest.mark.parametrize("shape", [(12, 20, 16), (50, 6, 4)])
def test_gram_path_equals_feature_path(rng, name: str, shape) -> None:
    n, dx, dy = shape
    x, y = _pair(rng, n=n, dx=dx, dy=dy)
    params = {"n_components": 3} if name == "svcca" else {}
    feat, gram = repscope.measure(name, **params), repscope.measure(name, **params)
    feat.use_gram = lambda *a: False
    gram.use_gram = lambda *a: True
    for a, b in ((x, y), (y, x)):
        assert _quiet(gram, a, b) == pytest.approx(_quiet(feat, a, b), abs=1e-9)


# ------------------------------------------------------------------ svcca
def _pca_reduce(x: np.ndarray, k: int) -> np.ndarray:
    xc = _centre(x)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:k].T


def _raw_like_activations(rng: np.random.Generator, n: int = 400, d: int = 60) -> np.ndarray:
    spectrum = 400.0 * np.exp(-np.arange(d) / 7.0)  # slow decay, total variance in the thousands
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return rng.normal(size=(n, d)) * np.sqrt(spectrum) @ q.T + 5.0


def test_svcca_keeps_the_number_of_components_the_threshold_implies(rng) -> None:
    x = _raw_like_activations(rng)
    ev = np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1]
    assert ev.sum() > 1000  # raw scale: the known bug keeps a single component here
    k_ref = int(np.searchsorted(np.cumsum(ev) / ev.sum(), 0.99) + 1)
    assert 20 <= k_ref <= 40
    mom = repscope.SecondMoments.from_arrays(x, x)
    w = np.linalg.eigvalsh(mom.sxx)
    assert pca_components_for_variance(w, 0.99) == k_ref
    assert SVCCA().n_kept(w) == k_ref
    assert SVCCA(var_fraction=0.5).n_kept(w) < k_ref


def test_svcca_equals_mean_cca_of_pca_reduced_data_and_ignores_scale(rng) -> None:
    x = _raw_like_activations(rng, n=300, d=40)
    y = np.tanh(x[:, :25] / 10.0) @ rng.normal(size=(25, 30)) + rng.normal(size=(300, 30))
    def k_of(a):
        ev = np.linalg.eigvalsh(np.cov(a, rowvar=False))[::-1]
        return int(np.searchsorted(np.cumsum(ev) / ev.sum(), 0.99) + 1)

    ref = _cos_angles(_pca_reduce(x, k_of(x)), _pca_reduce(y, k_of(y))).mean()
    m = repscope.measure("svcca")
    assert m(x, y) == pytest.approx(ref, abs=1e-9)
    assert m(x * 1e-3, y * 250.0) == pytest.approx(ref, abs=1e-9)


def test_svcca_n_components_and_full_variance(rng) -> None:
    x, y = _pair(rng, n=80, dx=8, dy=7)
    ref = _cos_angles(_pca_reduce(x, 3), _pca_reduce(y, 3)).mean()
    assert repscope.measure("svcca", n_components=3)(x, y) == pytest.approx(ref, abs=1e-10)
    full = repscope.measure("svcca", var_fraction=1.0)(x, y)
    assert full == pytest.approx(repscope.measure("mean_cca")(x, y), abs=1e-10)


def test_svcca_warns_when_kept_dimension_reaches_n(rng) -> None:
    x, y = rng.normal(size=(10, 30)), rng.normal(size=(10, 30))
    with pytest.warns(repscope.DegeneracyWarning, match="principal components"):
        repscope.measure("svcca")(x, y)


@pytest.mark.parametrize("params", [{"var_fraction": 0.0}, {"var_fraction": 1.5},
                                    {"n_components": 0}, {"n_components": 2.5}])
def test_svcca_rejects_bad_parameters(params) -> None:
    with pytest.raises(repscope.InvalidParameterError):
        repscope.measure("svcca", **params)


# ------------------------------------------------------------------ pwcca
def _pwcca_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Data-space PWCCA: orthonormal bases by QR, variates h = Qx u, weights Σ_j |<h, x_j>|."""
    xc, yc = _centre(x), _centre(y)
    qx, _ = np.linalg.qr(xc)
    qy, _ = np.linalg.qr(yc)
    u, rho, _ = np.linalg.svd(qx.T @ qy, full_matrices=False)
    h = qx @ u
    alpha = np.abs(h.T @ xc).sum(axis=1)
    return float((alpha * rho).sum() / alpha.sum())


@pytest.mark.parametrize(("dx", "dy"), [(7, 3), (3, 7), (5, 5)])
def test_pwcca_matches_data_space_formula_for_both_width_orders(rng, dx, dy) -> None:
    x, y = _pair(rng, n=70, dx=dx, dy=dy)
    m = repscope.measure("pwcca")
    assert m(x, y) == pytest.approx(_pwcca_reference(x, y), abs=1e-10)
    assert m(y, x) == pytest.approx(_pwcca_reference(y, x), abs=1e-10)


def test_pwcca_weights_depend_on_x_basis_only(rng) -> None:
    x, y = _pair(rng, n=70, dx=6, dy=4)
    m = repscope.measure("pwcca")
    a = rng.normal(size=(4, 4))
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert m(x, y @ a + 3.0) == pytest.approx(m(x, y), abs=1e-10)  # Y side: affine
    assert abs(m(x @ q, y) - m(x, y)) > 1e-4  # X side: rotating neurons changes weights
    assert m(x, y) != pytest.approx(m(y, x), abs=1e-4)


# -------------------------------------------------------------- ridge cca
def _ridge_reference(x: np.ndarray, y: np.ndarray, reg: float) -> float:
    xc, yc = _centre(x), _centre(y)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc

    def shrink(s):
        return (1 - reg) * s + reg * np.trace(s) / s.shape[0] * np.eye(s.shape[0])

    rx = np.real(scipy.linalg.inv(scipy.linalg.sqrtm(shrink(sxx))))
    ry = np.real(scipy.linalg.inv(scipy.linalg.sqrtm(shrink(syy))))
    u, _, vt = np.linalg.svd(rx @ sxy @ ry)
    m = min(x.shape[1], y.shape[1])
    a, b = rx @ u[:, :m], ry @ vt[:m].T
    corr = [abs(np.corrcoef(xc @ a[:, i], yc @ b[:, i])[0, 1]) for i in range(m)]
    return float(np.mean(corr))


@pytest.mark.parametrize("reg", [0.0, 0.3, 1.0])
def test_ridge_cca_matches_explicit_matrix_square_roots(rng, reg) -> None:
    x, y = _pair(rng, n=60, dx=6, dy=4)
    v = repscope.measure("ridge_cca", reg=reg)(x, y)
    assert v == pytest.approx(_ridge_reference(x, y, reg), abs=1e-9)


def test_ridge_cca_reg_zero_is_mean_cca_and_identity_is_one(rng) -> None:
    x, y = _pair(rng)
    assert repscope.measure("ridge_cca", reg=0.0)(x, y) == pytest.approx(
        repscope.measure("mean_cca")(x, y), abs=1e-12
    )
    for reg in (0.1, 0.7, 1.0):
        assert repscope.measure("ridge_cca", reg=reg)(x, x) == pytest.approx(1.0, abs=1e-10)


def test_ridge_cca_is_informative_when_d_exceeds_n(rng) -> None:
    x, y = rng.normal(size=(15, 30)), rng.normal(size=(15, 25))
    related = x[:, :25] + 0.3 * rng.normal(size=(15, 25))
    m = repscope.measure("ridge_cca", reg=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", repscope.DegeneracyWarning)
        unrelated, close = m(x, y), m(x, related)
    assert unrelated < 0.99 and close > unrelated + 0.01
    with pytest.warns(repscope.DegeneracyWarning):
        assert repscope.measure("ridge_cca", reg=0.0)(x, y) == pytest.approx(1.0, abs=1e-8)


def test_ridge_cca_invariances_follow_reg() -> None:
    assert repscope.Invariance.AFFINE in repscope.measure("ridge_cca", reg=0.0).invariances
    inv = repscope.measure("ridge_cca", reg=0.2).invariances
    assert repscope.Invariance.ORTHOGONAL in inv
    assert repscope.Invariance.INVERTIBLE_LINEAR not in inv
    with pytest.raises(repscope.InvalidParameterError):
        repscope.measure("ridge_cca", reg=1.2)


# ------------------------------------------------------ backends, moments
@pytest.mark.parametrize("name", CCA_NAMES)
def test_float32_input_close_to_float64(rng, name) -> None:
    x, y = _pair(rng, n=300, dx=20, dy=15)
    m = repscope.measure(name)
    a = m(x, y)
    b = m(x.astype(np.float32), y.astype(np.float32))
    assert b == pytest.approx(a, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("name", CCA_NAMES)
def test_torch_inputs_stay_torch(rng, name) -> None:
    x, y = _pair(rng)
    out = repscope.measure(name).compute(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert float(out) == pytest.approx(repscope.measure(name)(x, y), abs=1e-10)


@pytest.mark.parametrize("name", ["mean_cca", "mean_sq_cca", "pwcca", "ridge_cca", "svcca"])
def test_gradcheck(name) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y = (x.detach() @ torch.randn(3, 2, dtype=torch.float64, generator=g)
         + 0.5 * torch.randn(12, 2, dtype=torch.float64, generator=g)).requires_grad_(True)
    params = {"n_components": 2} if name == "svcca" else {}
    m = repscope.measure(name, **params)
    m.use_gram = lambda *a: False
    assert torch.autograd.gradcheck(lambda a, b: m.compute(a, b), (x, y))


@pytest.mark.parametrize(
    ("name", "params"),
    [("mean_cca", {}), ("mean_sq_cca", {}), ("svcca", {}), ("svcca", {"n_components": 2}),
     ("pwcca", {}), ("ridge_cca", {}), ("ridge_cca", {"reg": 1.0})],
)
def test_merged_moments_equal_full_data(rng, name, params) -> None:
    x, y = _pair(rng, n=50, dx=5, dy=4)
    half = repscope.SecondMoments.from_arrays(x[:20], y[:20])
    rest = repscope.SecondMoments.from_arrays(x[20:], y[20:])
    m = repscope.measure(name, **params)
    assert float(m.from_moments(half.merge(rest))) == pytest.approx(m(x, y), abs=1e-10)
