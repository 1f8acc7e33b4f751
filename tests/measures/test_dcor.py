"""Distance correlation: the V-statistic dCor and the bias-corrected R*, each against two
independent formulas (issue 14, point 9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import repscope
from repscope.core.errors import DegenerateInputError, InsufficientSamplesError


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def _pair(rng: np.random.Generator, n: int, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, dx)) + 0.4 * rng.normal(size=(n, dx)) + 1.5
    y = np.tanh(z @ rng.normal(size=(3, dy))) + 0.4 * rng.normal(size=(n, dy))
    return x, y


def _dist(z: np.ndarray) -> list[list[float]]:
    n = len(z)
    return [[float(np.sqrt(np.sum((z[i] - z[j]) ** 2))) for j in range(n)] for i in range(n)]


# ------------------------------------------------------- reference formulas
def dcor_v_loops(x: np.ndarray, y: np.ndarray) -> float:
    """dCorₙ of Székely, Rizzo & Bakirov (2007), Definition 4, with explicit loops."""
    n = len(x)

    def centred(z: np.ndarray) -> list[list[float]]:
        a = _dist(z)
        row = [sum(a[i]) / n for i in range(n)]
        col = [sum(a[i][j] for i in range(n)) / n for j in range(n)]
        tot = sum(row) / n
        return [[a[i][j] - row[i] - col[j] + tot for j in range(n)] for i in range(n)]

    def v(a: list[list[float]], b: list[list[float]]) -> float:
        return sum(a[i][j] * b[i][j] for i in range(n) for j in range(n)) / n**2

    a, b = centred(x), centred(y)
    return float(np.sqrt(v(a, b) / np.sqrt(v(a, a) * v(b, b))))


def dcor_v_theorem1(x: np.ndarray, y: np.ndarray) -> float:
    """The same from SRB (2007) Theorem 1: dCov²ₙ = S₁ + S₂ − 2S₃ (no double centring)."""
    def dcov2(a: np.ndarray, b: np.ndarray) -> float:
        n = a.shape[0]
        s1 = np.sum(a * b) / n**2
        s2 = np.sum(a) / n**2 * np.sum(b) / n**2
        s3 = np.sum(a.sum(axis=1) * b.sum(axis=1)) / n**3  # (1/n³) Σ_k Σ_l Σ_m a_kl b_km
        return float(s1 + s2 - 2.0 * s3)

    a, b = np.array(_dist(x)), np.array(_dist(y))
    return float(np.sqrt(dcov2(a, b) / np.sqrt(dcov2(a, a) * dcov2(b, b))))


def dcor_u_loops(x: np.ndarray, y: np.ndarray) -> float:
    """Bias-corrected R*ₙ with U-centred matrices and explicit loops (Székely & Rizzo 2014)."""
    n = len(x)

    def u_centred(z: np.ndarray) -> list[list[float]]:
        a = _dist(z)
        row = [sum(a[i][j] for j in range(n)) for i in range(n)]
        tot = sum(row)
        return [[0.0 if i == j else
                 a[i][j] - row[i] / (n - 2) - row[j] / (n - 2) + tot / ((n - 1) * (n - 2))
                 for j in range(n)] for i in range(n)]

    def inner(a: list[list[float]], b: list[list[float]]) -> float:
        s = sum(a[i][j] * b[i][j] for i in range(n) for j in range(n) if i != j)
        return s / (n * (n - 3))

    a, b = u_centred(x), u_centred(y)
    return inner(a, b) / np.sqrt(inner(a, a) * inner(b, b))


def dcor_u_sums(x: np.ndarray, y: np.ndarray) -> float:
    """R*ₙ from the U-statistic in row sums, without U-centring (Székely & Rizzo 2014, Prop. 1):
    Ω = [Σ_{i≠j} aᵢⱼbᵢⱼ − 2/(n−2) Σᵢ aᵢ·bᵢ· + a··b··/((n−1)(n−2))] / (n(n−3))."""
    def omega(a: np.ndarray, b: np.ndarray) -> float:
        n = a.shape[0]
        ra, rb = a.sum(axis=1), b.sum(axis=1)
        s = np.sum(a * b) - 2.0 / (n - 2) * np.sum(ra * rb) + ra.sum() * rb.sum() / (
            (n - 1) * (n - 2))
        return float(s / (n * (n - 3)))

    a, b = np.array(_dist(x)), np.array(_dist(y))
    return omega(a, b) / np.sqrt(omega(a, a) * omega(b, b))


# --------------------------------------------------------- the V-statistic
@pytest.mark.parametrize("shape", [(6, 2, 3), (9, 4, 1), (4, 1, 5)])
def test_bias_corrected_estimate_matches_two_formulas(rng, shape):
    x, y = _pair(rng, *shape)
    m = repscope.measure("distance_correlation_sq_unbiased")
    ref = dcor_u_loops(x, y)
    assert dcor_u_sums(x, y) == pytest.approx(ref, rel=1e-10)
    assert m(x, y) == pytest.approx(ref, rel=1e-10)
    assert m(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("shape", [(6, 2, 3), (9, 4, 1), (3, 2, 2)])
def test_dcor_is_the_v_statistic_of_szekely_rizzo_bakirov(rng, shape):
    x, y = _pair(rng, *shape)
    m = repscope.measure("distance_correlation")
    ref = dcor_v_loops(x, y)
    assert dcor_v_theorem1(x, y) == pytest.approx(ref, rel=1e-12)
    assert m(x, y) == pytest.approx(ref, rel=1e-10)
    assert m(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(ref, rel=1e-10)


def test_dcor_is_not_the_bias_corrected_estimate(rng):
    """Issue 14: the name gave the bias-corrected squared estimate (0.643 where dcor's
    distance_correlation gave 0.814); both are now there, under their own names."""
    x, y = _pair(rng, 30, 4, 3)
    v = repscope.measure("distance_correlation")(x, y)
    u = repscope.measure("distance_correlation_sq_unbiased")(x, y)
    assert v == pytest.approx(dcor_v_loops(x, y), rel=1e-10)
    assert u == pytest.approx(dcor_u_loops(x, y), rel=1e-10)
    assert u == pytest.approx(dcor_u_sums(x, y), rel=1e-10)
    assert v > np.sqrt(max(u, 0.0)) > 0.3  # the V-statistic is biased upwards
    info = repscope.measure_info("distance_correlation")
    assert info.version == 2 and info.value_range == (0.0, 1.0)
    assert repscope.measure_info("distance_correlation_sq_unbiased").version == 1


def test_dcor_squared_and_unbiased_agree_at_large_n():
    """Both estimate the squared population dCor; the bias of dCor² vanishes as n grows."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1500, 2))
    y = x @ rng.normal(size=(2, 2)) + rng.normal(size=(1500, 2))
    v = repscope.measure("distance_correlation")(x, y)
    u = repscope.measure("distance_correlation_sq_unbiased")(x, y)
    assert v**2 == pytest.approx(u, abs=0.01)


