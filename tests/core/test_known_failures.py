"""Failure cases seen in other tools, pinned down as regression tests."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import repscope


def _structured(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 32)).astype(np.float32)
    x = z @ rng.normal(size=(32, d)).astype(np.float32) + rng.normal(size=(n, d)).astype(
        np.float32
    )
    y = np.tanh(z @ rng.normal(size=(32, d)).astype(np.float32)) + 0.5 * rng.normal(
        size=(n, d)
    ).astype(np.float32)
    return x + 3.0, y  # a mean offset makes naive float32 centring worse


def test_float32_cka_at_scale_matches_float64() -> None:
    x, y = _structured(10_000, 1024, 0)
    cka = repscope.measure("cka")
    exact = cka(x.astype(np.float64), y.astype(np.float64))
    assert cka(x, y) == pytest.approx(exact, abs=1e-6)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    assert float(cka.compute(tx, ty)) == pytest.approx(exact, abs=1e-6)
    # what a plain float32 Gram computation gives (the failure mode we avoid)
    xc, yc = tx - tx.mean(0), ty - ty.mean(0)
    naive = float((xc.T @ yc).norm() ** 2 / ((xc.T @ xc).norm() * (yc.T @ yc).norm()))
    assert abs(naive - exact) < 1e-2  # same ballpark, but not float64-exact in general


def test_mean_cca_with_more_features_than_samples_is_one_and_warns() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 40)), rng.normal(size=(20, 25))
    with pytest.warns(repscope.DegeneracyWarning, match="trivially"):
        v = repscope.measure("mean_cca")(x, y)
    assert v == pytest.approx(1.0, abs=1e-9)


def test_no_silent_nan_on_constant_input() -> None:
    x = np.ones((10, 3))
    y = np.random.default_rng(1).normal(size=(10, 3))
    for name in ("cka", "mean_cca", "procrustes"):
        with pytest.raises(repscope.DegenerateInputError, match="constant"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                repscope.measure(name)(x, y)
