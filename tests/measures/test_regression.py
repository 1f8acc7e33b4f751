"""linear_regression and linear_regression_cv against scikit-learn."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

import repscope


def _pair(rng: np.random.Generator, n: int = 60, dx: int = 5, dy: int = 3):
    x = rng.normal(size=(n, dx)) * np.array([3.0, 1.0, 0.5, 2.0, 1.0])[:dx] + 4.0
    y = np.tanh(x[:, :3] @ rng.normal(size=(3, dy))) * 2 + 0.7 * rng.normal(size=(n, dy))
    return x, y


def _sk_r2(x: np.ndarray, y: np.ndarray) -> float:
    pred = LinearRegression().fit(x, y).predict(x)
    return float(r2_score(y, pred, multioutput="variance_weighted"))


def test_r2_matches_sklearn_on_stacked_targets(rng) -> None:
    x, y = _pair(rng)
    m = repscope.measure("linear_regression")
    ref = _sk_r2(x, y)
    assert m(x, y) == pytest.approx(ref, abs=1e-12)
    # the same number as one R² over the stacked, column-centred targets
    pred = LinearRegression().fit(x, y).predict(x)
    yc = y - y.mean(axis=0)
    stacked = r2_score(yc.ravel(), (pred - y.mean(axis=0)).ravel())
    assert m(x, y) == pytest.approx(stacked, abs=1e-12)
    assert m(y, x) == pytest.approx(_sk_r2(y, x), abs=1e-12)
    assert abs(m(x, y) - m(y, x)) > 1e-3


def test_rank_deficient_x_uses_its_column_space(rng) -> None:
    x, y = _pair(rng)
    xdup = np.column_stack([x, x[:, 0] + 2 * x[:, 1], x[:, 2]])
    m = repscope.measure("linear_regression")
    assert m(xdup, y) == pytest.approx(m(x, y), abs=1e-10)


def test_trivial_fit_when_dx_reaches_n_warns(rng) -> None:
    x, y = rng.normal(size=(8, 7)), rng.normal(size=(8, 3))
    with pytest.warns(repscope.DegeneracyWarning, match="trivially 1"):
        v = repscope.measure("linear_regression")(x, y)
    assert v == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("shape", [(10, 25, 6), (50, 5, 3)])
def test_gram_path_equals_feature_path(rng, shape) -> None:
    n, dx, dy = shape
    x, y = rng.normal(size=(n, dx)), rng.normal(size=(n, dy))
    feat, gram = repscope.measure("linear_regression"), repscope.measure("linear_regression")
    feat.use_gram = lambda *a: False
    gram.use_gram = lambda *a: True
    for a, b in ((x, y), (y, x)):
        with pytest.warns(repscope.DegeneracyWarning) if a.shape[1] >= n - 1 else nullcontext():
            g, f = gram(a, b), feat(a, b)
        assert g == pytest.approx(f, abs=1e-9)


def test_backends_precision_moments_and_gradcheck(rng) -> None:
    x, y = _pair(rng, n=200)
    m = repscope.measure("linear_regression")
    ref = m(x, y)
    assert m(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(ref, rel=1e-5)
    out = m.compute(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor) and float(out) == pytest.approx(ref, abs=1e-12)
    mom = repscope.SecondMoments.from_arrays(x[:70], y[:70]).merge(
        repscope.SecondMoments.from_arrays(x[70:], y[70:])
    )
    assert float(m.from_moments(mom)) == pytest.approx(ref, abs=1e-12)
    g = torch.Generator().manual_seed(4)
    a = torch.randn(12, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(12, 2, dtype=torch.float64, generator=g, requires_grad=True)
    m.use_gram = lambda *args: False
    assert torch.autograd.gradcheck(lambda u, v: m.compute(u, v), (a, b))


# --------------------------------------------------------------- CV
def _sk_cv_r2(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> float:
    parts = np.array_split(np.random.default_rng(seed).permutation(len(x)), folds)
    sse = 0.0
    for test in parts:
        train = np.setdiff1d(np.arange(len(x)), test)
        pred = LinearRegression().fit(x[train], y[train]).predict(x[test])
        sse += float(np.sum((y[test] - pred) ** 2))
    return 1.0 - sse / float(np.sum((y - y.mean(axis=0)) ** 2))


@pytest.mark.parametrize(("folds", "seed"), [(5, 0), (3, 11), (2, 5)])
def test_cv_matches_sklearn_with_the_same_folds(rng, folds, seed) -> None:
    x, y = _pair(rng, n=47)
    m = repscope.measure("linear_regression_cv", folds=folds, seed=seed)
    assert m(x, y) == pytest.approx(_sk_cv_r2(x, y, folds, seed), abs=1e-10)
    assert m(x, y) < repscope.measure("linear_regression")(x, y)


def test_cv_is_deterministic_under_seed_and_negative_for_noise(rng) -> None:
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(30, 2))
    a = repscope.measure("linear_regression_cv", seed=1)
    assert a(x, y) == a(x, y)
    assert a(x, y) != repscope.measure("linear_regression_cv", seed=2)(x, y)
    assert a(x, y) < 0.0  # out-of-fold predictions from noise are worse than the mean


def test_cv_torch_stays_torch_and_has_gradients(rng) -> None:
    x, y = _pair(rng, n=40)
    m = repscope.measure("linear_regression_cv")
    tx = torch.from_numpy(x).requires_grad_(True)
    out = m.compute(tx, torch.from_numpy(y))
    assert isinstance(out, torch.Tensor)
    assert float(out.detach()) == pytest.approx(m(x, y), abs=1e-12)
    out.backward()
    assert tx.grad is not None and bool(torch.isfinite(tx.grad).all())


def test_cv_errors(rng) -> None:
    x, y = _pair(rng, n=4)
    with pytest.raises(repscope.InsufficientSamplesError, match="folds=5"):
        repscope.measure("linear_regression_cv")(x, y)
    for bad in ({"folds": 1}, {"folds": 2.5}, {"seed": -1}):
        with pytest.raises(repscope.InvalidParameterError):
            repscope.measure("linear_regression_cv", **bad)
    x, y = rng.normal(size=(12, 11)), rng.normal(size=(12, 2))
    with pytest.warns(repscope.DegeneracyWarning, match="interpolates"):
        repscope.measure("linear_regression_cv", folds=3)(x, y)
