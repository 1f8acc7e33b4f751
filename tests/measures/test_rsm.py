"""RSM-based measures against independent formulas: eigenspace overlap, GULP, RSM norm
difference, Riemannian distance (distance correlation: ``test_dcor.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import repscope
from repscope.core.errors import (
    DegeneracyWarning,
    DegenerateInputError,
    InvalidParameterError,
)
from repscope.measures.rsm import gram_difference_norm


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def _pair(rng: np.random.Generator, n: int, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, dx)) + 0.4 * rng.normal(size=(n, dx)) + 1.5
    y = np.tanh(z @ rng.normal(size=(3, dy))) + 0.4 * rng.normal(size=(n, dy))
    return x, y


def _gradcheck(name: str, n: int = 7, dx: int = 3, dy: int = 2, **params) -> bool:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, dx, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(n, dy, dtype=torch.float64, generator=g, requires_grad=True)
    m = repscope.measure(name, **params)
    return torch.autograd.gradcheck(lambda a, b: m.compute(a, b), (x, y))


# ===================================================== eigenspace overlap
def eos_ref(x: np.ndarray, y: np.ndarray, center: bool) -> float:
    """Σ cos²(principal angles) / max rank, with scipy's subspace angles."""
    if center:
        x, y = x - x.mean(0), y - y.mean(0)
    angles = scipy.linalg.subspace_angles(x, y)
    rx, ry = np.linalg.matrix_rank(x), np.linalg.matrix_rank(y)
    return float(np.sum(np.cos(angles) ** 2) / max(rx, ry))


def test_eos_identical_spans_give_one(rng):
    x = rng.normal(size=(20, 3))
    a = rng.normal(size=(3, 3))  # invertible with probability 1
    m = repscope.measure("eigenspace_overlap")
    assert m(x, x @ a) == pytest.approx(1.0, abs=1e-12)
    wide = np.hstack([x, x @ a])  # rank 3, width 6: normalised by rank, not width
    assert m(x, wide) == pytest.approx(1.0, abs=1e-12)


def test_eos_orthogonal_spans_give_zero(rng):
    x = np.zeros((10, 2))
    y = np.zeros((10, 3))
    x[:4] = rng.normal(size=(4, 2))  # supported on samples 0-3
    y[4:] = rng.normal(size=(6, 3))  # supported on samples 4-9
    assert repscope.measure("eigenspace_overlap")(x, y) == pytest.approx(0.0, abs=1e-14)


def test_eos_hand_built_partial_overlap():
    e = np.eye(6)
    x = e[:, [0, 1]] @ np.array([[2.0, 1.0], [0.0, 3.0]])  # span{e0, e1}
    y = e[:, [0, 2, 3]] * np.array([1.0, 5.0, 0.5])  # span{e0, e2, e3}
    # ‖UxᵀUy‖² = 1 (the shared direction e0); max rank = 3
    assert repscope.measure("eigenspace_overlap")(x, y) == pytest.approx(1 / 3, rel=1e-12)


@pytest.mark.parametrize("center", [False, True])
def test_eos_matches_subspace_angles(rng, center):
    x, y = _pair(rng, 30, 5, 4)
    m = repscope.measure("eigenspace_overlap", center=center)
    assert m(x, y) == pytest.approx(eos_ref(x, y, center), rel=1e-10)


def test_eos_translation_matters_only_uncentred(rng):
    x, y = _pair(rng, 30, 4, 4)
    shifted = y + rng.normal(size=4) * 5
    assert abs(repscope.measure("eigenspace_overlap")(x, y)
               - repscope.measure("eigenspace_overlap")(x, shifted)) > 1e-3
    m = repscope.measure("eigenspace_overlap", center=True)
    assert m(x, y) == pytest.approx(m(x, shifted), rel=1e-10)
    assert repscope.Invariance.TRANSLATION in m.invariances
    assert repscope.Invariance.TRANSLATION not in repscope.measure("eigenspace_overlap").invariances


def test_eos_uses_thin_bases(rng):
    x = rng.normal(size=(3000, 3))
    p = repscope.measure("eigenspace_overlap").prepare(x)
    assert tuple(p.cache["span_basis"].shape) == (3000, 3)  # never an n x n U


def test_eos_full_span_warns(rng):
    x, y = rng.normal(size=(5, 8)), rng.normal(size=(5, 2))
    with pytest.warns(DegeneracyWarning, match="whole sample space"):
        v = repscope.measure("eigenspace_overlap")(x, y)
    assert v == pytest.approx(2 / 5, rel=1e-12)


def test_eos_gradcheck():
    assert _gradcheck("eigenspace_overlap", n=8)


