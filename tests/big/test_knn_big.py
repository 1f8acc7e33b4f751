"""Neighbourhood measures beyond memory: exact blocked lists, sampled-query estimates."""

import numpy as np
import pytest

import repscope
from repscope.core.errors import MemoryBudgetError
from repscope.measures._knn import knn
from repscope.measures.knn_big import query_neighbours

PER_QUERY = ["mutual_knn", "knn_jaccard", "rank_similarity"]


def pair(n=2500, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal((d, d)) + rng.standard_normal((n, d))
    return x, y


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_query_neighbours_equal_the_in_memory_lists(metric):
    x, _ = pair(1800, 24)
    ref = knn(x, 7, metric).indices
    assert np.array_equal(query_neighbours(x, np.arange(1800), 7, metric, budget=2**20), ref)
    q = np.array([5, 1799, 0, 42])
    assert np.array_equal(query_neighbours(x, q, 7, metric), ref[q])


def test_query_neighbours_break_ties_by_index():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (1200, 4)).astype(float) * 0.1  # many exact ties
    ref = knn(x, 10).indices
    assert np.array_equal(query_neighbours(x, np.arange(1200), 10, budget=2**20), ref)


@pytest.mark.parametrize("name", PER_QUERY)
def test_blocked_equals_exact_under_a_tiny_budget(name, tmp_path):
    x, y = pair()
    exact = repscope.measure(name)(x, y)
    m = repscope.measure(name, memory="8MiB")
    assert m.plan(2500, 12, 12).path == "exact-blocked"
    np.save(tmp_path / "x.npy", x)
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    est = m.estimate(xm, y)
    assert est.path == "exact-blocked" and est.value == exact


@pytest.mark.parametrize("name", PER_QUERY)
def test_sampled_queries_estimate_with_interval(name):
    x, y = pair(5000)
    exact = repscope.measure(name)(x, y)
    m = repscope.measure(name, path="estimated")
    est = m.estimate(x, y, seed=0)
    assert est.path == "estimated" and est.detail["queries"] >= 2048
    assert est.ci_low <= exact <= est.ci_high
    assert est.ci_high - est.ci_low < 0.05
    assert m.estimate(x, y, seed=0).value == est.value


def test_beyond_the_blocked_size_the_plan_estimates():
    m = repscope.measure("mutual_knn", memory="4GiB")
    assert m.plan(10**6, 768, 768).path == "estimated"
    assert m.plan(50_000, 768, 768).path == "exact"


def test_measures_without_per_query_values_refuse():
    with pytest.raises(MemoryBudgetError, match="cycle_knn"):
        repscope.measure("cycle_knn", memory="4GiB").plan(10**6, 768, 768)
