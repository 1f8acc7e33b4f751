"""Confidence intervals for a named estimand: the bias-corrected jackknife and its defaults.

The observations these tests pin down (measured on repscope 0.2): the percentile
bootstrap interval excluded its own estimate on the README quick-start pair and
on 20 of 20 independent pairs at n = 40, d = 10 for cka, nbs, procrustes,
mean_cca, linear_regression and distance_correlation (the bias-corrected estimator, now
named distance_correlation_sq_unbiased).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sqlite3
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

import repscope
from repscope import inference
from repscope.cli.main import app
from repscope.core.errors import InvalidParameterError, RepscopeError, RepscopeWarning
from repscope.engine.table import ResultTable
from repscope.inference.intervals import (
    JACKKNIFE_GROUPS,
    grouped_jackknife,
    jackknife_groups,
    jackknife_interval,
)
from repscope.inference.options import CI_METHODS, DEFAULT_CI_METHOD, Stats
from repscope.storage.results_db import COLUMNS, IDENTITY_COLUMNS, ResultsDB
from repscope.study.spec import StudySpecError, parse_study

SIX = ("cka", "nbs", "procrustes", "mean_cca", "linear_regression",
       "distance_correlation_sq_unbiased")
ROOT = Path(__file__).resolve().parents[1]


def quiet_ci(measure: Any, x: np.ndarray, y: np.ndarray, **kw: Any) -> inference.BootstrapResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RepscopeWarning)
        return inference.bootstrap_ci(measure, x, y, kw.pop("n_boot", 200), **kw)


def cka_model(d: int, snr: float, seed: int = 0) -> tuple[np.ndarray, float]:
    """Joint covariance of (X, Y = XA + E) and its population linear CKA."""
    g = np.random.default_rng(seed)
    a = g.normal(size=(d, d)) / np.sqrt(d)
    sxx = np.diag(1.0 / np.arange(1, d + 1))
    sxy = sxx @ a
    syy = a.T @ sxx @ a + np.trace(a.T @ sxx @ a) / d / snr * np.eye(d)
    pop = np.sum(sxy**2) / (np.linalg.norm(sxx) * np.linalg.norm(syy))
    return np.block([[sxx, sxy], [sxy.T, syy]]), float(pop)


# ------------------------------------------------------------ regressions
def test_readme_quick_start_intervals_hold_their_estimates() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 64))
    y = np.tanh(x @ rng.normal(size=(64, 32)))
    res = repscope.compare(x, y, measures=["cka", "procrustes", "mean_cca"],
                           stats=["permutation", "bootstrap"])
    for r in res:
        assert r["ci_low"] <= r["estimate"] <= r["ci_high"], r["measure"]
        assert r["ci_high"] > r["ci_low"]
    cka = res["cka"]
    assert abs(cka["value"] - cka["estimate"]) < 0.1  # a small correction at n = 500
    assert "estimate" in str(res).splitlines()[0]  # shown where it differs from value


@pytest.mark.parametrize("relation", ["independent", "related"])
def test_small_n_intervals_hold_their_estimates(relation: str) -> None:
    """n = 40, d = 10: where the percentile interval excluded the estimate in 20 of 20 pairs."""
    rng = np.random.default_rng(1 if relation == "independent" else 2)
    values: dict[str, list[float]] = {m: [] for m in SIX}
    estimates: dict[str, list[float]] = {m: [] for m in SIX}
    for seed in range(20):
        x = rng.normal(size=(40, 10))
        y = rng.normal(size=(40, 10)) + (x @ rng.normal(size=(10, 10)) if relation == "related"
                                         else 0.0)
        for m in SIX:
            res = quiet_ci(m, x, y, seed=seed)
            lo, hi = res.confidence_interval
            assert lo <= res.estimate <= hi, (m, seed, res)
            values[m].append(res.statistic)
            estimates[m].append(res.estimate)
    if relation == "independent":  # the estimand is 0 for these; the plug-in is far above it
        for m in ("cka", "linear_regression"):
            assert np.mean(values[m]) > 0.15
            assert abs(np.mean(estimates[m])) < 0.05, m


def test_independent_dcor_interval_reaches_the_permutation_null() -> None:
    """Bias-corrected dCor² of independent data: the interval covers 0 and the permutation
    null's centre."""
    rng = np.random.default_rng(3)
    hits = 0
    for seed in range(20):
        x, y = rng.normal(size=(40, 10)), rng.normal(size=(40, 10))
        ci = quiet_ci("distance_correlation_sq_unbiased", x, y, seed=seed)
        pt = inference.permutation_test("distance_correlation_sq_unbiased", x, y, 100, seed=seed)
        lo, hi = ci.confidence_interval
        assert lo <= ci.estimate <= hi
        hits += lo <= 0.0 <= hi and lo <= pt.null_mean <= hi
    assert hits >= 18
    pct = quiet_ci("distance_correlation_sq_unbiased", x, y, seed=0, method="percentile")
    assert pct.confidence_interval.low > pt.null_mean  # what the default no longer does


