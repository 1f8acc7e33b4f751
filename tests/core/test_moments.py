from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import repscope
from repscope import SecondMoments


def _direct(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    xc, yc = x - x.mean(0), y - y.mean(0)
    return xc.T @ xc, yc.T @ yc, xc.T @ yc


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 60),
    split=st.floats(0.05, 0.95),
    seed=st.integers(0, 10_000),
    offset=st.floats(-1e4, 1e4),
)
def test_merge_equals_single_pass(n: int, split: float, seed: int, offset: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) + offset
    y = rng.normal(size=(n, 3)) * 5
    k = min(max(1, int(n * split)), n - 1)
    merged = SecondMoments.from_arrays(x[:k], y[:k]).merge(SecondMoments.from_arrays(x[k:], y[k:]))
    sxx, syy, sxy = _direct(x, y)
    assert merged.n == n
    np.testing.assert_allclose(merged.mean_x, x.mean(0), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(merged.sxx, sxx, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(merged.syy, syy, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(merged.sxy, sxy, rtol=1e-9, atol=1e-6)


def test_streaming_updates_and_empty(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(100, 5)), rng.normal(size=(100, 2))
    mom = SecondMoments.empty(5, 2)
    for i in range(0, 100, 17):
        mom.update(x[i : i + 17], y[i : i + 17])
    full = SecondMoments.from_arrays(x, y)
    np.testing.assert_allclose(mom.sxy, full.sxy, atol=1e-10)
    assert (SecondMoments.empty(5, 2) + full).n == 100


def test_large_offset_is_stable(rng: np.random.Generator) -> None:
    # raw XᵀX - n μμᵀ would lose everything at offset 1e8; the centred update does not.
    x = rng.normal(size=(1000, 3))
    y = rng.normal(size=(1000, 3))
    parts = [
        SecondMoments.from_arrays(x[i : i + 100] + 1e8, y[i : i + 100])
        for i in range(0, 1000, 100)
    ]
    total = parts[0]
    for p in parts[1:]:
        total = total.merge(p)
    sxx, _, _ = _direct(x, y)
    np.testing.assert_allclose(total.sxx, sxx, rtol=1e-6)


def test_merge_shape_mismatch() -> None:
    a = SecondMoments.empty(2, 2)
    b = SecondMoments.empty(3, 2)
    with pytest.raises(repscope.InputShapeError):
        a.merge(b)


def test_transpose(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 3))
    t = SecondMoments.from_arrays(x, y).transpose()
    np.testing.assert_allclose(t.sxy, SecondMoments.from_arrays(y, x).sxy)


def test_torch_moments() -> None:
    x = torch.randn(20, 3, dtype=torch.float32)
    y = torch.randn(20, 2, dtype=torch.float32)
    mom = SecondMoments.from_arrays(x, y)
    assert isinstance(mom.sxx, torch.Tensor) and mom.sxx.dtype == torch.float64
    ref = SecondMoments.from_arrays(x.numpy(), y.numpy())
    np.testing.assert_allclose(mom.sxy.numpy(), ref.sxy, atol=1e-12)


@pytest.mark.parametrize("name", ["cka", "mean_cca", "procrustes"])
def test_from_moments_matches_direct(name: str, rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(200, 6)), rng.normal(size=(200, 4))
    y[:, :2] += x[:, :2]
    m = repscope.measure(name)
    mom = SecondMoments.from_arrays(x[:77], y[:77]).merge(SecondMoments.from_arrays(x[77:], y[77:]))
    assert float(m.from_moments(mom)) == pytest.approx(m(x, y), rel=1e-10)


def test_from_moments_rejects_constant() -> None:
    mom = SecondMoments.from_arrays(np.ones((5, 2)), np.arange(10.0).reshape(5, 2))
    with pytest.raises(repscope.DegenerateInputError):
        repscope.measure("cka").from_moments(mom)


def test_from_moments_rejects_nonlinear_config(rng: np.random.Generator) -> None:
    mom = SecondMoments.from_arrays(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)))
    with pytest.raises(repscope.DegenerateInputError, match="not a function of second moments"):
        repscope.measure("cka", kernel="rbf").from_moments(mom)