def test_dcor_identity_invariances_and_dependence(rng):
    x = rng.normal(size=(15, 4))
    for name in ("distance_correlation", "distance_correlation_sq_unbiased"):
        m = repscope.measure(name)
        assert m(x, x) == pytest.approx(1.0, abs=1e-12)
        assert m(x, 3.0 * x @ _orthogonal(4, rng) - 2.0) == pytest.approx(1.0, abs=1e-12)
    t = rng.normal(size=(200, 1))
    assert abs(np.corrcoef(t[:, 0], t[:, 0] ** 2)[0, 1]) < 0.2  # uncorrelated, dependent
    assert repscope.measure("distance_correlation")(t, t**2) > 0.4
    assert repscope.measure("distance_correlation_sq_unbiased")(t, t**2) > 0.2


def test_unbiased_estimate_stays_near_zero_in_high_dimension():
    """Why the bias-corrected estimator exists: the V-statistic tends to 1 for independent,
    wide data."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 300)), rng.normal(size=(40, 300))
    assert repscope.measure("distance_correlation")(x, y) > 0.9
    assert abs(repscope.measure("distance_correlation_sq_unbiased")(x, y)) < 0.1


def test_small_n_dcor_carries_the_chance_warning():
    """At small n unrelated data already score high: compare() says so in the row."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    table = repscope.compare(x, y, ["distance_correlation", "distance_correlation_sq_unbiased"])
    v, u = table[0], table[1]
    assert v["chance"] > 0.4
    assert any(w.startswith("ChanceWarning: distance_correlation of unrelated data")
               for w in v["warnings"])
    assert not any(w.startswith("ChanceWarning") for w in u["warnings"])


def test_sample_sizes_and_degenerate_inputs(rng):
    x = rng.normal(size=(3, 2))
    assert 0.0 <= repscope.measure("distance_correlation")(x, x[::-1]) <= 1.0  # n = 3
    with pytest.raises(InsufficientSamplesError, match="divides by n − 3"):
        repscope.measure("distance_correlation_sq_unbiased")(x, x)
    # equidistant samples: the V-statistic is defined, the U-centred matrix vanishes
    eq, y = np.eye(5), np.arange(10.0).reshape(5, 2) ** 2
    assert 0.0 <= repscope.measure("distance_correlation")(eq, y) <= 1.0
    for scale in (1.0, 3.0, 1e-5):
        with pytest.raises(DegenerateInputError, match="equidistant"):
            repscope.measure("distance_correlation_sq_unbiased")(eq * scale, y)


@pytest.mark.parametrize("name", ["distance_correlation", "distance_correlation_sq_unbiased"])
def test_gradients_finite_with_duplicate_rows(name: str):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, dtype=torch.float64, generator=g)
    x = torch.cat([x, x[:2]]).requires_grad_(True)  # two duplicated samples
    y = torch.randn(10, 2, dtype=torch.float64, generator=g)
    repscope.measure(name).compute(x, y).backward()
    assert torch.isfinite(x.grad).all()
    g = torch.Generator().manual_seed(3)
    a = torch.randn(7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(7, 2, dtype=torch.float64, generator=g, requires_grad=True)
    m = repscope.measure(name)
    assert torch.autograd.gradcheck(lambda p, q: m.compute(p, q), (a, b))
