"""d_{f,g} as an interval: the subset search certified against enumeration, and the bounds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from repscope.identifiability import (
    SoftmaxModel,
    circle_model,
    llv_distance,
    permuted_circle_pair,
    perturbed_models,
    representation_dissimilarity,
)
from repscope.identifiability.dissimilarity import bound_check
from repscope.identifiability.subset_search import subset_bounds
from repscope.measures.m_svd import standardize


def _sides(a: SoftmaxModel, b: SoftmaxModel) -> tuple[np.ndarray, np.ndarray, object]:
    r = llv_distance(a, b, n_candidates=5)
    rest = [y for y in range(a.n_labels) if y not in (r.pivot, r.left_out)]
    za = standardize(a.F @ (a.G[rest] - a.G[r.pivot]).T, "a")
    zb = standardize(b.F @ (b.G[rest] - b.G[r.pivot]).T, "b")
    return za, zb, r


def _pair(kind: str, k: int, m: int, seed: int) -> tuple[SoftmaxModel, SoftmaxModel]:
    rng = np.random.default_rng(seed)
    f, g = rng.normal(size=(150, m)), 2 * rng.normal(size=(k, m))
    a = SoftmaxModel(f, g)
    if kind == "perturbed":
        return a, SoftmaxModel(f + 0.5 * rng.normal(size=f.shape),
                               g + 0.5 * rng.normal(size=g.shape))
    if kind == "independent":
        return a, SoftmaxModel(rng.normal(size=f.shape), rng.normal(size=g.shape))
    return a, SoftmaxModel(f, g[rng.permutation(k)])  # labels permuted


CASES = [(kind, k, m, seed) for seed in range(3) for kind in ("perturbed", "independent",
                                                              "permuted")
         for k, m in ((60, 3), (30, 5), (20, 8), (16, 7))]


@pytest.mark.parametrize(("kind", "k", "m", "seed"), CASES)
def test_search_equals_exhaustive_maximum(kind: str, k: int, m: int, seed: int) -> None:
    """C(K − 2, M) between 3 432 and 98 280 (≤ 10⁵): the search alone, without enumeration,
    finds the exhaustive maximum."""
    a, b = _pair(kind, k, m, seed)
    za, zb, _ = _sides(a, b)
    assert math.comb(k - 2, m) <= 100_000
    exhaustive = subset_bounds(za, zb, m)
    assert exhaustive.exact and exhaustive.method == "exhaustive"
    assert exhaustive.evaluations == math.comb(k - 2, m)
    found = subset_bounds(za, zb, m, max_enumerate=0, seed=seed)
    assert found.method == "search" and not found.exact
    assert found.lower == pytest.approx(exhaustive.lower, abs=1e-12)
    assert found.upper >= exhaustive.lower - 1e-12
    assert found.evaluations <= 20_000 + 256  # the budget (one batch may overrun it)


def test_paper_settings_are_enumerated_and_the_search_agrees() -> None:
    pairs = [permuted_circle_pair(rho, n_per_class=60, seed=0)[:2] for rho in (1.0, 20.0)]
    base = circle_model(18, 20.0, n_per_class=30, min_f_length=5.0, seed=0)
    pairs += [(base, model) for i, (_, _, model) in
              enumerate(perturbed_models(base, 0.05, 30, seed=0)) if i in (0, 29)]
    for a, b in pairs:
        za, zb, _ = _sides(a, b)
        ex = subset_bounds(za, zb, a.dim)
        found = subset_bounds(za, zb, a.dim, max_enumerate=0)
        assert found.lower == pytest.approx(ex.lower, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_bounds_bracket_the_maximum_and_sit_below_the_analytic_bound(seed: int) -> None:
    a, b = _pair("perturbed", 24, 4, seed)
    b = SoftmaxModel(b.F, a.G)  # only f perturbed
    za, zb, r = _sides(a, b)
    ex = subset_bounds(za, zb, 4)
    for budget in (50, 500):
        got = subset_bounds(za, zb, 4, max_enumerate=0, budget=budget, seed=seed)
        assert got.lower <= ex.lower + 1e-12 <= got.upper + 2e-12
        assert got.evaluations <= budget + 256  # one batch may overrun the budget
    # upper ≤ mean of the M largest (a_j + b_j)²/2 ≤ 2·T1² ≤ 2·T1 (T1 ≤ 1 here)
    got = subset_bounds(za, zb, 4, max_enumerate=0)
    assert r.t1 <= 1
    assert got.upper <= 2 * r.t1**2 + 1e-12 <= 2 * r.t1 + 1e-12


@pytest.mark.parametrize("kind", ["perturbed", "independent", "permuted"])
def test_certificate_makes_the_interval_exact(kind: str) -> None:
    """C(58, 3) = 30 856 > max_enumerate: search, then enumerate the labels that could
    still beat the value found; the interval closes on the exhaustive maximum."""
    a, b = _pair(kind, 60, 3, 1)
    za, zb, _ = _sides(a, b)
    ex = subset_bounds(za, zb, 3)
    cert = subset_bounds(za, zb, 3, max_enumerate=20_000)
    assert cert.method == "certified" and cert.exact and cert.lower == cert.upper
    assert cert.settings["relevant"] < 58
    assert cert.lower == pytest.approx(ex.lower, abs=1e-12)
    assert "certified exact" in cert.describe()


def test_large_equivalent_pair_is_an_exact_zero(rng: np.random.Generator) -> None:
    """K = 300, M = 16: far too many subsets to enumerate, and the interval is [0, 0]."""
    m = 16
    q1, _ = np.linalg.qr(rng.normal(size=(m, m)))
    q2, _ = np.linalg.qr(rng.normal(size=(m, m)))
    big_a = q1 @ np.diag(np.geomspace(1.0, 1e3, m)) @ q2
    a = SoftmaxModel(rng.normal(size=(400, m)), rng.normal(size=(300, m)) / 2)
    b = a.transformed(big_a, shift=rng.normal(size=m))
    r = llv_distance(a, b, n_candidates=20)
    d = representation_dissimilarity(a, b, r)
    assert r.distance < 1e-8 and r.lower < 1e-8
    assert d.lower < 1e-8 and d.upper < 1e-8 and d.exact
    assert "certified exact" in d.search["description"]


def test_searched_result_fields(rng: np.random.Generator) -> None:
    a, b = _pair("perturbed", 40, 5, 3)
    r = llv_distance(a, b, n_candidates=10)
    d = representation_dissimilarity(a, b, r, max_enumerate=0, budget=300)
    assert d.lower == d.d_fg == max(d.d_svd_f, d.d_svd_g)
    assert d.upper >= d.lower and d.upper <= d.analytic_upper + 1e-12
    assert len(d.label_subsets) == 1 and d.worst_subset == d.label_subsets[0]
    assert set(d.worst_subset).isdisjoint({r.pivot, r.left_out})
    out = d.to_dict()
    assert {"d_fg_lower", "d_fg_upper", "d_fg_exact", "d_fg_search",
            "d_fg_analytic_upper"} <= set(out)
    assert "budget 300" in out["d_fg_search"]
    # the value reported for the worst subset is that subset's own 1 − m_SVD
    za, zb, _ = _sides(a, b)
    rest = [y for y in range(40) if y not in (r.pivot, r.left_out)]
    pos = [rest.index(y) for y in d.worst_subset]
    c = za[:, pos].T @ zb[:, pos] / (za.shape[0] - 1)
    assert 1 - np.linalg.svd(c, compute_uv=False).mean() == pytest.approx(d.d_svd_f, abs=1e-12)


def test_bound_check_uses_the_lower_end(rng: np.random.Generator) -> None:
    a, b = _pair("perturbed", 12, 2, 1)
    r = llv_distance(a, b, n_candidates=10)
    d = representation_dissimilarity(a, b, r)
    check = bound_check(d, r)
    assert not check["falsified"] and check["checked_with"] == "lower end of d_fg"
    assert "only side that could falsify" in check["sentence"]
    assert "by construction" in check["sentence"]
    fake = dataclasses.replace(d, d_fg=4 * 2 * r.distance + 0.1)
    bad = bound_check(fake, r)
    assert bad["falsified"] and "fails here" in bad["sentence"]


def test_reparametrisation_at_language_model_scale(rng: np.random.Generator) -> None:
    """K = 1000 labels, M = 64, A of condition number 10³ and a shift of g: KL, d_LLV and
    both ends of d_{f,g} vanish within 1e-8 and m_CCA is 1 (the issue's criterion)."""
    from repscope.identifiability import kl_divergence, m_cca

    m, k = 64, 1000
    q1, _ = np.linalg.qr(rng.normal(size=(m, m)))
    q2, _ = np.linalg.qr(rng.normal(size=(m, m)))
    big_a = q1 @ np.diag(np.geomspace(1.0, 1e3, m)) @ q2
    assert np.linalg.cond(big_a) == pytest.approx(1e3, rel=1e-6)
    a = SoftmaxModel(rng.normal(size=(600, m)), rng.normal(size=(k, m)) / 4)
    b = a.transformed(big_a, shift=rng.normal(size=m))
    r = llv_distance(a, b, n_candidates=50)
    d = representation_dissimilarity(a, b, r)
    assert kl_divergence(a, b).forward < 1e-8
    assert r.distance < 1e-8 and r.lower < 1e-8
    assert d.lower < 1e-8 and d.upper < 1e-8
    assert m_cca(a.F, b.F) == pytest.approx(1.0, abs=1e-8)
