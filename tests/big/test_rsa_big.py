"""RSA beyond memory: the exact blocked path equals the in-memory one; subsets estimate it."""

import numpy as np
import pytest

import repscope
from repscope.core.errors import MemoryBudgetError


def pair(n=700, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 24))
    y = x @ rng.standard_normal((24, 16)) + 2.0 * rng.standard_normal((n, 16))
    return x, y


@pytest.mark.parametrize("rdm", ["correlation", "cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("compare", ["spearman", "pearson", "cosine"])
def test_blocked_equals_exact(rdm, compare):
    x, y = pair()
    exact = repscope.measure("rsa", rdm=rdm, compare=compare)(x, y)
    m = repscope.measure("rsa", rdm=rdm, compare=compare, path="exact-blocked", memory="1GiB")
    est = m.estimate(x, y)
    assert est.path == "exact-blocked"
    assert est.value == pytest.approx(exact, abs=1e-10)


def test_blocked_float32_and_memmap(tmp_path):
    x, y = pair()
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    np.save(tmp_path / "x.npy", x32)
    np.save(tmp_path / "y.npy", y32)
    xm, ym = np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy",
                                                                mmap_mode="r")
    exact = repscope.measure("rsa")(x32, y32)
    m = repscope.measure("rsa", path="exact-blocked", memory="1GiB")
    assert m.estimate(xm, ym).value == pytest.approx(exact, abs=1e-10)


def test_pearson_blocked_under_a_tiny_budget():
    x, y = pair(3000)
    m = repscope.measure("rsa", compare="pearson", memory="8MiB")
    assert m.plan(3000, 24, 16).path == "exact-blocked"
    assert m(x, y) == pytest.approx(repscope.measure("rsa", compare="pearson")(x, y), abs=1e-10)


def test_estimated_under_a_tiny_budget_with_interval():
    x, y = pair(3000)
    exact = repscope.measure("rsa")(x, y)
    m = repscope.measure("rsa", memory="8MiB")
    assert m.plan(3000, 24, 16).path == "estimated"
    est = m.estimate(x, y, seed=3)
    assert est.path == "estimated"
    assert est.ci_low < est.value < est.ci_high
    assert est.ci_low <= exact <= est.ci_high
    assert est.detail["subsets"] >= 2
    assert abs(est.value - exact) < 0.05
    # fixed seed: the same estimate
    assert m.estimate(x, y, seed=3).value == est.value
    res = repscope.compare(x, y, ["rsa"], memory="8MiB", seed=3)
    assert res["rsa"]["path"] == "estimated"
    assert res["rsa"]["value"] == est.value
    assert res["rsa"]["ci_low"] == pytest.approx(est.ci_low)


def test_kendall_has_no_blocked_path():
    m = repscope.measure("rsa", compare="kendall", memory="8MiB")
    assert m.blocked_bytes(3000, 24, 16) is None
    assert m.plan(3000, 24, 16).path == "estimated"


def test_exact_blocked_refuses_when_the_budget_is_too_small():
    with pytest.raises(MemoryBudgetError, match="rsa"):
        repscope.measure("rsa", path="exact-blocked", memory="8MiB").plan(3000, 24, 16)


def test_blocked_spearman_over_many_binades():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 3)) * 10.0 ** rng.uniform(-0.4, 0.4, (400, 1))
    y = x + 0.1 * rng.standard_normal((400, 3))
    exact = repscope.measure("rsa", rdm="sqeuclidean")(x, y)
    m = repscope.measure("rsa", rdm="sqeuclidean", path="exact-blocked", memory="4GiB")
    assert m.estimate(x, y).value == pytest.approx(exact, abs=1e-10)
    # values over dozens of binades need more rank tables than the budget: a clean refusal
    wide = rng.standard_normal((300, 3)) * 10.0 ** rng.uniform(-3, 3, (300, 1))
    m = repscope.measure("rsa", rdm="sqeuclidean", path="exact-blocked", memory="600MiB")
    with pytest.raises(MemoryBudgetError, match="binades"):
        m.estimate(wide, wide)