# ==================================================================== GULP
def _normalise(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(0)
    return xc / np.sqrt(np.sum(xc**2) / len(x))


def hat(x: np.ndarray, lam: float) -> np.ndarray:
    """Ridge hat matrix X̃ (X̃ᵀX̃/n + λI)⁻¹ X̃ᵀ / n of the normalised representation."""
    xn, n = _normalise(x), len(x)
    return xn @ np.linalg.solve(xn.T @ xn / n + lam * np.eye(x.shape[1]), xn.T) / n


def gulp_cov_formula(x: np.ndarray, y: np.ndarray, lam: float) -> float:
    """Squared GULP from covariances (Boix-Adserà et al. 2022)."""
    xn, yn, n = _normalise(x), _normalise(y), len(x)
    sx, sy, sxy = xn.T @ xn / n, yn.T @ yn / n, xn.T @ yn / n
    ix = np.linalg.inv(sx + lam * np.eye(len(sx)))
    iy = np.linalg.inv(sy + lam * np.eye(len(sy)))
    return float(
        np.trace(sx @ ix @ sx @ ix) + np.trace(sy @ iy @ sy @ iy)
        - 2 * np.trace(ix @ sxy @ iy @ sxy.T)
    )


@pytest.mark.parametrize("lam", [1e-3, 0.01, 1.0])
@pytest.mark.parametrize("shape", [(40, 5, 3), (12, 7, 20)])  # feature / mixed Gram path
def test_gulp_hand_computation(rng, lam, shape):
    x, y = _pair(rng, *shape)
    v = repscope.measure("gulp", lam=lam)(x, y)
    assert v == pytest.approx(np.linalg.norm(hat(x, lam) - hat(y, lam)), rel=1e-9)
    assert v**2 == pytest.approx(gulp_cov_formula(x, y, lam), rel=1e-8)


def test_gulp_symmetric_and_zero_for_similar_shapes(rng):
    x, y = _pair(rng, 30, 4, 6)
    m = repscope.measure("gulp")
    assert m(x, y) == pytest.approx(m(y, x), rel=1e-12)
    assert m(x, 7.0 * x @ _orthogonal(4, rng) + 3.0) == pytest.approx(0.0, abs=1e-10)


def test_gulp_large_lambda_limit(rng):
    x, y = _pair(rng, 25, 4, 3)
    lam = 1e6
    xn, yn = _normalise(x), _normalise(y)
    limit = np.linalg.norm(xn @ xn.T - yn @ yn.T) / len(x)
    assert lam * repscope.measure("gulp", lam=lam)(x, y) == pytest.approx(limit, rel=1e-4)


def test_gulp_lambda_zero_is_cca_like(rng):
    x, y = _pair(rng, 30, 4, 3)
    xc, yc = x - x.mean(0), y - y.mean(0)
    rho2 = np.cos(scipy.linalg.subspace_angles(xc, yc)) ** 2  # squared canonical correlations
    v = repscope.measure("gulp", lam=0.0)(x, y)
    assert v**2 == pytest.approx(4 + 3 - 2 * rho2.sum(), rel=1e-9)
    a = rng.normal(size=(4, 4))
    assert repscope.measure("gulp", lam=0.0)(x @ a + 1.0, y) == pytest.approx(v, rel=1e-9)


def test_gulp_decreases_with_lambda_towards_large_values(rng):
    x, y = _pair(rng, 30, 4, 3)
    values = [repscope.measure("gulp", lam=lam)(x, y) for lam in (1e-2, 1e-1, 1.0, 10.0)]
    assert all(a > b for a, b in zip(values, values[1:]))


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=20, deadline=None)
def test_gulp_triangle_inequality(seed):
    rng = np.random.default_rng(seed)
    x, y, z = (rng.normal(size=(12, k)) for k in (3, 4, 2))
    m = repscope.measure("gulp", lam=0.05)
    assert m(x, z) <= m(x, y) + m(y, z) + 1e-12


def test_gulp_lambda_zero_full_span_warns(rng):
    x, y = rng.normal(size=(6, 8)), rng.normal(size=(6, 2))
    with pytest.warns(DegeneracyWarning, match="lam > 0"):
        repscope.measure("gulp", lam=0.0)(x, y)


def test_gulp_invalid_lambda():
    with pytest.raises(InvalidParameterError):
        repscope.measure("gulp", lam=-1.0)


def test_gulp_gradcheck():
    assert _gradcheck("gulp", lam=0.1)