def test_fast_coverage_of_population_cka() -> None:
    """60 replicates of n = 40, d = 10: coverage ≈ 96 % (benchmarks/coverage.py, 500 each).

    A correct method covers at least 51 of 60 with probability > 0.99 (binomial at 0.95);
    the percentile interval covers about 10 %.
    """
    cov, pop = cka_model(10, 0.3)
    chol = np.linalg.cholesky(cov)
    rng = np.random.default_rng(11)
    jk = pct = 0
    for seed in range(60):
        z = rng.normal(size=(40, 20)) @ chol.T
        x, y = z[:, :10], z[:, 10:]
        lo, hi = quiet_ci("cka", x, y, seed=seed).confidence_interval
        jk += lo <= pop <= hi
        if seed < 20:
            lo, hi = quiet_ci("cka", x, y, seed=seed, method="percentile",
                              n_boot=100).confidence_interval
            pct += lo <= pop <= hi
    assert sps.binom.cdf(jk, 60, 0.95) > 1e-3 and jk >= 51
    assert pct <= 10


@pytest.mark.slow
def test_coverage_benchmark_quick_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The coverage study itself (``benchmarks/coverage.py --quick``, a few minutes)."""
    spec = importlib.util.spec_from_file_location("coverage_bench",
                                                  ROOT / "benchmarks" / "coverage.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    monkeypatch.setitem(sys.modules, "coverage_bench", mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    out = tmp_path / "c.json"
    assert mod.main(["--quick", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    for r in rows:
        assert r["jackknife_contains_estimate"] == 1.0
        if r["measure"] in ("cka", "linear_regression") and r["relation"] != "independent":
            assert 0.88 <= r["jackknife"] <= 1.0, r
            assert r["percentile"] < 0.9, r


# ------------------------------------------------------------ formulas
def test_grouped_jackknife_of_a_mean_is_the_mean_and_pseudovalues_are_group_means() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=23)
    labels = jackknife_groups(23, 5, rng)  # sizes 5, 5, 5, 4, 4
    sizes = np.bincount(labels)
    assert sorted(sizes) == [4, 4, 5, 5, 5]
    deleted = np.array([x[labels != g].mean() for g in range(5)])
    est, var = grouped_jackknife(x.mean(), deleted, sizes)
    assert est == pytest.approx(x.mean(), abs=1e-12)
    means = np.array([x[labels == g].mean() for g in range(5)])
    h = 23 / sizes
    assert var == pytest.approx(np.sum((means - x.mean()) ** 2 / (h - 1)) / 5, rel=1e-12)


def test_delete_one_jackknife_removes_the_bias_of_the_plug_in_variance() -> None:
    """Σ(x − x̄)²/n has bias −σ²/n; the delete-one jackknife gives exactly the ddof=1 variance."""
    x = np.random.default_rng(1).normal(size=15)
    deleted = np.array([np.var(np.delete(x, i)) for i in range(15)])
    est, _ = grouped_jackknife(float(np.var(x)), deleted, np.ones(15))
    assert est == pytest.approx(np.var(x, ddof=1), rel=1e-12)


def test_jackknife_interval_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) + rng.normal(size=(40, 6))
    y[:, 0] += x[:, 0]
    m = repscope.measure("cka")
    res = quiet_ci(m, x, y, seed=9)
    labels = jackknife_groups(40, JACKKNIFE_GROUPS, np.random.default_rng(9))
    g = JACKKNIFE_GROUPS  # 4 samples per group

    def without(*drop: int) -> float:
        keep = ~np.isin(labels, drop)
        return m(x[keep], y[keep])

    t = m(x, y)
    t1 = np.array([without(a) for a in range(g)])
    est = g * t - (g - 1) * t1.mean()
    sub = np.array([(g - 1) * t1[a] - (g - 2) * np.mean([without(a, b) for b in range(g)
                                                          if b != a]) for a in range(g)])
    se = np.sqrt((g - 1) / g * np.sum((sub - sub.mean()) ** 2))
    half = sps.t.ppf(0.975, g - 1) * se
    assert res.estimate == pytest.approx(est, rel=1e-10)
    assert res.bias == pytest.approx(t - est, rel=1e-10)
    assert res.standard_error == pytest.approx(se, rel=1e-10)
    assert tuple(res.confidence_interval) == pytest.approx((est - half, est + half), rel=1e-10)
    assert res.n_boot == g + g * (g - 1) // 2
    np.testing.assert_allclose(res.bootstrap_distribution, t1, rtol=1e-12)


def test_interval_is_clipped_to_the_measure_range() -> None:
    labels = np.repeat(np.arange(4), 3)
    ie = jackknife_interval(0.02, np.full(4, 0.05), np.full((4, 4), 0.1), labels, 0.95,
                            value_range=(0.0, 1.0))
    assert ie.estimate == 0.0 and ie.low == 0.0 and ie.low <= ie.estimate <= ie.high


def test_neighbourhood_measures_keep_their_value_as_estimate() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 5))
    y = x + 0.5 * rng.normal(size=(60, 5))
    res = quiet_ci("mutual_knn", x, y, seed=0)
    assert res.estimate == res.statistic and res.bias == 0.0
    assert res.n_boot == JACKKNIFE_GROUPS  # one level of deletions only
    lo, hi = res.confidence_interval
    assert lo < res.estimate < hi
    assert not repscope.measure("mutual_knn").bias_correctable
    assert repscope.measure("cka").bias_correctable


def test_too_few_samples_for_the_jackknife() -> None:
    # cka needs 3 samples; n = 4 in 4 groups leaves 2 when a pair of groups is dropped
    x = np.random.default_rng(0).normal(size=(4, 2))
    with pytest.raises(RepscopeError, match="too few for the jackknife"):
        inference.bootstrap_ci("cka", x, x + 1.0, 10, seed=0)
    with pytest.raises(InvalidParameterError):
        inference.bootstrap_ci("cka", x, x, 10, groups=2)


# ------------------------------------------------------------ warnings
def test_bias_larger_than_half_a_standard_error_is_warned_about() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(40, 10)), rng.normal(size=(40, 10))
    with pytest.warns(RepscopeWarning, match="biased at n=40"):
        res = inference.bootstrap_ci("cka", x, y, 200, seed=0)
    assert abs(res.bias) > 0.5 * res.standard_error
    assert any("biased at n=40" in w for w in res.warnings)
    x = rng.normal(size=(2000, 2))
    y = x + rng.normal(size=(2000, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepscopeWarning)
        res = inference.bootstrap_ci("cka", x, y, 200, seed=0)
    assert abs(res.bias) <= 0.5 * res.standard_error


def test_percentile_interval_that_excludes_its_estimate_is_flagged() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(40, 10)), rng.normal(size=(40, 10))
    with pytest.warns(RepscopeWarning, match="excludes the estimate"):
        res = inference.bootstrap_ci("mean_cca", x, y, 100, seed=0, method="percentile")
    assert res.confidence_interval.low > res.estimate == res.statistic


# ------------------------------------------------------------ defaults
def test_one_default_everywhere(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((3, 2)))
    assert DEFAULT_CI_METHOD == "jackknife" == CI_METHODS[0]
    assert Stats().ci_method == DEFAULT_CI_METHOD
    assert Stats.parse("bootstrap").ci_method == DEFAULT_CI_METHOD
    for f in (inference.bootstrap_ci, inference.bootstrap.bootstrap_ci_prepared):
        assert inspect.signature(f).parameters["method"].default == DEFAULT_CI_METHOD
    spec = parse_study({"study": {"name": "s"}, "dataset": {"kind": "none"},
                        "models": [{"name": "a", "activations": {"l": "a.npy"}}]}, tmp_path)
    assert spec.ci_method == DEFAULT_CI_METHOD
    with pytest.raises(StudySpecError, match="jackknife"):
        parse_study({"study": {"name": "s"}, "dataset": {"kind": "none"},
                     "models": [{"name": "a", "activations": {"l": "a.npy"}}],
                     "stats": {"ci": "studentized"}}, tmp_path)
    # the CLI: `repscope compare --stats bootstrap` rows equal bootstrap_ci's default
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 4))
    y = x + rng.normal(size=(50, 4))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    run = CliRunner().invoke(app, ["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                                   "-m", "cka", "--stats", "bootstrap", "--json"])
    assert run.exit_code == 0, run.output
    row = json.loads(run.output)[0]
    ref = quiet_ci("cka", x, y, seed=0)
    assert row["estimate"] == pytest.approx(ref.estimate, rel=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(ref.confidence_interval))
    run = CliRunner().invoke(app, ["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                                   "-m", "cka", "--stats", "bootstrap", "--ci", "percentile",
                                   "--json"])
    assert run.exit_code == 0, run.output
    row = json.loads(run.output)[0]
    assert row["estimate"] == row["value"]


# ------------------------------------------------------------ rows, table, database
def test_rows_carry_the_estimate() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(40, 10)), rng.normal(size=(40, 10))
    plain = repscope.compare(x, y, ["cka", "mutual_knn"])
    assert plain["cka"]["estimate"] == plain["cka"]["value"]
    assert "estimate" not in str(plain).splitlines()[0]
    res = repscope.compare(x, y, ["cka", "mutual_knn"], stats="bootstrap", seed=4)
    ref = quiet_ci("cka", x, y, seed=4)
    assert res["cka"]["estimate"] == pytest.approx(ref.estimate, rel=1e-12)
    assert res["cka"]["estimate"] < res["cka"]["value"]
    assert res["mutual_knn"]["estimate"] == res["mutual_knn"]["value"]
    assert any("biased at n=40" in w for w in res["cka"]["warnings"])
    header = str(res).splitlines()[0].split()
    assert header.index("estimate") == header.index("value") + 1
    table = ResultTable(res.to_records())
    assert table.columns.index("estimate") == table.columns.index("value") + 1


def _v1_database(path: Path) -> None:
    """A results database as repscope 0.2 wrote it (schema version 1, no estimate)."""
    cols = [c for c in COLUMNS
            if c not in ("estimate", "measure_version", "p_floor", "calibration", "chance")]
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE results (id INTEGER PRIMARY KEY, {', '.join(cols)}, "
                f"UNIQUE ({', '.join(IDENTITY_COLUMNS)}))")
    con.execute(f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [{"dataset": "", "model_a": "a", "layer_a": 0, "model_b": "b", "layer_b": 1,
                  "measure": "cka", "params": "{}", "stats": "{}", "n": 10, "seed": 0,
                  "value": 0.5, "warnings": "[]"}.get(c) for c in cols])
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()


def test_a_version_1_database_gains_the_estimate_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _v1_database(path)
    with ResultsDB(path) as db:
        old = db.rows()
        assert len(old) == 1 and old[0]["value"] == 0.5 and old[0]["estimate"] is None
        assert db.insert({"model_a": "a", "layer_a": 0, "model_b": "b", "layer_b": 2,
                          "measure": "cka", "params": {}, "stats": {}, "n": 10, "seed": 0,
                          "value": 0.5, "estimate": 0.4})
        assert db.rows(layer_b=2)[0]["estimate"] == 0.4
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert "estimate" in [r[1] for r in con.execute("PRAGMA table_info(results)")]
    con.close()
    with ResultsDB(path) as db:  # opening again changes nothing
        assert len(db) == 2


def test_grid_rows_store_the_estimate(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    reps = {("a", 0): rng.normal(size=(40, 6)), ("b", 0): rng.normal(size=(40, 6))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RepscopeWarning)
        table = repscope.grid(reps, ["cka"], stats="bootstrap", db=tmp_path / "r.sqlite")
    with ResultsDB(tmp_path / "r.sqlite") as db:
        stored = db.rows()
    assert stored[0]["estimate"] == pytest.approx(table[0]["estimate"], rel=1e-12)
    assert stored[0]["estimate"] != stored[0]["value"]
    assert json.loads(stored[0]["stats"])["ci_method"] == DEFAULT_CI_METHOD
