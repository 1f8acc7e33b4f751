"""Memory budgets: parsing, planning, refusal before allocation, the ``path`` column."""

import numpy as np
import pytest

import repscope
from repscope.core.errors import InvalidParameterError, MemoryBudgetError
from repscope.core.memory import default_budget, format_bytes, parse_memory


def pair(n=1500, dx=12, dy=9, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dx))
    y = x @ rng.standard_normal((dx, dy)) + 0.5 * rng.standard_normal((n, dy))
    return x, y


@pytest.mark.parametrize("text, value", [
    ("4GiB", 4 * 2**30), ("512MiB", 512 * 2**20), ("8MB", 8 * 10**6), ("1.5G", int(1.5 * 2**30)),
    (1024, 1024), ("2 kib", 2048), ("100", 100),
])
def test_parse_memory(text, value):
    assert parse_memory(text) == value


@pytest.mark.parametrize("bad", ["lots", "-1GiB", "4 parsecs", 0, True, [1]])
def test_parse_memory_rejects(bad):
    with pytest.raises(InvalidParameterError):
        parse_memory(bad)


def test_default_budget_is_positive():
    assert default_budget() >= 256 * 2**20
    assert parse_memory(None) == default_budget()
    assert format_bytes(3 * 2**30) == "3 GiB"


def test_refuses_before_allocating_and_states_largest_n():
    x, y = pair(3000)
    m = repscope.measure("rsm_norm_difference", memory="8MiB")
    with pytest.raises(MemoryBudgetError, match=r"n <= \d+") as exc:
        m(x, y)
    assert "8 MiB" in str(exc.value)
    n_max = m.plan(10, 12, 9).n_max
    assert 0 < n_max < 3000
    assert m.plan(n_max, 12, 9).path == "exact"
    # a budget that is enough: the same value as without one
    assert repscope.measure("rsm_norm_difference", memory="4GiB")(x, y) == \
        repscope.measure("rsm_norm_difference")(x, y)


def test_refusal_does_not_touch_the_data():
    class Untouchable:
        shape = (10**6, 768)

        def __getitem__(self, item):  # pragma: no cover - must not be called
            raise AssertionError("read")

        def __array__(self, *a, **k):  # pragma: no cover - must not be called
            raise AssertionError("read")

    with pytest.raises(MemoryBudgetError):
        repscope.measure("distance_correlation", memory="4GiB").compute(Untouchable(),
                                                                        Untouchable())


@pytest.mark.parametrize("name", ["cka", "procrustes", "mean_cca", "linear_regression", "nbs",
                                  "hsic", "svcca"])
def test_moment_measures_exact_blocked(name):
    x, y = pair()
    exact = repscope.measure(name)(x, y)
    m = repscope.measure(name, memory="512KiB")
    assert m.plan(*x.shape, y.shape[1]).path == "exact-blocked"
    est = m.estimate(x, y)
    assert est.path == "exact-blocked" and est.ci_low is None
    assert est.value == pytest.approx(exact, rel=1e-9, abs=1e-12)
    assert m(x, y) == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_path_keyword():
    x, y = pair(300)
    with pytest.raises(InvalidParameterError):
        repscope.measure("cka", path="fastest")
    with pytest.raises(InvalidParameterError):
        repscope.measure("distance_correlation", path="exact-blocked")(x, y)
    assert repscope.measure("cka", path="exact-blocked").estimate(x, y).path == "exact-blocked"


def test_compare_and_grid_record_paths():
    x, y = pair(3000)
    res = repscope.compare(x, y, ["cka", "rsm_norm_difference"], memory="1MiB")
    assert res["cka"]["path"] == "exact-blocked"
    assert res["cka"]["value"] == pytest.approx(repscope.measure("cka")(x, y), rel=1e-9)
    assert "MemoryBudgetError" in res["rsm_norm_difference"]["error"]
    assert repscope.compare(x, y, ["cka"])["cka"]["path"] == "exact"
    with pytest.raises(MemoryBudgetError):
        repscope.compare(x, y, ["rsm_norm_difference"], memory="1MiB", on_error="raise")
    g = repscope.grid({("a", 0): x, ("b", 0): y}, ["cka", "rsm_norm_difference"],
                      memory="1MiB")
    rows = {r["measure"]: r for r in g}
    assert rows["cka"]["path"] == "exact-blocked"
    assert rows["cka"]["value"] == pytest.approx(res["cka"]["value"], rel=1e-12)
    assert "MemoryBudgetError" in rows["rsm_norm_difference"]["error"]


def test_grid_resume_does_not_reuse_a_blocked_row_for_an_exact_one(tmp_path):
    x, y = pair(3000)
    db = tmp_path / "r.sqlite"
    reps = {("a", 0): x, ("b", 0): y}
    first = repscope.grid(reps, ["cka"], db=db, memory="1MiB")
    assert first[0]["path"] == "exact-blocked"
    again = repscope.grid(reps, ["cka"], db=db, memory="1MiB")  # resumed: the same row
    assert again[0]["timestamp"] == first[0]["timestamp"]
    exact = repscope.grid(reps, ["cka"], db=db)
    assert exact[0]["path"] == "exact"
    assert exact[0]["value"] == pytest.approx(first[0]["value"], rel=1e-9)
