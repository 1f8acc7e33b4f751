"""Honest p-values: the floor 1/(m+1), BH and Holm, underpowered cells, automatic m."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import repscope
from repscope import inference
from repscope.core.errors import InvalidParameterError
from repscope.engine.compare import compare
from repscope.engine.grid import grid
from repscope.inference import multiple_testing as mt
from repscope.inference.options import Stats


# ------------------------------------------------------- independent definitions
def _bh_reference(p: np.ndarray, q: float) -> np.ndarray:
    """BH as the step-up rule of the 1995 paper: reject p₍₁₎…p₍k₎, k = max{i: p₍ᵢ₎ ≤ iq/F}."""
    f = len(p)
    srt = np.sort(p)
    ok = [i for i in range(1, f + 1) if srt[i - 1] <= i * q / f]
    if not ok:
        return np.zeros(f, dtype=bool)
    return p <= srt[max(ok) - 1]


def _holm_reference(p: np.ndarray, q: float) -> np.ndarray:
    """Holm as the step-down rule: reject in order while p₍ᵢ₎ ≤ q/(F − i + 1)."""
    f = len(p)
    out = np.zeros(f, dtype=bool)
    for i, j in enumerate(np.argsort(p, kind="stable"), start=1):
        if p[j] > q / (f - i + 1):
            break
        out[j] = True
    return out


def _bh_adjusted_bruteforce(p: np.ndarray) -> np.ndarray:
    """statsmodels' 'fdr_bh' values, re-derived: min over ranks j ≥ rank(i) of F·p₍ⱼ₎/j."""
    f = len(p)
    rank = {j: r for r, j in enumerate(np.argsort(p, kind="stable"), start=1)}
    out = np.empty(f)
    for i in range(f):
        out[i] = min(min(1.0, f * p[j] / rank[j]) for j in range(f) if rank[j] >= rank[i])
    return out


def _holm_adjusted_bruteforce(p: np.ndarray) -> np.ndarray:
    """statsmodels' 'holm' values, re-derived: max over ranks j ≤ rank(i) of (F − j + 1)·p₍ⱼ₎."""
    f = len(p)
    rank = {j: r for r, j in enumerate(np.argsort(p, kind="stable"), start=1)}
    out = np.empty(f)
    for i in range(f):
        out[i] = max(min(1.0, (f - rank[j] + 1) * p[j]) for j in range(f) if rank[j] <= rank[i])
    return out


