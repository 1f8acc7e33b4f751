"""Statistic-difference measures: magnitude, concentricity, uniformity, intrinsic dimension."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import pdist

import repscope
from repscope.core.errors import DegeneracyWarning, DegenerateInputError, InvalidParameterError
from repscope.measures.statistics import concentricity, magnitude, twonn_dimension, uniformity


def _uniformity_ref(x: np.ndarray, t: float = 2.0) -> float:
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return float(np.log(np.mean(np.exp(-t * pdist(u, "sqeuclidean")))))


def test_statistics_match_direct_formulas(rng: np.random.Generator) -> None:
    x = rng.normal(size=(30, 4)) + 1.0
    assert float(magnitude(x)) == pytest.approx(np.mean(np.sqrt((x**2).sum(1))))
    mu = x.mean(0)
    cos = x @ mu / (np.linalg.norm(x, axis=1) * np.linalg.norm(mu))
    assert float(concentricity(x)) == pytest.approx(cos.mean())
    assert float(uniformity(x)) == pytest.approx(_uniformity_ref(x), rel=1e-12)
    assert float(uniformity(x, 0.5)) == pytest.approx(_uniformity_ref(x, 0.5), rel=1e-12)


def test_uniformity_blocks(rng: np.random.Generator, monkeypatch) -> None:
    from repscope.measures import statistics

    x = rng.normal(size=(23, 3))
    monkeypatch.setattr(statistics, "_BLOCK_BUDGET", 50)  # blocks of 2 rows
    assert float(uniformity(x)) == pytest.approx(_uniformity_ref(x), rel=1e-12)


def test_differences_hand_worked() -> None:
    x = np.array([[3.0, 4.0], [0.0, 1.0]])  # norms 5, 1 -> magnitude 3
    y = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # widths may differ; magnitude 1.5
    assert repscope.measure("magnitude_difference")(x, y) == pytest.approx(1.5)
    # y: mean (0.5, 1, 0); cosines 0.5/|m| and 2/(2|m|), |m| = sqrt(1.25)
    alpha_y = (0.5 + 1.0) / 2 / np.sqrt(1.25)
    mx = np.array([1.5, 2.5])
    alpha_x = (np.array([3.0, 4.0]) @ mx / 5 + 2.5) / 2 / np.linalg.norm(mx)
    got = repscope.measure("concentricity_difference")(x, y)
    assert got == pytest.approx(abs(alpha_x - alpha_y))
    # two orthogonal unit rows: ||u1 - u2||^2 = 2 -> U = -2t = -4; x rows at angle
    # with cos = 4/5: ||.||^2 = 2 - 8/5 = 0.4 -> U = -0.8
    assert repscope.measure("uniformity_difference")(x, y) == pytest.approx(4.0 - 0.8)


def test_statistic_method_and_identity(rng: np.random.Generator) -> None:
    x = rng.normal(size=(20, 3))
    m = repscope.measure("magnitude_difference")
    assert m.statistic(x) == pytest.approx(float(magnitude(x)))
    for name in ("magnitude_difference", "concentricity_difference", "uniformity_difference"):
        assert repscope.measure(name)(x, x) == 0.0


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_twonn_on_linear_subspace(rng: np.random.Generator, d: int) -> None:
    z = rng.normal(size=(1000, d))
    x = z @ rng.normal(size=(d, 12)) + 4.0  # a d-dimensional affine subspace of R^12
    assert twonn_dimension(x) == pytest.approx(d, rel=0.15)


def test_intrinsic_dimension_difference(rng: np.random.Generator) -> None:
    x2 = rng.normal(size=(600, 2)) @ rng.normal(size=(2, 10))
    x5 = rng.normal(size=(600, 5)) @ rng.normal(size=(5, 8))
    m = repscope.measure("intrinsic_dimension_difference")
    assert m(x2, x5) == pytest.approx(abs(twonn_dimension(x2) - twonn_dimension(x5)))
    assert 2.0 < m(x2, x5) < 4.0


def _r1_r2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    s = np.sort(d, axis=1)
    return s[:, 0], s[:, 1]


def test_twonn_matches_formula(rng: np.random.Generator) -> None:
    x = rng.normal(size=(40, 3))
    r1, r2 = _r1_r2(x)
    assert twonn_dimension(x) == pytest.approx(40 / np.sum(np.log(r2 / r1)), rel=1e-12)


def test_twonn_duplicates_are_dropped_with_warning(rng: np.random.Generator) -> None:
    x = rng.normal(size=(50, 3))
    dup = np.vstack([x, x[:5]])
    r1, r2 = _r1_r2(dup)
    keep = r1 > 0
    assert keep.sum() == 45
    with pytest.warns(DegeneracyWarning, match="10 sample"):
        est = twonn_dimension(dup)
    assert est == pytest.approx(45 / np.sum(np.log(r2[keep] / r1[keep])), rel=1e-12)


def test_torch_gradients(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor(rng.normal(size=(15, 3)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(15, 4)))
    for name in ("magnitude_difference", "concentricity_difference", "uniformity_difference"):
        m = repscope.measure(name)
        out = m.compute(x, y)
        assert isinstance(out, torch.Tensor)
        (g,) = torch.autograd.grad(out, x)
        assert torch.isfinite(g).all() and float(g.abs().sum()) > 0
        assert float(out.detach()) == pytest.approx(m(x.detach().numpy(), y.numpy()))


def test_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(10, 3))
    z = x.copy()
    z[2] = 0.0
    with pytest.raises(DegenerateInputError, match="all-zero rows"):
        repscope.measure("concentricity_difference")(z, x)
    with pytest.raises(DegenerateInputError, match="all-zero rows"):
        repscope.measure("uniformity_difference")(x, z)
    centred = np.vstack([x, -x])
    with pytest.raises(DegenerateInputError, match="mean representation"):
        repscope.measure("concentricity_difference")(centred, centred)
    with pytest.raises(DegenerateInputError, match="constant"):
        repscope.measure("intrinsic_dimension_difference")(np.ones((10, 3)), x)
    with pytest.raises(DegenerateInputError, match="equidistant"):
        twonn_dimension(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))  # square
    with pytest.raises(InvalidParameterError, match="t must be"):
        repscope.measure("uniformity_difference", t=0.0)
    # constant representations are fine for the descriptive statistics
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repscope.measure("magnitude_difference")(np.ones((4, 2)), np.ones((4, 2))) == 0.0
