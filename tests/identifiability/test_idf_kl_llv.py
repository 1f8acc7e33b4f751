"""KL divergence and d_LLV against independent reference computations."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from scipy.stats import entropy

from repscope.core.errors import InputShapeError, InsufficientSamplesError, InvalidParameterError
from repscope.identifiability import (
    DiversityConditionError,
    SoftmaxModel,
    kl_divergence,
    llv_distance,
)
from repscope.identifiability.llv import _choose_input_set, draw_candidate_sets


def _pair(rng: np.random.Generator, n: int = 24, k: int = 5, m: int = 2, noise: float = 0.5
          ) -> tuple[SoftmaxModel, SoftmaxModel]:
    f, g = rng.normal(size=(n, m)), rng.normal(size=(k, m)) * 2
    a = SoftmaxModel(f, g)
    b = SoftmaxModel(f + noise * rng.normal(size=f.shape), g + noise * rng.normal(size=g.shape))
    return a, b


# ------------------------------------------------------------------ KL
def test_kl_matches_scipy_entropy(rng: np.random.Generator) -> None:
    a, b = _pair(rng)
    pa, pb = a.probabilities(), b.probabilities()
    fwd = np.mean([entropy(pa[i], pb[i]) for i in range(a.n_inputs)])
    rev = np.mean([entropy(pb[i], pa[i]) for i in range(a.n_inputs)])
    res = kl_divergence(a, b)
    assert res.forward == pytest.approx(fwd, rel=1e-10)
    assert res.reverse == pytest.approx(rev, rel=1e-10)
    assert float(res) == res.value == res.forward
    assert res.per_input_forward.shape == (a.n_inputs,)
    assert res.forward != pytest.approx(res.reverse)  # asymmetric


def test_kl_zero_for_equivalent_models(rng: np.random.Generator) -> None:
    a, _ = _pair(rng)
    b = a.transformed(np.array([[2.0, 1.0], [0.5, -1.0]]), shift=[3.0, -2.0])
    res = kl_divergence(a, b)
    assert res.forward < 1e-12 and res.reverse < 1e-12


def test_kl_handles_underflowing_probabilities() -> None:
    f = np.array([[50.0, 0.0], [0.0, 50.0], [-50.0, 10.0]])
    g = np.array([[30.0, 0.0], [0.0, 30.0], [-30.0, -30.0]])
    a, b = SoftmaxModel(f, g), SoftmaxModel(f, g[[1, 0, 2]])
    res = kl_divergence(a, b)
    assert np.isfinite(res.forward) and res.forward > 100


def test_kl_shape_errors(rng: np.random.Generator) -> None:
    a, _ = _pair(rng)
    with pytest.raises(InputShapeError):
        kl_divergence(a, _pair(rng, n=25)[0])
    # different M is allowed for KL
    c = SoftmaxModel(rng.normal(size=(24, 3)), rng.normal(size=(5, 3)))
    assert kl_divergence(a, c).forward > 0


# ------------------------------------------------------------------ d_LLV reference
def _sd(values: list[float]) -> float:
    return statistics.stdev(values)


def _naive_t2(la: np.ndarray, lb: np.ndarray, iset: tuple[int, ...]) -> tuple[float, float]:
    k = la.shape[1]
    x0 = iset[0]
    terms, diffs = [], []
    for xi in iset[1:]:
        ta = _sd([la[xi, y] - la[x0, y] for y in range(k)])
        tb = _sd([lb[xi, y] - lb[x0, y] for y in range(k)])
        terms.append(_sd([la[xi, y] / ta - lb[xi, y] / tb for y in range(k)]))
        terms.append(_sd([la[x0, y] / ta - lb[x0, y] / tb for y in range(k)]))
        diffs.append(abs(ta - tb))
    return max(terms), max(diffs)


def _naive_llv(a: SoftmaxModel, b: SoftmaxModel, lam: float, iset: tuple[int, ...]
               ) -> dict[str, float]:
    """d_LLV straight from the definition with Python loops and statistics.stdev."""
    la, lb = a.log_likelihoods(), b.log_likelihoods()
    n, k = la.shape
    best = None
    for p in range(k):
        for lo in range(k):
            if lo == p:
                continue
            terms, diffs = [], []
            for y in range(k):
                if y in (p, lo):
                    continue
                sa = _sd([la[i, y] - la[i, p] for i in range(n)])
                sb = _sd([lb[i, y] - lb[i, p] for i in range(n)])
                terms.append(_sd([la[i, y] / sa - lb[i, y] / sb for i in range(n)]))
                terms.append(_sd([la[i, p] / sa - lb[i, p] / sb for i in range(n)]))
                diffs.append(abs(sa - sb))
            if best is None or max(terms) < best[0]:
                best = (max(terms), p, lo, max(diffs))
    assert best is not None
    t1, p, lo, t3 = best
    t2, t4 = _naive_t2(la, lb, iset)
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "pivot": p, "left_out": lo,
            "distance": max(t1, t2, lam * t3, lam * t4)}


@pytest.mark.parametrize("m", [1, 2, 3])
def test_llv_matches_naive_definition(rng: np.random.Generator, m: int) -> None:
    a, b = _pair(rng, n=20, k=6, m=m)
    iset = tuple(range(3, 3 + m + 1))
    ref = _naive_llv(a, b, 1e-5, iset)
    res = llv_distance(a, b, input_set=iset)
    for key in ("t1", "t2", "t3", "t4", "distance"):
        assert getattr(res, key) == pytest.approx(ref[key], rel=1e-10), key
    assert (res.pivot, res.left_out) == (ref["pivot"], ref["left_out"])
    assert res.input_set == iset and not res.searched
    assert len(res.labels) == 4 and res.pivot not in res.labels


def test_lambda_weights_scale_terms(rng: np.random.Generator) -> None:
    a, b = _pair(rng, noise=0.05)
    iset = (0, 1, 2)
    big = llv_distance(a, b, lam=1e3, input_set=iset)
    assert big.distance == pytest.approx(1e3 * max(big.t3, big.t4))
    s = llv_distance(a, b, lam=0.5, input_set=iset, aggregate="sum")
    assert s.distance == pytest.approx(s.t1 + s.t2 + 0.5 * (s.t3 + s.t4))


def test_mean_reduction(rng: np.random.Generator) -> None:
    a, b = _pair(rng)
    iset = (0, 1, 2)
    mx = llv_distance(a, b, input_set=iset, pivot=1, left_out=2)
    mn = llv_distance(a, b, input_set=iset, pivot=1, left_out=2, reduce="mean")
    assert mn.t1 == pytest.approx(np.mean(np.r_[mx.a_terms, mx.b_terms]))
    assert mn.t3 == pytest.approx(np.mean(np.abs(mx.sigma_a - mx.sigma_b)))
    assert mn.t4 == pytest.approx(np.mean(np.abs(mx.tau_a - mx.tau_b)))
    assert mn.t2 == pytest.approx(mx.t2)  # T2 is always a max
    assert mn.t1 <= mx.t1


def test_fixed_pivot_and_left_out(rng: np.random.Generator) -> None:
    a, b = _pair(rng)
    free = llv_distance(a, b, input_set=(0, 1, 2))
    fixed = llv_distance(a, b, input_set=(0, 1, 2), pivot=free.pivot, left_out=free.left_out)
    assert fixed.t1 == free.t1
    other = (free.pivot + 1) % 5
    assert llv_distance(a, b, input_set=(0, 1, 2), pivot=other).t1 >= free.t1


def test_input_search_picks_the_best_candidate(rng: np.random.Generator) -> None:
    a, b = _pair(rng, n=60, noise=0.2)
    res = llv_distance(a, b, n_candidates=15, seed=3)
    la, lb = a.log_likelihoods(), b.log_likelihoods()
    naive = [_naive_t2(la, lb, tuple(int(i) for i in s))[0] for s in res.candidate_sets]
    np.testing.assert_allclose(res.candidate_t2, naive, rtol=1e-10)
    below = [t for t in naive if t < 1]
    expected = res.candidate_sets[int(np.argmin(naive))] if below else res.candidate_sets[0]
    assert res.input_set == tuple(int(i) for i in expected)
    assert res.t2 == pytest.approx(min(naive) if below else naive[0])
    assert res.searched and res.seed == 3


def test_candidate_rule_keeps_first_when_none_below_one() -> None:
    assert _choose_input_set(np.array([1.5, 1.2, 3.0])) == 0
    assert _choose_input_set(np.array([1.5, 0.7, 0.3, 0.3])) == 2
    assert _choose_input_set(np.array([np.inf, 2.0, 1.1])) == 1
    with pytest.raises(DiversityConditionError):
        _choose_input_set(np.array([np.inf, np.inf]))


def test_candidate_sets_disjoint_when_possible() -> None:
    sets = draw_candidate_sets(30, 3, 10, np.random.default_rng(0))
    assert sets.shape == (10, 3) and len(set(sets.ravel().tolist())) == 30
    sets = draw_candidate_sets(10, 3, 8, np.random.default_rng(0))
    assert sets.shape == (8, 3)
    assert all(len(set(r.tolist())) == 3 for r in sets)


def test_determinism_under_a_fixed_seed(rng: np.random.Generator) -> None:
    a, b = _pair(rng, n=80)
    r1 = llv_distance(a, b, n_candidates=30, seed=11)
    r2 = llv_distance(a, b, n_candidates=30, seed=11)
    assert r1.distance == r2.distance and r1.input_set == r2.input_set
    np.testing.assert_array_equal(r1.candidate_sets, r2.candidate_sets)
    r3 = llv_distance(a, b, n_candidates=30, seed=12)
    assert not np.array_equal(r1.candidate_sets, r3.candidate_sets)
    g = np.random.default_rng(5)
    assert llv_distance(a, b, n_candidates=4, seed=g).seed is None


def test_zero_for_equivalent_models_whatever_the_choices(rng: np.random.Generator) -> None:
    a, _ = _pair(rng)
    b = a.transformed(np.array([[0.3, 2.0], [-1.0, 0.4]]), shift=[5.0, 1.0])
    res = llv_distance(a, b, n_candidates=5, seed=0)
    assert res.distance < 1e-9
    assert all(v < 1e-9 for v in (res.t1, res.t2, res.t3, res.t4))


def test_to_dict_is_complete(rng: np.random.Generator) -> None:
    a, b = _pair(rng)
    d = llv_distance(a, b, n_candidates=3).to_dict()
    assert {"d_llv", "t1", "t2", "t3", "t4", "pivot", "left_out", "input_set"} <= set(d)
    assert isinstance(d["input_set"], list)


def test_llv_errors(rng: np.random.Generator) -> None:
    a, b = _pair(rng)
    with pytest.raises(InputShapeError):
        llv_distance(a, _pair(rng, n=25)[0])
    with pytest.raises(InputShapeError):
        llv_distance(a, SoftmaxModel(rng.normal(size=(24, 3)), rng.normal(size=(5, 3))))
    for kwargs in ({"lam": -1.0}, {"lam": float("inf")}, {"n_candidates": 0},
                   {"aggregate": "min"}, {"reduce": "median"}):
        with pytest.raises(InvalidParameterError):
            llv_distance(a, b, **kwargs)
    for iset in ((0, 1), (0, 0, 1), (0, 1, 99)):
        with pytest.raises(InputShapeError):
            llv_distance(a, b, input_set=iset)
    with pytest.raises(InputShapeError):
        llv_distance(a, b, pivot=1, left_out=1)
    with pytest.raises(InputShapeError):
        llv_distance(a, b, pivot=7)
    small = SoftmaxModel(rng.normal(size=(10, 1)), rng.normal(size=(2, 1)))
    with pytest.raises(InsufficientSamplesError):
        llv_distance(small, small)


def test_llv_vanishing_scales(rng: np.random.Generator) -> None:
    f = rng.normal(size=(20, 2))
    g = rng.normal(size=(5, 2))
    g[2] = g[1]  # labels 1 and 2 share an unembedding
    a = SoftmaxModel(f, g)
    # leaving one of the twins out works; keeping both with the other as pivot cannot
    res = llv_distance(a, a, input_set=(0, 1, 2))
    assert res.distance < 1e-12
    with pytest.raises(DiversityConditionError, match="σ_y = 0"):
        llv_distance(a, a, input_set=(0, 1, 2), pivot=1, left_out=0)
    f2 = f.copy()
    f2[1] = f2[0]  # duplicate input: τ_1 = 0 for the set (0, 1, 2)
    b = SoftmaxModel(f2, g)
    with pytest.raises(DiversityConditionError, match="input_set"):
        llv_distance(b, b, input_set=(0, 1, 2))