# --------------------------------------------------------------- adjustments
def test_bh_and_holm_on_a_hand_computed_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 → F·p/rank = 0.02, 0.02, 0.04, 0.04 (already monotone)
    assert mt.bh_adjust(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # (F − rank + 1)·p = 0.02, 0.03, 0.06, 0.04 → running max 0.02, 0.03, 0.06, 0.06
    assert mt.holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert mt.adjust(p, "holm") == pytest.approx(mt.holm_adjust(p))


def test_adjusted_values_are_capped_monotone_and_tie_consistent() -> None:
    assert mt.bh_adjust([0.9, 0.8]) == pytest.approx([0.9, 0.9])
    assert mt.holm_adjust([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    for fn in (mt.bh_adjust, mt.holm_adjust):
        tied = fn([0.02, 0.02, 0.5])
        assert tied[0] == tied[1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=25), st.sampled_from([0.01, 0.05, 0.2]))
def test_adjustments_match_the_independent_definitions(ps: list[float], q: float) -> None:
    p = np.asarray(ps)
    assert mt.bh_adjust(p) == pytest.approx(_bh_adjusted_bruteforce(p), abs=1e-12)
    assert mt.holm_adjust(p) == pytest.approx(_holm_adjusted_bruteforce(p), abs=1e-12)
    np.testing.assert_array_equal(mt.bh_adjust(p) <= q, _bh_reference(p, q))
    np.testing.assert_array_equal(mt.holm_adjust(p) <= q, _holm_reference(p, q))
    assert np.all(mt.holm_adjust(p) >= mt.bh_adjust(p) - 1e-15)  # Holm is the stricter


def test_bad_inputs_raise() -> None:
    with pytest.raises(InvalidParameterError):
        mt.bh_adjust([0.1, float("nan")])
    with pytest.raises(InvalidParameterError):
        mt.holm_adjust([])
    with pytest.raises(InvalidParameterError):
        mt.adjust([0.1], "bonferroni")
    with pytest.raises(InvalidParameterError):
        mt.classify([0.1], q=1.5)
    with pytest.raises(InvalidParameterError):
        Stats(adjust="fdr")


# ------------------------------------------------------------- underpowered
def test_a_cell_that_cannot_reach_significance_is_underpowered() -> None:
    nulls = [0.5] * 15
    # m = 20: floor 1/21; a lone cell at its floor has BH value 16/21 > 0.05
    _, v = mt.classify([1 / 21, *nulls], [1 / 21] * 16)
    assert v[0] == "underpowered" and set(v[1:]) == {"underpowered"}
    # m = 320: floor 1/321 < 0.05/16, so the cell at its floor is significant and the
    # others could have been: they are "not significant", not "underpowered"
    _, v = mt.classify([1 / 321, *nulls], [1 / 321] * 16)
    assert v[0] == "significant" and set(v[1:]) == {"not significant"}
    # unknown floors: never "underpowered"
    _, v = mt.classify([0.3, 0.5], None)
    assert v == ["not significant", "not significant"]


def test_underpowered_depends_on_the_rest_of_the_family_under_bh() -> None:
    # every cell at the floor 1/21 ≤ q: BH rejects them all (k = F), so nothing is underpowered
    adj, v = mt.classify([1 / 21] * 16, [1 / 21] * 16)
    assert set(v) == {"significant"} and adj == pytest.approx([16 / 21 / 16] * 16)
    _, v = mt.classify([1 / 21] * 16, [1 / 21] * 16, method="holm")
    assert set(v) == {"underpowered"}


# ---------------------------------------------------------------- floors and m
def test_pvalue_floor_and_the_auto_permutation_rule() -> None:
    assert mt.pvalue_floor(200) == 1 / 201
    assert mt.pvalue_floor(200, "two-sided") == 2 / 201
    assert mt.permutations_needed(1) == 20 and mt.permutations_needed(16) == 320
    assert mt.permutations_needed(16, alternative="two-sided") == 640
    assert mt.permutations_needed(91) == 1820
    assert mt.permutations_for_family(16, minimum=500) == 500
    assert mt.permutations_for_family(16, cap=100) == 100
    assert mt.permutations_for_family(16, minimum=150, cap=100) == 150


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3000), st.sampled_from([0.01, 0.05, 0.1, 0.2, 0.3]),
       st.sampled_from(["more_similar", "two-sided"]))
def test_needed_permutations_are_the_smallest_with_the_floor_below_q_over_f(
        f: int, q: float, alternative: str) -> None:
    m = mt.permutations_needed(f, q, alternative)
    assert mt.pvalue_floor(m, alternative) < q / f
    assert m == 1 or mt.pvalue_floor(m - 1, alternative) >= q / f


def test_stats_for_family() -> None:
    assert Stats(n_permutations=20).for_family(16).n_permutations == 320
    assert Stats(n_permutations=1000).for_family(16).n_permutations == 1000
    assert Stats(n_permutations=20, max_permutations=100).for_family(16).n_permutations == 100
    assert Stats(n_permutations=20, auto_permutations=False).for_family(16).n_permutations == 20
    assert Stats(n_permutations=20, q=0.1).for_family(16).n_permutations == 160
    assert Stats().for_family(16) == Stats()  # no tests, nothing to raise
    assert "q" not in Stats(n_permutations=20).as_key()


