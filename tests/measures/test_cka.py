"""CKA and HSIC against independent formulas (explicit sums, sklearn kernels, gradcheck)."""

from __future__ import annotations

import warnings
from itertools import permutations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist
from sklearn.metrics.pairwise import rbf_kernel as sk_rbf_kernel

import repscope
from repscope.core.errors import (
    DegeneracyWarning,
    DegenerateInputError,
    InsufficientSamplesError,
    InvalidParameterError,
)
from repscope.measures._kernels import rbf_kernel
from repscope.measures.moments import SecondMoments

pytestmark = pytest.mark.filterwarnings("ignore::repscope.core.errors.DegeneracyWarning")


# ------------------------------------------------------------- references
def _h(n: int) -> np.ndarray:
    return np.eye(n) - np.ones((n, n)) / n


def hsic_biased_ref(k: np.ndarray, l: np.ndarray) -> float:
    """tr(K H L H) / (n-1)^2 with an explicit centring matrix."""
    n = len(k)
    h = _h(n)
    return float(np.trace(k @ h @ l @ h)) / (n - 1) ** 2


def hsic_unbiased_ref(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC as the U-statistic over distinct index tuples.

    HSIC = E[k(x,x') l(y,y')] + E[k(x,x')] E[l(y'',y''')] - 2 E[k(x,x') l(y,y'')],
    each expectation estimated by averaging over tuples of *distinct* indices.
    """
    n = len(k)
    t1 = np.mean([k[i, j] * l[i, j] for i, j in permutations(range(n), 2)])
    t2 = np.mean([k[i, j] * l[q, r] for i, j, q, r in permutations(range(n), 4)])
    t3 = np.mean([k[i, j] * l[i, q] for i, j, q in permutations(range(n), 3)])
    return float(t1 + t2 - 2 * t3)


def linear_cka_features_ref(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(0), y - y.mean(0)
    return float(
        np.linalg.norm(xc.T @ yc) ** 2
        / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    )


def _sigma(x: np.ndarray, frac: float) -> float:
    return frac * float(np.median(pdist(x)))


def rbf_ref(x: np.ndarray, frac: float) -> np.ndarray:
    return sk_rbf_kernel(x, gamma=1.0 / (2.0 * _sigma(x, frac) ** 2))


def _force_path(m: repscope.Measure, gram: bool) -> repscope.Measure:
    m.use_gram = lambda n, dx, dy: gram  # type: ignore[method-assign]
    return m


def _pair(rng: np.random.Generator, n: int, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, dx)) + 0.5 * rng.normal(size=(n, dx)) + 2.0
    y = np.tanh(z @ rng.normal(size=(3, dy))) + 0.5 * rng.normal(size=(n, dy)) - 1.0
    return x, y


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


# ------------------------------------------------------- linear: both paths
@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("shape", [(30, 4, 6), (8, 20, 15)])
def test_linear_cka_gram_path_equals_feature_path(rng, debiased, shape):
    x, y = _pair(rng, *shape)
    gram = _force_path(repscope.measure("cka", debiased=debiased), True)
    feat = _force_path(repscope.measure("cka", debiased=debiased), False)
    px, py = gram.prepare(x), gram.prepare(y)
    a = float(gram.compare_prepared(px, py))
    assert any(isinstance(k, tuple) and k[1] == "linear" for k in px.cache)  # Gram path ran
    qx, qy = feat.prepare(x), feat.prepare(y)
    b = float(feat.compare_prepared(qx, qy))
    assert not any(isinstance(k, tuple) for k in qx.cache)  # no n x n kernel was built
    assert a == pytest.approx(b, rel=1e-10, abs=1e-12)
    # and the automatic choice agrees with both
    assert repscope.measure("cka", debiased=debiased)(x, y) == pytest.approx(a, rel=1e-10)


@pytest.mark.parametrize("gram", [False, True])
def test_linear_cka_matches_feature_space_formula(rng, gram):
    x, y = _pair(rng, 25, 5, 7)
    m = _force_path(repscope.measure("cka"), gram)
    assert m(x, y) == pytest.approx(linear_cka_features_ref(x, y), rel=1e-12)


def test_linear_cka_matches_explicit_gram_formula(rng):
    x, y = _pair(rng, 12, 30, 3)  # n < d: Gram path chosen automatically
    k, l = x @ x.T, y @ y.T
    ref = hsic_biased_ref(k, l) / np.sqrt(hsic_biased_ref(k, k) * hsic_biased_ref(l, l))
    assert repscope.measure("cka")(x, y) == pytest.approx(ref, rel=1e-12)


def test_linear_cka_from_streamed_moments_equals_direct(rng):
    x, y = _pair(rng, 60, 5, 4)
    mom = SecondMoments.empty(5, 4)
    for i in range(0, 60, 17):
        mom.update(x[i : i + 17], y[i : i + 17])
    m = repscope.measure("cka")
    assert float(m.from_moments(mom)) == pytest.approx(m(x, y), rel=1e-12)
    h = repscope.measure("hsic")
    assert float(h.from_moments(mom)) == pytest.approx(h(x, y), rel=1e-12)


def test_debiased_is_not_a_moment_function(rng):
    x, y = _pair(rng, 20, 3, 3)
    with pytest.raises(DegenerateInputError, match="second moments"):
        repscope.measure("cka", debiased=True).from_moments(SecondMoments.from_arrays(x, y))


# ------------------------------------------------------------- HSIC values
@pytest.mark.parametrize("gram", [False, True])
def test_biased_hsic_matches_trace_formula(rng, gram):
    x, y = _pair(rng, 9, 4, 3)
    m = _force_path(repscope.measure("hsic"), gram)
    assert m(x, y) == pytest.approx(hsic_biased_ref(x @ x.T, y @ y.T), rel=1e-12)


@pytest.mark.parametrize("gram", [False, True])
def test_debiased_linear_hsic_equals_explicit_u_statistic(rng, gram):
    x, y = _pair(rng, 7, 3, 2)
    m = _force_path(repscope.measure("hsic", debiased=True), gram)
    # the reference uses the raw (uncentred) kernels: the estimator is translation invariant
    assert m(x, y) == pytest.approx(hsic_unbiased_ref(x @ x.T, y @ y.T), rel=1e-10)


def test_debiased_rbf_hsic_and_cka_equal_explicit_u_statistic(rng):
    x, y = _pair(rng, 7, 3, 2)
    k, l = rbf_ref(x, 0.8), rbf_ref(y, 0.8)
    h = repscope.measure("hsic", kernel="rbf", debiased=True)
    assert h(x, y) == pytest.approx(hsic_unbiased_ref(k, l), rel=1e-10)
    cka = repscope.measure("cka", kernel="rbf", debiased=True)
    ref = hsic_unbiased_ref(k, l) / np.sqrt(hsic_unbiased_ref(k, k) * hsic_unbiased_ref(l, l))
    assert cka(x, y) == pytest.approx(ref, rel=1e-10)


def test_biased_rbf_cka_matches_reference(rng):
    x, y = _pair(rng, 15, 4, 3)
    k, l = rbf_ref(x, 1.3), rbf_ref(y, 1.3)
    ref = hsic_biased_ref(k, l) / np.sqrt(hsic_biased_ref(k, k) * hsic_biased_ref(l, l))
    assert repscope.measure("cka", kernel="rbf", sigma=1.3)(x, y) == pytest.approx(ref, rel=1e-12)


def test_linear_hsic_scales_quadratically(rng):
    x, y = _pair(rng, 20, 3, 4)
    for debiased in (False, True):
        h = repscope.measure("hsic", debiased=debiased)
        assert h(2.0 * x, 3.0 * y) == pytest.approx(36.0 * h(x, y), rel=1e-10)


# -------------------------------------------------------------- rbf kernel
@pytest.mark.parametrize("n", [9, 10])  # odd and even numbers of pairs for the median
@pytest.mark.parametrize("frac", [0.5, 0.8, 2.0])
def test_rbf_kernel_equals_sklearn(rng, n, frac):
    x = rng.normal(size=(n, 4)) * 3.0 + 7.0
    np.testing.assert_allclose(rbf_kernel(x, frac), rbf_ref(x, frac), rtol=1e-12, atol=1e-14)


def test_rbf_kernel_torch_matches_numpy(rng):
    x = rng.normal(size=(11, 3))
    out = rbf_kernel(torch.from_numpy(x), 0.8)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), rbf_ref(x, 0.8), rtol=1e-12, atol=1e-14)


def test_rbf_zero_median_distance_raises():
    x = np.zeros((6, 2))
    x[0] = [1.0, 2.0]  # 10 of 15 pairs coincide: median distance 0
    with pytest.raises(DegenerateInputError, match="median pairwise distance"):
        repscope.measure("cka", kernel="rbf")(x, np.arange(12.0).reshape(6, 2))


# ------------------------------------------------------------ invariances
@pytest.mark.parametrize(
    "params", [{}, {"debiased": True}, {"kernel": "rbf"}, {"kernel": "rbf", "debiased": True}]
)
def test_cka_of_rotated_scaled_shifted_copy_is_one(rng, params):
    x = rng.normal(size=(30, 6))
    q = _orthogonal(6, rng)
    m = repscope.measure("cka", **params)
    assert m(x, x @ q) == pytest.approx(1.0, abs=1e-12)
    assert m(x, 4.0 * x @ q + 3.0) == pytest.approx(1.0, abs=1e-12)


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=15, deadline=None)
def test_cka_in_range_and_symmetric(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        for params in ({}, {"debiased": True}, {"kernel": "rbf"}):
            m = repscope.measure("cka", **params)
            v = m(x, y)
            lo = -1.0 if params.get("debiased") else 0.0
            assert lo - 1e-12 <= v <= 1.0 + 1e-12
            assert v == pytest.approx(m(y, x), rel=1e-10, abs=1e-12)


def test_cka_not_invariant_to_invertible_linear_maps(rng):
    x, y = _pair(rng, 40, 4, 4)
    a = np.diag([0.05, 1.0, 3.0, 10.0]) @ _orthogonal(4, rng)
    m = repscope.measure("cka")
    assert abs(m(x, y) - m(x @ a, y)) > 1e-3


# --------------------------------------------------------------- precision
@pytest.mark.parametrize("params", [{}, {"debiased": True}, {"kernel": "rbf"}])
def test_float32_input_gives_float64_answer(params):
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(400, 64)) * 5 + 100).astype(np.float32)
    y = (x[:, :32] ** 2 / 100 + rng.normal(size=(400, 32))).astype(np.float32)
    m = repscope.measure("cka", **params)
    a = m(x, y)
    b = m(x.astype(np.float64), y.astype(np.float64))
    assert abs(a - b) < 1e-6
    at = m(torch.from_numpy(x), torch.from_numpy(y))
    assert abs(at - b) < 1e-6


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize(
    "params",
    [{}, {"debiased": True}, {"kernel": "rbf"}, {"kernel": "rbf", "debiased": True}],
)
def test_gradcheck(params):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(10, 4, dtype=torch.float64, generator=g, requires_grad=True)
    m = repscope.measure("cka", **params)
    assert torch.autograd.gradcheck(lambda a, b: m.compute(a, b), (x, y))


def test_gradients_through_feature_and_gram_paths_agree():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(12, 3, dtype=torch.float64, generator=g)
    y0 = torch.randn(12, 2, dtype=torch.float64, generator=g)
    grads = []
    for gram in (False, True):
        x = x0.clone().requires_grad_(True)
        _force_path(repscope.measure("cka", debiased=True), gram).compute(x, y0).backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_torch_result_stays_torch(rng):
    x, y = _pair(rng, 20, 3, 3)
    out = repscope.measure("cka", kernel="rbf").compute(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.ndim == 0


# ------------------------------------------------------------- preparation
def test_cka_and_hsic_share_prepared_representations(rng):
    """Scale-invariant kernel measures share unit-scaled inputs; linear HSIC (in the data's
    units) shares only with itself, whatever the estimator."""
    x, y = _pair(rng, 20, 3, 3)
    cka, hsic_rbf = repscope.measure("cka"), repscope.measure("hsic", kernel="rbf")
    rbf = repscope.measure("cka", kernel="rbf", sigma=1.0, debiased=True)
    assert cka.prepare_key() == hsic_rbf.prepare_key() == rbf.prepare_key()
    px, py = cka.prepare(x), cka.prepare(y)
    for m in (cka, hsic_rbf, rbf):
        assert float(m.compare_prepared(px, py)) == pytest.approx(m(x, y), rel=1e-12)
    hsic, hsic_u = repscope.measure("hsic"), repscope.measure("hsic", debiased=True)
    assert hsic.prepare_key() == hsic_u.prepare_key() != cka.prepare_key()
    px, py = hsic.prepare(x), hsic.prepare(y)
    for m in (hsic, hsic_u):
        assert float(m.compare_prepared(px, py)) == pytest.approx(m(x, y), rel=1e-12)
    # the unbiased estimator's minimum n holds also on objects prepared by the biased one
    small = cka.prepare(x[:3]), cka.prepare(y[:3])
    with pytest.raises(InsufficientSamplesError, match="at least 4"):
        rbf.compare_prepared(*small)


# ------------------------------------------------------------------ errors
def test_invalid_parameters():
    with pytest.raises(InvalidParameterError):
        repscope.measure("cka", kernel="laplace")
    with pytest.raises(InvalidParameterError):
        repscope.measure("cka", sigma=0.0)
    with pytest.raises(InvalidParameterError):
        repscope.measure("hsic", debiased="yes")
    with pytest.raises(InvalidParameterError):
        repscope.measure("cka", bandwidth=1.0)


def test_too_few_samples(rng):
    x = rng.normal(size=(3, 2))
    with pytest.raises(InsufficientSamplesError):
        repscope.measure("cka", debiased=True)(x, x)


def test_small_n_warns(rng):
    x, y = _pair(rng, 8, 2, 2)
    with pytest.warns(DegeneracyWarning, match="small for an HSIC"):
        repscope.measure("cka")(x, y)


@pytest.mark.parametrize("gram", [False, True])
def test_debiased_cka_of_equidistant_points_raises(gram):
    x = np.eye(4)  # a regular simplex: every U-centred linear kernel entry is 0
    y = np.arange(8.0).reshape(4, 2) ** 2
    m = _force_path(repscope.measure("cka", debiased=True), gram)
    with pytest.raises(DegenerateInputError, match="HSIC of a representation"):
        m(x, y)
