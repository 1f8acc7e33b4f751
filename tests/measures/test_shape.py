"""shape_metric: partial-whitening generalized shape metric (Williams et al. 2021)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import scipy.linalg
import torch

import repscope


def _pair(rng: np.random.Generator, n: int = 50, dx: int = 6, dy: int = 4):
    z = rng.normal(size=(n, 3)) * np.array([3.0, 1.0, 0.3])
    x = z @ rng.normal(size=(3, dx)) + 0.3 * rng.normal(size=(n, dx)) + 2.0
    y = np.tanh(z @ rng.normal(size=(3, dy))) + 0.3 * rng.normal(size=(n, dy))
    return x, y


def _centre(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=0)


def _reference(x: np.ndarray, y: np.ndarray, alpha: float) -> float:
    """Explicit partial whitening with scipy's matrix square root, then the angle."""

    def phi(a: np.ndarray) -> np.ndarray:
        ac = _centre(a)
        c = ac.T @ ac / len(a)
        reg = (1 - alpha) * c + alpha * np.trace(c) / c.shape[0] * np.eye(c.shape[0])
        return ac @ np.real(scipy.linalg.inv(scipy.linalg.sqrtm(reg)))

    px, py = phi(x), phi(y)
    nuc = np.linalg.svd(px.T @ py, compute_uv=False).sum()
    return float(np.arccos(min(nuc / (np.linalg.norm(px) * np.linalg.norm(py)), 1.0)))


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.6, 1.0])
def test_matches_explicit_partial_whitening(rng, alpha) -> None:
    for dx, dy in ((6, 4), (4, 6)):
        x, y = _pair(rng, dx=dx, dy=dy)
        v = repscope.measure("shape_metric", alpha=alpha)(x, y)
        assert v == pytest.approx(_reference(x, y, alpha), abs=1e-8)


def test_endpoints_are_procrustes_angular_and_whitened_cca(rng) -> None:
    x, y = _pair(rng)
    one = repscope.measure("shape_metric", alpha=1.0)(x, y)
    assert one == pytest.approx(repscope.measure("procrustes_angular")(x, y), abs=1e-10)
    rho = np.cos(scipy.linalg.subspace_angles(_centre(x), _centre(y)))
    zero = repscope.measure("shape_metric", alpha=0.0)(x, y)
    assert zero == pytest.approx(np.arccos(rho.sum() / np.sqrt(6 * 4)), abs=1e-8)


def test_scale_free_for_every_alpha(rng) -> None:
    x, y = _pair(rng)
    for alpha in (0.0, 0.3, 1.0):
        m = repscope.measure("shape_metric", alpha=alpha)
        assert m(1e3 * x, 0.01 * y) == pytest.approx(m(x, y), abs=1e-10)


def test_invertible_linear_invariance_only_at_alpha_zero(rng) -> None:
    x, y = _pair(rng)
    a = rng.normal(size=(4, 4)) + 2 * np.eye(4)
    zero = repscope.measure("shape_metric", alpha=0.0)
    half = repscope.measure("shape_metric", alpha=0.5)
    assert zero(x, y @ a) == pytest.approx(zero(x, y), abs=1e-9)
    assert abs(half(x, y @ a) - half(x, y)) > 1e-4
    assert repscope.Invariance.AFFINE in zero.invariances
    assert repscope.Invariance.INVERTIBLE_LINEAR not in half.invariances


def test_triangle_inequality_across_widths(rng) -> None:
    for alpha in (0.0, 0.5):
        m = repscope.measure("shape_metric", alpha=alpha)
        for _ in range(5):
            a, b = _pair(rng, dx=3, dy=6)
            c = _pair(rng, dx=4, dy=4)[1]
            assert m(a, c) <= m(a, b) + m(b, c) + 1e-10


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("shape", [(10, 25, 18), (50, 6, 4)])
def test_gram_path_equals_feature_path(rng, alpha, shape) -> None:
    n, dx, dy = shape
    x, y = _pair(rng, n=n, dx=dx, dy=dy)
    feat = repscope.measure("shape_metric", alpha=alpha)
    gram = repscope.measure("shape_metric", alpha=alpha)
    feat.use_gram = lambda *a: False
    gram.use_gram = lambda *a: True
    degenerate = alpha == 0 and n < dx
    with pytest.warns(repscope.DegeneracyWarning) if degenerate else nullcontext():
        g, f = gram(x, y), feat(x, y)
    # alpha=0 with d > n: the distance is ~0, where arccos amplifies rounding
    assert g == pytest.approx(f, abs=1e-6 if degenerate else 1e-8)


def test_rejects_alpha_outside_unit_interval() -> None:
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(repscope.InvalidParameterError):
            repscope.measure("shape_metric", alpha=bad)


def test_float32_torch_and_moments(rng) -> None:
    x, y = _pair(rng, n=300, dx=20, dy=15)
    m = repscope.measure("shape_metric", alpha=0.5)
    ref = m(x, y)
    assert m(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(ref, rel=1e-5)
    out = m.compute(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor) and float(out) == pytest.approx(ref, abs=1e-10)
    mom = repscope.SecondMoments.from_arrays(x[:100], y[:100]).merge(
        repscope.SecondMoments.from_arrays(x[100:], y[100:])
    )
    assert float(m.from_moments(mom)) == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_gradcheck(alpha) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(12, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(12, 2, dtype=torch.float64, generator=g, requires_grad=True)
    m = repscope.measure("shape_metric", alpha=alpha)
    m.use_gram = lambda *a: False
    assert torch.autograd.gradcheck(lambda a, b: m.compute(a, b), (x, y))