def test_format_pvalue_marks_the_floor() -> None:
    assert mt.format_pvalue(1 / 201, 1 / 201) == "≤ 0.00498"
    assert mt.format_pvalue(3 / 201, 1 / 201) == "0.0149"
    assert mt.format_pvalue(0.02, None) == "0.02"
    assert mt.format_pvalue(None) == ""


# ------------------------------------------------ tables: observation 1 (regression)
def _related(rng: np.random.Generator, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 6))
    return x, x @ rng.normal(size=(6, 5)) + 0.1 * rng.normal(size=(n, 5))


def test_table_prints_the_floor_as_an_upper_bound(rng) -> None:
    """Observation: p-values printed as 0.00498 — the floor — with no mark."""
    x, y = _related(rng)
    res = compare(x, y, ["cka"], stats={"n_permutations": 200}, seed=0)
    row = res["cka"]
    assert row["pvalue"] == row["p_floor"] == 1 / 201
    text = str(res)
    assert "≤ 0.00498" in text
    assert text.count("0.00498") == text.count("≤ 0.00498")
    assert row["significance"] == "significant" and "this table" in row["family"]


def test_compare_table_is_one_family_and_raises_m(rng) -> None:
    x, y = _related(rng)
    measures = ["cka", "procrustes", "rsa", "mutual_knn", "distance_correlation"]
    res = compare(x, y, measures, stats={"n_permutations": 20}, seed=0)
    assert {r["p_floor"] for r in res} == {1 / 101}  # 5 tests: m = ⌊5/0.05⌋ = 100
    assert {r["family"] for r in res} == {"the measures of this table: 5 tests, BH q = 0.05"}
    again = res.adjust_pvalues("holm", 0.01)
    assert {r["family"] for r in again} == {"this table: 5 tests, Holm q = 0.01"}
    assert again.column("p_adjusted") == pytest.approx(
        mt.holm_adjust(res.column("pvalue")).tolist())


def _grid_reps(rng: np.random.Generator, n: int = 48) -> dict:
    """Two models of four layers; only (A, l0) and (B, l0) are related."""
    base = rng.normal(size=(n, 4))
    reps = {}
    for model in ("A", "B"):
        for layer in range(4):
            noise = rng.normal(size=(n, 4))
            reps[(model, layer)] = base + 0.2 * noise if layer == 0 else noise
    return reps


def test_grid_raises_m_per_figure_and_adjusts_per_figure(rng) -> None:
    table = grid(_grid_reps(rng), ["cka"], stats={"n_permutations": 20}, seed=0)
    assert {r["p_floor"] for r in table} == {1 / 321}  # 16 cells: m = 320
    assert {r["stats"] for r in table} == {
        '{"alternative":"more_similar","n_permutations":320}'}
    assert {r["family"] for r in table} == {
        "the cells of one figure (measure=cka, model_a=A, model_b=B): 16 tests, BH q = 0.05"}
    verdict = {(r["layer_a"], r["layer_b"]): r["significance"] for r in table}
    assert verdict.pop((0, 0)) == "significant"
    assert set(verdict.values()) == {"not significant"}


def test_grid_at_its_budget_marks_underpowered_not_not_significant(rng) -> None:
    st = Stats(n_permutations=20, max_permutations=100)
    table = grid(_grid_reps(rng), ["cka"], stats=st, seed=0)
    assert {r["p_floor"] for r in table} == {1 / 101}
    related = [r for r in table if r["layer_a"] == r["layer_b"] == 0][0]
    assert related["pvalue"] == related["p_floor"]  # as extreme as p can be at m = 100 …
    assert {r["significance"] for r in table} == {"underpowered"}  # … and still not enough
    assert "≤ 0.0099" in str(table) and "underpowered" in str(table)


def test_permutation_test_result_knows_its_floor(rng) -> None:
    x, y = _related(rng)
    res = inference.permutation_test("cka", x, y, 50, seed=0, alternative="two-sided")
    assert res.p_floor == 2 / 51 and res.pvalue == res.p_floor
    assert isinstance(repscope.inference.multiple_testing.SIGNIFICANCE, tuple)
