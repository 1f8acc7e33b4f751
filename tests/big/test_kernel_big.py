"""CKA and HSIC beyond memory: subsets with the bandwidth fixed first."""

import numpy as np
import pytest

import repscope
from repscope.core.errors import MemoryBudgetError
from repscope.measures._kernels import median_distance, sq_distances
from repscope.measures.kernel_estimate import _median_distance, fixed_bandwidth


def pair(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16))
    y = np.tanh(x @ rng.standard_normal((16, 12))) + 0.5 * rng.standard_normal((n, 12))
    return x, y


def test_blocked_median_equals_the_in_memory_one():
    x, _ = pair(401)
    assert _median_distance(x) == pytest.approx(float(median_distance(sq_distances(x))),
                                                rel=1e-12)
    # the bandwidth sample is seeded and stated: the same rows every time
    assert fixed_bandwidth(x, 0.8) == fixed_bandwidth(x, 0.8)


@pytest.mark.parametrize("name, params", [
    ("cka", {"kernel": "rbf"}), ("cka", {"kernel": "rbf", "debiased": True}),
    ("hsic", {"kernel": "rbf", "debiased": True}), ("cka", {"debiased": True}),
])
def test_subset_estimate_covers_the_debiased_value(name, params):
    x, y = pair()
    exact = repscope.measure(name, **{**params, "debiased": True})(x, y)
    m = repscope.measure(name, path="estimated", memory="64MiB", **params)
    est = m.estimate(x, y, seed=0)
    assert est.path == "estimated"
    assert est.ci_low <= exact <= est.ci_high
    assert m.estimate(x, y, seed=0).value == est.value


def test_tiny_budget_plans_an_estimate_for_rbf():
    m = repscope.measure("cka", kernel="rbf", memory="64MiB")
    assert m.plan(3000, 16, 12).path == "estimated"
    assert repscope.measure("cka", kernel="rbf").plan(3000, 16, 12).path == "exact"
    assert repscope.measure("cka", memory="4GiB", kernel="rbf").plan(10**6, 768, 768).path \
        == "estimated"
    with pytest.raises(MemoryBudgetError):
        repscope.measure("cka", kernel="rbf", memory="1MiB").plan(3000, 16, 12)


def test_compare_reports_the_estimate():
    x, y = pair()
    res = repscope.compare(x, y, [("cka", {"kernel": "rbf"})], memory="64MiB")
    row = res["cka"]
    assert row["path"] == "estimated" and row["ci_low"] < row["value"] < row["ci_high"]


def test_unbiased_distance_correlation_on_subsets():
    x, y = pair()
    exact = repscope.measure("distance_correlation_sq_unbiased")(x, y)
    m = repscope.measure("distance_correlation_sq_unbiased", memory="32MiB")
    assert m.plan(3000, 16, 12).path == "estimated"
    est = m.estimate(x, y, seed=0)
    assert est.ci_low <= exact <= est.ci_high and est.detail["subsets"] >= 2
    # the V-statistic dCor has no estimate (its bias at the subset size is not small)
    with pytest.raises(MemoryBudgetError, match="distance_correlation"):
        repscope.measure("distance_correlation", memory="32MiB").plan(3000, 16, 12)
