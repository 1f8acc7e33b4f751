"""permutation_procrustes, aligned_cosine, hard/soft correlation matching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes

import repscope


def _pair(rng: np.random.Generator, n: int = 40, dx: int = 4, dy: int = 4):
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, dx)) + 0.5 * rng.normal(size=(n, dx)) + 1.0
    y = np.tanh(z @ rng.normal(size=(3, dy))) + 0.5 * rng.normal(size=(n, dy))
    return x, y


def _centre(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=0)


def _merged(x: np.ndarray, y: np.ndarray, k: int) -> repscope.SecondMoments:
    return repscope.SecondMoments.from_arrays(x[:k], y[:k]).merge(
        repscope.SecondMoments.from_arrays(x[k:], y[k:])
    )


# ------------------------------------------------------ permutation
def test_permutation_procrustes_matches_brute_force(rng) -> None:
    m = repscope.measure("permutation_procrustes")
    for _ in range(4):
        x, y = _pair(rng, dx=4, dy=4)
        xn = _centre(x) / np.linalg.norm(_centre(x))
        yn = _centre(y) / np.linalg.norm(_centre(y))
        ref = min(np.linalg.norm(xn - yn[:, list(p)]) for p in itertools.permutations(range(4)))
        assert m(x, y) == pytest.approx(ref, abs=1e-10)


def test_permutation_procrustes_zero_for_permuted_copy_and_above_procrustes(rng) -> None:
    x, y = _pair(rng, dx=5, dy=5)
    m = repscope.measure("permutation_procrustes")
    assert m(x, 2.5 * x[:, [3, 0, 4, 1, 2]] - 7.0) == pytest.approx(0.0, abs=1e-7)
    assert m(x, y) >= repscope.measure("procrustes")(x, y) - 1e-12
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert m(x, x @ q) > 1e-3


def test_permutation_procrustes_needs_equal_widths(rng) -> None:
    x, y = _pair(rng, dx=4, dy=3)
    with pytest.raises(repscope.InputShapeError, match="equal width"):
        repscope.measure("permutation_procrustes")(x, y)


# ---------------------------------------------------------- cosine
def _aligned_cosine_reference(x: np.ndarray, y: np.ndarray) -> float:
    d = max(x.shape[1], y.shape[1])
    xp = np.hstack([x, np.zeros((len(x), d - x.shape[1]))])
    yp = np.hstack([y, np.zeros((len(y), d - y.shape[1]))])
    q, _ = orthogonal_procrustes(yp, xp)
    num = np.sum(xp * (yp @ q), axis=1)
    return float(np.mean(num / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))))


@pytest.mark.parametrize(("dx", "dy"), [(4, 4), (5, 3), (3, 5)])
def test_aligned_cosine_matches_scipy_alignment(rng, dx, dy) -> None:
    x, y = _pair(rng, dx=dx, dy=dy)
    m = repscope.measure("aligned_cosine")
    assert m(x, y) == pytest.approx(_aligned_cosine_reference(x, y), abs=1e-10)
    assert m(y, x) == pytest.approx(m(x, y), abs=1e-10)


def test_aligned_cosine_rotation_but_not_translation_invariant(rng) -> None:
    x, y = _pair(rng)
    m = repscope.measure("aligned_cosine")
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert m(x, 3.0 * y @ q) == pytest.approx(m(x, y), abs=1e-10)
    assert m(x @ q, y) == pytest.approx(m(x, y), abs=1e-10)
    assert abs(m(x, y + 5.0) - m(x, y)) > 1e-3
    assert m(x, x @ q) == pytest.approx(1.0, abs=1e-10)


def test_aligned_cosine_rejects_zero_rows(rng) -> None:
    x, y = _pair(rng)
    x[3] = 0.0
    with pytest.raises(repscope.DegenerateInputError, match="zero vector"):
        repscope.measure("aligned_cosine")(x, y)


def test_aligned_cosine_torch_and_gradcheck(rng) -> None:
    x, y = _pair(rng, dx=4, dy=3)
    m = repscope.measure("aligned_cosine")
    out = m.compute(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor) and float(out) == pytest.approx(m(x, y), abs=1e-10)
    g = torch.Generator().manual_seed(3)
    a = torch.randn(8, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(8, 3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, v: m.compute(u, v), (a, b))


# ------------------------------------------------------ correlations
def _hand_built(rng: np.random.Generator, n: int = 30):
    """X = [e1, e2, .8 e1 + .6 e3], Y = [e1, e2, e3] with orthonormal centred e's.

    corr(X, Y) = [[1, 0, 0], [0, 1, 0], [.8, 0, .6]]:
    hard = (1 + 1 + .6) / 3, soft(X->Y) = (1 + 1 + .8) / 3, soft(Y->X) = (1 + 1 + .6) / 3.
    """
    e, _ = np.linalg.qr(_centre(rng.normal(size=(n, 3))))
    x = np.column_stack([e[:, 0], e[:, 1], 0.8 * e[:, 0] + 0.6 * e[:, 2]])
    y = e.copy()
    return 3.0 * x + 2.0, y * np.array([1.0, 5.0, 0.1]) - 1.0


def test_correlation_matches_on_hand_built_case(rng) -> None:
    x, y = _hand_built(rng)
    hard = repscope.measure("hard_correlation_match")
    soft = repscope.measure("soft_correlation_match")
    assert hard(x, y) == pytest.approx(2.6 / 3, abs=1e-12)
    assert hard(y, x) == pytest.approx(2.6 / 3, abs=1e-12)
    assert soft(x, y) == pytest.approx(2.8 / 3, abs=1e-12)
    assert soft(y, x) == pytest.approx(2.6 / 3, abs=1e-12)


def test_hard_match_brute_force_with_unequal_widths(rng) -> None:
    x, y = _pair(rng, dx=3, dy=5)
    c = np.corrcoef(x, y, rowvar=False)[:3, 3:]
    ref = max(np.mean(c[range(3), list(p)]) for p in itertools.permutations(range(5), 3))
    assert repscope.measure("hard_correlation_match")(x, y) == pytest.approx(ref, abs=1e-12)
    soft_ref = c.max(axis=1).mean()
    assert repscope.measure("soft_correlation_match")(x, y) == pytest.approx(soft_ref, abs=1e-12)


def test_constant_neurons_are_left_out_with_a_warning(rng) -> None:
    x, y = _hand_built(rng)
    xc = np.column_stack([x, np.full(len(x), 0.1)])
    for name, ref in (("hard_correlation_match", 2.6 / 3), ("soft_correlation_match", 2.8 / 3)):
        with pytest.warns(repscope.DegeneracyWarning, match="constant neuron"):
            assert repscope.measure(name)(xc, y) == pytest.approx(ref, abs=1e-12)


# ---------------------------------------------------- shared checks
NUMPY_MOMENT = ["permutation_procrustes", "hard_correlation_match", "soft_correlation_match"]


@pytest.mark.parametrize("name", NUMPY_MOMENT)
def test_merged_moments_equal_full_data(rng, name) -> None:
    x, y = _pair(rng)
    m = repscope.measure(name)
    assert float(m.from_moments(_merged(x, y, 13))) == pytest.approx(m(x, y), abs=1e-10)


@pytest.mark.parametrize("name", NUMPY_MOMENT + ["aligned_cosine"])
def test_float32_and_torch_inputs(rng, name) -> None:
    x, y = _pair(rng, n=300, dx=12, dy=12)
    m = repscope.measure(name)
    ref = m(x, y)
    assert m(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(ref, rel=1e-5)
    assert float(m.compute(torch.from_numpy(x), torch.from_numpy(y))) == pytest.approx(
        ref, abs=1e-10
    )