# ===================================================== RSM norm difference
def rsm_diff_ref(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(0), y - y.mean(0)
    return float(np.linalg.norm(xc @ xc.T - yc @ yc.T))


@pytest.mark.parametrize("shape", [(40, 3, 5), (6, 5, 4)])  # QR path / direct n x n path
def test_rsm_norm_difference_matches_direct(rng, shape):
    x, y = _pair(rng, *shape)
    m = repscope.measure("rsm_norm_difference")
    assert m(x, y) == pytest.approx(rsm_diff_ref(x, y), rel=1e-10)
    assert m(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(m(x, y), rel=1e-10)


def test_rsm_norm_difference_exact_near_zero(rng):
    x = rng.normal(size=(200, 10)) * 1e3 + 1e4
    m = repscope.measure("rsm_norm_difference")
    ref_scale = rsm_diff_ref(x, np.zeros_like(x))  # ‖X̃X̃ᵀ‖_F ~ 1e8
    # the expanded form would leave ~sqrt(eps) * scale ~ 1 of rounding noise
    assert m(x, x @ _orthogonal(10, rng)) < 1e-9 * ref_scale


def test_rsm_norm_difference_scale_dependence(rng):
    x, y = _pair(rng, 30, 3, 4)
    m = repscope.measure("rsm_norm_difference")
    assert m(2.0 * x, 2.0 * y) == pytest.approx(4.0 * m(x, y), rel=1e-12)
    assert m(x, y + 5.0) == pytest.approx(m(x, y), rel=1e-12)


def test_gram_difference_norm_paths_agree(rng):
    bx, by = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    direct = np.linalg.norm(bx @ bx.T - by @ by.T)
    assert float(gram_difference_norm(bx, by)) == pytest.approx(direct, rel=1e-12)  # QR
    bx, by = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    direct = np.linalg.norm(bx @ bx.T - by @ by.T)
    assert float(gram_difference_norm(bx, by)) == pytest.approx(direct, rel=1e-12)  # n x n


def test_rsm_norm_difference_gradcheck():
    assert _gradcheck("rsm_norm_difference", n=8)  # QR path (n > dx + dy)
    assert _gradcheck("rsm_norm_difference", n=4)  # n x n path


# ==================================================== Riemannian distance
def riemann_ref(x: np.ndarray, y: np.ndarray, ridge: float = 0.0) -> float:
    def gram(z: np.ndarray) -> np.ndarray:
        k = z @ z.T / z.shape[1]
        return k + ridge * np.trace(k) / len(z) * np.eye(len(z))

    lam = scipy.linalg.eigvals(np.linalg.inv(gram(x)) @ gram(y))
    return float(np.sqrt(np.sum(np.log(lam.real) ** 2)))


def test_riemannian_matches_eigvals_formula_unregularised(rng):
    x, y = rng.normal(size=(6, 9)), rng.normal(size=(6, 12))  # d >= n: SPD Grams
    v = repscope.measure("riemannian_distance", ridge=0.0)(x, y)
    assert v == pytest.approx(riemann_ref(x, y), rel=1e-9)


@pytest.mark.parametrize("ridge", [1e-3, 0.1])
def test_riemannian_matches_eigvals_formula_with_ridge(rng, ridge):
    x, y = _pair(rng, 10, 3, 4)  # d < n: singular Grams, regularised
    v = repscope.measure("riemannian_distance", ridge=ridge)(x, y)
    assert v == pytest.approx(riemann_ref(x, y, ridge), rel=1e-8)


def test_riemannian_unregularised_needs_spd(rng):
    x, y = _pair(rng, 10, 3, 4)
    with pytest.raises(DegenerateInputError, match="ridge > 0"):
        repscope.measure("riemannian_distance", ridge=0.0)(x, y)


def test_riemannian_congruence_invariance_and_scaling(rng):
    n = 5
    x, y = rng.normal(size=(n, 7)), rng.normal(size=(n, 6))
    m = repscope.measure("riemannian_distance", ridge=0.0)
    a = rng.normal(size=(n, n))  # acts on samples: K -> A K Aᵀ for both
    assert m(a @ x, a @ y) == pytest.approx(m(x, y), rel=1e-7)
    assert m(x, y) == pytest.approx(m(y, x), rel=1e-9)
    # d(K, c²K) = sqrt(n) |log c²|, with or without the (relative) ridge
    for ridge in (0.0, 0.01):
        mm = repscope.measure("riemannian_distance", ridge=ridge)
        assert mm(x, 3.0 * x) == pytest.approx(np.sqrt(n) * np.log(9.0), rel=1e-9)


def test_riemannian_orthogonal_invariance_and_identity(rng):
    x = rng.normal(size=(8, 5))
    m = repscope.measure("riemannian_distance")
    assert m(x, x) == pytest.approx(0.0, abs=1e-9)
    assert m(x, x @ _orthogonal(5, rng)) == pytest.approx(0.0, abs=1e-6)


def test_riemannian_invalid_ridge():
    with pytest.raises(InvalidParameterError):
        repscope.measure("riemannian_distance", ridge=-0.1)


def test_riemannian_gradcheck():
    assert _gradcheck("riemannian_distance", n=5, dx=6, dy=7, ridge=0.0)
    assert _gradcheck("riemannian_distance", n=6, ridge=0.01)
