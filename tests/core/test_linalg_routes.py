"""Fast linear-algebra routes agree with the reference decompositions, and fall back when not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import repscope
from repscope.core.linalg import congruence_lower, nuclear_norm, singular_values


def _random(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@settings(max_examples=25, deadline=None)
@given(p=st.integers(2, 40), q=st.integers(2, 40), seed=st.integers(0, 10_000))
def test_singular_values_match_svd_on_generic_matrices(p: int, q: int, seed: int) -> None:
    a = _random((p, q), seed)
    ref = np.linalg.svd(a, compute_uv=False)
    got = singular_values(a)
    assert got.shape == ref.shape
    assert np.all(np.diff(got) <= 1e-12 * ref[0])  # descending
    assert abs(got.sum() - ref.sum()) <= 1e-10 * ref.sum()


@pytest.mark.parametrize("rank", [1, 3, 10])
def test_rank_deficient_input_takes_the_svd(rank: int) -> None:
    # squaring would turn each zero singular value into ~sqrt(eps)·σ_max of noise
    a = _random((60, rank), 1) @ _random((rank, 50), 2)
    ref = np.linalg.svd(a, compute_uv=False)
    got = singular_values(a)
    assert abs(got.sum() - ref.sum()) <= 1e-12 * ref.sum()
    assert np.all(got[rank:] <= 1e-12 * ref[0])


def test_ill_conditioned_input_keeps_full_accuracy() -> None:
    u, _ = np.linalg.qr(_random((80, 80), 3))
    v, _ = np.linalg.qr(_random((80, 80), 4))
    s = np.logspace(0, -12, 80)
    a = (u * s) @ v.T
    assert abs(nuclear_norm(a) - s.sum()) <= 1e-12 * s.sum()


def test_singular_values_torch_matches_and_differentiates() -> None:
    a = torch.tensor(_random((12, 7), 5), requires_grad=True)
    ref = torch.linalg.svdvals(a.detach())
    assert torch.allclose(singular_values(a.detach()), ref, rtol=1e-10, atol=0)
    assert torch.autograd.gradcheck(lambda t: singular_values(t).sum(), (a,))


def test_congruence_lower_equals_matmul() -> None:
    b = _random((30, 30), 6)
    b = b @ b.T
    chol = np.linalg.cholesky(b + 30 * np.eye(30))
    k = _random((30, 30), 7)
    k = k + k.T
    ref = chol.T @ k @ chol
    got = congruence_lower(chol, k)  # NumPy: lower triangle (LAPACK sygst)
    np.testing.assert_allclose(np.tril(got), np.tril(ref), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.linalg.eigvalsh(got), np.linalg.eigvalsh(ref), atol=1e-9)
    t = congruence_lower(torch.from_numpy(chol), torch.from_numpy(k))
    np.testing.assert_allclose(t.numpy(), chol.T @ k @ chol, rtol=0, atol=1e-10)


def test_measures_reuse_per_representation_factors() -> None:
    """CCA and regression cache their whitening per prepared representation."""
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((200, 6)), rng.standard_normal((200, 5))
    for name, key in [("mean_cca", "inverse_cholesky"), ("svcca", "range_basis"),
                      ("linear_regression", "range_basis")]:
        m = repscope.measure(name)
        px, py = m.prepare(x, "X"), m.prepare(y, "Y")
        first = float(m.compare_prepared(px, py))
        assert key in px.cache
        cached = px.cache[key]
        assert float(m.compare_prepared(px, py)) == first
        assert px.cache[key] is cached
        assert first == pytest.approx(m(x, y), rel=1e-12)


def test_svcca_and_regression_share_one_decomposition_per_representation(monkeypatch) -> None:
    import repscope.core.linalg as linalg

    calls: list[tuple[int, ...]] = []
    original = linalg.psd_eigh
    monkeypatch.setattr(linalg, "psd_eigh", lambda a: calls.append(a.shape) or original(a))
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((200, 6)), rng.standard_normal((200, 5))
    svcca, reg = repscope.measure("svcca"), repscope.measure("linear_regression")
    assert svcca.prepare_key() == reg.prepare_key()
    px, py = svcca.prepare(x, "X"), svcca.prepare(y, "Y")
    values = (float(svcca.compare_prepared(px, py)), float(reg.compare_prepared(px, py)))
    assert sorted(calls) == [(5, 5), (6, 6)]  # one per representation, shared
    assert values[0] == pytest.approx(svcca(x, y), rel=1e-12)
    assert values[1] == pytest.approx(reg(x, y), rel=1e-12)


@pytest.mark.parametrize("shape", [(7, 30), (30, 7), (16, 16)])
def test_gram_eigenvalues_by_syrk_equal_the_symmetrised_gram(shape: tuple[int, int]) -> None:
    from repscope.core.linalg import _gram_eigenvalues

    a = _random(shape, 5)
    for columns in (True, False):
        g = a.T @ a if columns else a @ a.T
        ref = np.linalg.eigvalsh((g + g.T) / 2)
        got = _gram_eigenvalues(a, columns)  # NumPy float64: BLAS SYRK, one triangle
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * ref[-1])
        t = _gram_eigenvalues(torch.from_numpy(a), columns)  # torch: GEMM + symmetrise
        np.testing.assert_allclose(t.numpy(), ref, rtol=0, atol=1e-12 * ref[-1])
    # non-contiguous input (a transposed view) gives the same values
    np.testing.assert_allclose(_gram_eigenvalues(np.asfortranarray(a), True),
                               _gram_eigenvalues(a, True), rtol=0, atol=1e-12 * ref[-1])
