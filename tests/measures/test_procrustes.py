"""Procrustes family: procrustes, procrustes_angular, nbs, bures_distance.

References: scipy.linalg.orthogonal_procrustes on zero-padded data and the
Gram-matrix fidelity tr((Kx^{1/2} Ky Kx^{1/2})^{1/2}) computed by eigh.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes

import repscope

NAMES = ["procrustes", "procrustes_angular", "nbs", "bures_distance"]


def _pair(rng: np.random.Generator, n: int = 40, dx: int = 6, dy: int = 4):
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, dx)) + 0.4 * rng.normal(size=(n, dx)) + 1.5
    y = np.tanh(z @ rng.normal(size=(3, dy))) * 3 + 0.4 * rng.normal(size=(n, dy))
    return x, y


def _centre(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=0)


def _pad(a: np.ndarray, d: int) -> np.ndarray:
    return np.hstack([a, np.zeros((a.shape[0], d - a.shape[1]))])


def _procrustes_residual(x: np.ndarray, y: np.ndarray) -> float:
    """min_Q ‖X̃ − ỸQ‖_F on centred, zero-padded data, Q from scipy."""
    d = max(x.shape[1], y.shape[1])
    xc, yc = _pad(_centre(x), d), _pad(_centre(y), d)
    q, _ = orthogonal_procrustes(yc, xc)
    return float(np.linalg.norm(xc - yc @ q))


def _psd_sqrt(k: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((k + k.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _fidelity(kx: np.ndarray, ky: np.ndarray) -> float:
    s = _psd_sqrt(kx)
    return float(np.trace(_psd_sqrt(s @ ky @ s)))


def test_procrustes_matches_scipy_on_padded_data(rng) -> None:
    for dx, dy in ((6, 4), (4, 6), (5, 5)):
        x, y = _pair(rng, dx=dx, dy=dy)
        xn = _centre(x) / np.linalg.norm(_centre(x))
        yn = _centre(y) / np.linalg.norm(_centre(y))
        ref = _procrustes_residual(xn, yn)
        assert repscope.measure("procrustes")(x, y) == pytest.approx(ref, abs=1e-10)
        ang = np.arccos(1 - ref**2 / 2)
        assert repscope.measure("procrustes_angular")(x, y) == pytest.approx(ang, abs=1e-8)


def test_nbs_and_bures_match_gram_fidelity(rng) -> None:
    x, y = _pair(rng, n=12, dx=5, dy=7)
    n = x.shape[0]
    kx, ky = _centre(x) @ _centre(x).T, _centre(y) @ _centre(y).T
    fid = _fidelity(kx, ky)
    nbs_ref = fid / np.sqrt(np.trace(kx) * np.trace(ky))
    assert repscope.measure("nbs")(x, y) == pytest.approx(nbs_ref, abs=1e-6)
    bures_ref = np.sqrt(np.trace(kx / n) + np.trace(ky / n) - 2 * _fidelity(kx / n, ky / n))
    assert repscope.measure("bures_distance")(x, y) == pytest.approx(bures_ref, abs=1e-6)


def test_bures_is_the_unnormalised_procrustes_residual_and_depends_on_scale(rng) -> None:
    x, y = _pair(rng)
    n = x.shape[0]
    m = repscope.measure("bures_distance")
    assert m(x, y) == pytest.approx(_procrustes_residual(x, y) / np.sqrt(n), abs=1e-9)
    assert m(3 * x, 3 * y) == pytest.approx(3 * m(x, y), rel=1e-10)
    assert m(x, x + 4.0) == pytest.approx(0.0, abs=1e-6)


def test_nbs_is_cosine_of_the_angular_distance(rng) -> None:
    x, y = _pair(rng)
    ang = repscope.measure("procrustes_angular")(x, y)
    assert repscope.measure("nbs")(x, y) == pytest.approx(np.cos(ang), abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(10, 25, 18), (50, 6, 4)])
def test_gram_path_equals_feature_path(rng, name, shape) -> None:
    n, dx, dy = shape
    x, y = _pair(rng, n=n, dx=dx, dy=dy)
    feat, gram = repscope.measure(name), repscope.measure(name)
    feat.use_gram = lambda *a: False
    gram.use_gram = lambda *a: True
    assert gram(x, y) == pytest.approx(feat(x, y), abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_float32_input_close_to_float64(rng, name) -> None:
    x, y = _pair(rng, n=300, dx=20, dy=15)
    m = repscope.measure(name)
    assert m(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(m(x, y), rel=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_torch_inputs_stay_torch(rng, name) -> None:
    x, y = _pair(rng)
    out = repscope.measure(name).compute(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor)
    assert float(out) == pytest.approx(repscope.measure(name)(x, y), abs=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(10, 2, dtype=torch.float64, generator=g, requires_grad=True)
    m = repscope.measure(name)
    m.use_gram = lambda *a: False
    assert torch.autograd.gradcheck(lambda a, b: m.compute(a, b), (x, y))


@pytest.mark.parametrize("name", NAMES)
def test_merged_moments_equal_full_data(rng, name) -> None:
    x, y = _pair(rng)
    mom = repscope.SecondMoments.from_arrays(x[:15], y[:15]).merge(
        repscope.SecondMoments.from_arrays(x[15:], y[15:])
    )
    m = repscope.measure(name)
    assert float(m.from_moments(mom)) == pytest.approx(m(x, y), abs=1e-10)


def test_bures_triangle_inequality_across_widths(rng) -> None:
    m = repscope.measure("bures_distance")
    for _ in range(5):
        a, b = _pair(rng, dx=3, dy=6)
        c = rng.normal(size=(a.shape[0], 4)) * 2
        assert m(a, c) <= m(a, b) + m(b, c) + 1e-12
