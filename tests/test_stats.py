"""Tests of repscope.inference: permutation tests, null calibration, bootstrap, held-out fits."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

import repscope
from repscope import inference
from repscope.core.errors import (
    DegenerateInputError,
    InputShapeError,
    InvalidParameterError,
    RepscopeError,
)
from repscope.core.validation import warn_degenerate
from repscope.inference.heldout_fits import range_eig_data
from repscope.inference.resampling import with_rows
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import MeasureInfo


def related(rng: np.random.Generator, n: int = 60, dx: int = 6, dy: int = 5, noise: float = 0.5):
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, dx)) + noise * rng.normal(size=(n, dx))
    y = z @ rng.normal(size=(3, dy)) + noise * rng.normal(size=(n, dy))
    return x, y


def reference_null(name: str, x, y, m: int, seed: int, **params) -> np.ndarray:
    """The permutation null recomputed from scratch with the same permutations."""
    meas = repscope.measure(name, **params)
    rng = np.random.default_rng(seed)
    return np.array([meas(x, y[rng.permutation(x.shape[0])]) for _ in range(m)])


# ------------------------------------------------------------- permutation test
@pytest.mark.parametrize(
    ("name", "params", "n", "d"),
    [
        ("cka", {}, 40, 5),  # feature-space path: cached Sxx reused
        ("cka", {}, 12, 30),  # Gram path: cached Gram permuted as P K Pᵀ
        ("cka", {"kernel": "rbf"}, 30, 4),  # cached centred RBF kernel permuted
        ("cka", {"debiased": True}, 30, 4),
        ("procrustes", {}, 30, 4),
        ("mean_cca", {}, 40, 4),
        ("mutual_knn", {"k": 5}, 30, 4),  # unknown cache: re-prepared from scratch
    ],
)
def test_permutation_null_matches_recomputation(name, params, n, d, rng):
    x, y = related(rng, n, d, d)
    res = inference.permutation_test((name, params), x, y, 30, seed=7)
    ref = reference_null(name, x, y, 30, 7, **params)
    np.testing.assert_allclose(res.null_distribution, ref, rtol=1e-9, atol=1e-12)
    assert res.statistic == pytest.approx(repscope.measure(name, **params)(x, y), rel=1e-12)


def test_pvalue_formula_similarity_and_distance(rng):
    x, y = related(rng, 30, 4, 4, noise=3.0)  # weak relation: p well inside (0, 1)
    for name in ("cka", "procrustes"):
        res = inference.permutation_test(name, x, y, 99, seed=3)
        null = reference_null(name, x, y, 99, 3)
        if res.kind == "similarity":
            b = np.sum(null >= res.statistic)
        else:
            b = np.sum(null <= res.statistic)
        assert res.pvalue == pytest.approx((b + 1) / 100)
        assert res.n_permutations == 99
        assert res.null_mean == pytest.approx(null.mean())
        assert res.null_sd == pytest.approx(null.std(ddof=1))


def test_related_data_gets_smallest_pvalue_both_kinds(rng):
    x, y = related(rng, 80, 5, 5, noise=0.2)
    for name in ("cka", "procrustes", "mutual_knn"):
        res = inference.permutation_test(name, x, y, 49, seed=0)
        assert res.pvalue == pytest.approx(1 / 50), name
        other = inference.permutation_test(name, x, y, 49, seed=0, alternative="less_similar")
        assert other.pvalue == pytest.approx(1.0), name
        two = inference.permutation_test(name, x, y, 49, seed=0, alternative="two-sided")
        assert two.pvalue == pytest.approx(2 / 50), name


def test_pvalues_roughly_uniform_under_the_null():
    rng = np.random.default_rng(11)
    ps = []
    for _ in range(40):
        x, y = rng.normal(size=(25, 3)), rng.normal(size=(25, 3))
        ps.append(inference.permutation_test("cka", x, y, 39, seed=rng).pvalue)
    ps = np.array(ps)
    assert 0.02 < np.mean(ps <= 0.25) < 0.45
    assert 0.3 < ps.mean() < 0.7


def test_permutation_test_seed_reproducible_and_torch_matches_numpy(rng):
    torch = pytest.importorskip("torch")
    x, y = related(rng, 30, 4, 3)
    a = inference.permutation_test("cka", x, y, 20, seed=5)
    b = inference.permutation_test("cka", x, y, 20, seed=5)
    np.testing.assert_array_equal(a.null_distribution, b.null_distribution)
    t = inference.permutation_test("cka", torch.from_numpy(x), torch.from_numpy(y), 20, seed=5)
    np.testing.assert_allclose(t.null_distribution, a.null_distribution, rtol=1e-10)
    assert t.pvalue == a.pvalue


def test_permute_prepared_fast_path_equals_exact(rng):
    x, y = related(rng, 15, 20, 20)
    for m in (repscope.measure("cka"), repscope.measure("procrustes"), repscope.measure("hsic")):
        px, py = m.prepare(x), m.prepare(y)
        m.compare_prepared(px, py)  # fills lazy caches (Gram, kernels)
        perm = rng.permutation(15)
        fast = inference.permute_prepared(m, py, perm)
        assert fast.cache, "cached quantities should be carried over, not dropped"
        exact = inference.permute_prepared(m, py, perm, exact=True)
        assert float(m.compare_prepared(px, fast)) == pytest.approx(
            float(m.compare_prepared(px, exact)), rel=1e-10
        )
    with pytest.raises(InputShapeError):
        inference.permute_prepared(m, py, np.arange(3))


class _WrongCacheMeasure(Measure):
    """Stores a per-sample vector under a key the fast path treats as row-indexed data,
    but computes with it as if it were unpermuted: the self-check must catch it."""

    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_wrong_cache", family="custom", kind="similarity", value_range=(-1.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=3,
    )

    def _prepare(self, p: Prepared) -> None:
        p.cache["sxx"] = p.data[:, 0].copy()  # "invariant" key misused for row data

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        return float(np.corrcoef(px.cache["sxx"], py.cache["sxx"])[0, 1])


def test_inconsistent_cache_falls_back_to_exact_and_warns(rng):
    x, y = related(rng, 30, 3, 3, noise=0.1)
    m = _WrongCacheMeasure()
    res = inference.permutation_test(m, x, y, 20, seed=1)
    g = np.random.default_rng(1)
    ref = [float(np.corrcoef(x[:, 0], y[g.permutation(30), 0])[0, 1]) for _ in range(20)]
    np.testing.assert_allclose(res.null_distribution, ref, rtol=1e-12)
    assert any("recomputing every permutation" in w for w in res.warnings)


def test_permutation_test_bad_arguments(rng):
    x, y = related(rng)
    with pytest.raises(InvalidParameterError):
        inference.permutation_test("cka", x, y, 0)
    with pytest.raises(InvalidParameterError):
        inference.permutation_test("cka", x, y, 10, alternative="greater")
    with pytest.raises(InvalidParameterError):
        inference.permutation_test(42, x, y, 10)
    with pytest.raises(InputShapeError):
        inference.permutation_test("cka", x, y[:-1], 10)
    with pytest.raises(repscope.UnknownMeasureError):
        inference.permutation_test("no_such_measure", x, y, 10)


def test_progress_bar_does_not_change_results(rng, capsys):
    x, y = related(rng, 30, 3, 3)
    a = inference.permutation_test("cka", x, y, 10, seed=2, progress=True)
    b = inference.permutation_test("cka", x, y, 10, seed=2)
    np.testing.assert_array_equal(a.null_distribution, b.null_distribution)


def test_degeneracy_warnings_are_captured(rng):
    x, y = rng.normal(size=(10, 12)), rng.normal(size=(10, 12))
    res = inference.permutation_test("mean_cca", x, y, 10, seed=0)
    assert any(w.startswith("DegeneracyWarning") for w in res.warnings)
    # CCA is trivially 1 for every permutation: calibration is undefined, not NaN
    assert res.calibrated is None
    assert any("calibrated score undefined" in w for w in res.warnings)


# ------------------------------------------------------------- calibration
def test_null_calibration_by_hand():
    cal = inference.null_calibration(0.6, [0.1, 0.2, 0.3], identity=1.0, kind="similarity")
    assert cal.null_mean == pytest.approx(0.2)
    assert cal.null_sd == pytest.approx(0.1)
    assert cal.calibrated == pytest.approx(0.5)
    assert cal.zscore == pytest.approx(4.0)
    cal = inference.null_calibration(0.2, [1.0, 1.2, 1.4], identity=0.0, kind="distance")
    assert cal.calibrated == pytest.approx(1 - 0.2 / 1.2)
    assert cal.zscore == pytest.approx(5.0)  # positive = more similar than chance
    flat = inference.null_calibration(1.0, [1.0, 1.0], identity=1.0, kind="similarity")
    assert flat.calibrated is None and flat.zscore is None and flat.note
    nan_id = inference.null_calibration(3.0, [1.0, 2.0], identity=None, kind="similarity")
    assert nan_id.calibrated is None and nan_id.zscore is not None
    with pytest.raises(InvalidParameterError):
        inference.null_calibration(1.0, [1.0], identity=1.0, kind="similarity")
    with pytest.raises(InvalidParameterError):
        inference.null_calibration(1.0, [1.0, 2.0], identity=1.0, kind="other")


@settings(max_examples=40, deadline=None)
@given(
    value=st.floats(-5, 5),
    null=st.lists(st.floats(-5, 5), min_size=2, max_size=8),
    a=st.floats(0.1, 10),
    b=st.floats(-10, 10),
)
def test_calibration_invariant_to_affine_rescaling(value, null, a, b):
    null = np.array(null)
    ident = float(null.max()) + 1.0
    c1 = inference.null_calibration(value, null, identity=ident, kind="similarity")
    c2 = inference.null_calibration(a * value + b, a * null + b, identity=a * ident + b,
                                kind="similarity")
    assert c1.calibrated == pytest.approx(c2.calibrated, rel=1e-6, abs=1e-6)


def test_identical_inputs_calibrate_to_one(rng):
    x, _ = related(rng, 40, 5, 5)
    for name in ("cka", "procrustes", "mutual_knn"):
        res = inference.permutation_test(name, x, x, 20, seed=0)
        assert res.calibrated == pytest.approx(1.0), name


@pytest.mark.parametrize("name", ["cka", "mean_cca"])
def test_calibrated_score_removes_small_n_inflation(name):
    """Unrelated data: raw CKA/CCA grow as d/n grows, the calibrated score stays ~0."""
    rng = np.random.default_rng(2024)
    raw, cal = {}, {}
    for n, d in ((20, 12), (200, 4)):
        r, c = [], []
        for _ in range(8):
            x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
            res = inference.permutation_test(name, x, y, 60, seed=rng)
            r.append(res.statistic)
            c.append(res.calibrated)
        raw[(n, d)], cal[(n, d)] = np.mean(r), np.mean(c)
    assert raw[(20, 12)] - raw[(200, 4)] > 0.3  # raw scores are not comparable...
    for v in cal.values():
        assert abs(v) < 0.1  # ...calibrated ones are ~0 at chance for both sizes


def test_calibrated_score_helper(rng):
    x, y = related(rng, 50, 4, 4, noise=0.3)
    v = inference.calibrated_score("cka", x, y, 30, seed=1)
    assert v == inference.permutation_test("cka", x, y, 30, seed=1).calibrated
    assert 0.3 < v <= 1.0
    with pytest.raises(RepscopeError):
        inference.calibrated_score("hsic", x, y, 10, seed=1)  # no identity value


# ------------------------------------------------------------- bootstrap
def test_percentile_bootstrap_matches_hand_computation(rng):
    x, y = related(rng, 40, 4, 3)
    res = inference.bootstrap_ci("procrustes", x, y, 50, level=0.9, seed=9, method="percentile")
    g = np.random.default_rng(9)
    m = repscope.measure("procrustes")
    vals = []
    for _ in range(50):
        idx = g.integers(0, 40, size=40)
        vals.append(m(x[idx], y[idx]))
    np.testing.assert_allclose(res.bootstrap_distribution, vals, rtol=1e-12)
    lo, hi = np.percentile(vals, [5, 95])
    assert res.confidence_interval == pytest.approx((lo, hi))
    assert res.standard_error == pytest.approx(np.std(vals, ddof=1))
    assert res.statistic == pytest.approx(m(x, y))
    assert res.n_failed == 0


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_agrees_with_scipy(method):
    """One-feature linear CKA is the squared Pearson correlation: compare with scipy."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=80)
    y = 0.6 * x + rng.normal(size=80)
    ours = inference.bootstrap_ci("cka", x[:, None], y[:, None], 2000, seed=1, method=method)
    ref = scipy.stats.bootstrap(
        (x, y), lambda a, b: scipy.stats.pearsonr(a, b)[0] ** 2, paired=True, vectorized=False,
        n_resamples=2000, method="BCa" if method == "bca" else "percentile",
        random_state=np.random.default_rng(2),
    )
    assert ours.statistic == pytest.approx(scipy.stats.pearsonr(x, y)[0] ** 2)
    assert ours.confidence_interval.low == pytest.approx(ref.confidence_interval.low, abs=0.025)
    assert ours.confidence_interval.high == pytest.approx(ref.confidence_interval.high, abs=0.025)


def test_bca_corrects_a_skewed_statistic_differently(rng):
    x, y = related(rng, 40, 3, 3, noise=1.0)
    pct = inference.bootstrap_ci("cka", x, y, 300, seed=0, method="percentile")
    bca = inference.bootstrap_ci("cka", x, y, 300, seed=0, method="bca")
    np.testing.assert_array_equal(pct.bootstrap_distribution, bca.bootstrap_distribution)
    assert pct.confidence_interval != bca.confidence_interval


class _SampleWeightMeasure(Measure):
    """Fraction of samples whose per-sample ``tags`` equal X's first column."""

    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_tags", family="custom", kind="similarity", value_range=(0.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=2, params={"tags": None},
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        return float(np.mean(np.asarray(self.params["tags"]) == px.data[:, 0]))


@pytest.mark.parametrize("method", ["jackknife", "percentile"])
def test_per_sample_parameters_follow_the_resampled_rows(rng, method):
    x = rng.integers(0, 5, size=(30, 2)).astype(float)
    m = _SampleWeightMeasure(tags=x[:, 0].copy())
    res = inference.bootstrap_ci(m, x, x, 40, seed=0, method=method)
    assert np.all(res.bootstrap_distribution == 1.0)
    assert res.estimate == 1.0 and tuple(res.confidence_interval) == (1.0, 1.0)
    ho_rows = with_rows(m, ["tags"], np.array([3, 1]))
    np.testing.assert_array_equal(ho_rows.params["tags"], x[[3, 1], 0])


class _FragileMeasure(Measure):
    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_fragile", family="custom", kind="similarity", value_range=(0.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=2,
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        if len(np.unique(px.data, axis=0)) < px.n:
            raise DegenerateInputError("duplicated samples")
        return 0.5


def test_bootstrap_raises_when_most_resamples_fail(rng):
    x = rng.normal(size=(30, 2))
    with pytest.raises(RepscopeError, match="bootstrap resamples"):
        inference.bootstrap_ci(_FragileMeasure(), x, x, 20, seed=0, method="percentile")


def test_bootstrap_bad_arguments(rng):
    x, y = related(rng)
    with pytest.raises(InvalidParameterError):
        inference.bootstrap_ci("cka", x, y, 1)
    with pytest.raises(InvalidParameterError):
        inference.bootstrap_ci("cka", x, y, 10, level=1.5)
    with pytest.raises(InvalidParameterError):
        inference.bootstrap_ci("cka", x, y, 10, method="studentized")


# ------------------------------------------------------------- held-out
def reference_heldout_cca(xtr, ytr, xte, yte) -> np.ndarray:
    """Held-out canonical correlations via the generalised eigenproblem (independent route)."""
    mx, my = xtr.mean(0), ytr.mean(0)
    xc, yc = xtr - mx, ytr - my
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    lam, a = scipy.linalg.eigh(sxy @ np.linalg.solve(syy, sxy.T), sxx)
    order = np.argsort(lam)[::-1][: min(xtr.shape[1], ytr.shape[1])]
    a = a[:, order]
    b = np.linalg.solve(syy, sxy.T @ a)
    u, v = (xte - mx) @ a, (yte - my) @ b
    return np.array([np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(a.shape[1])])


def test_heldout_cca_matches_generalised_eigenproblem(rng):
    x, y = related(rng, 120, 5, 4, noise=0.8)
    res = inference.heldout("mean_cca", x, y, test_fraction=0.25, seed=4)
    order = np.random.default_rng(4).permutation(120)
    test, train = np.sort(order[:30]), np.sort(order[30:])
    ref = reference_heldout_cca(x[train], y[train], x[test], y[test])
    np.testing.assert_allclose(res.correlations, ref, atol=1e-8)
    assert res.statistic == pytest.approx(ref.mean())
    assert (res.n_train, res.n_test) == (90, 30)
    assert res.in_sample == pytest.approx(repscope.measure("mean_cca")(x, y))
    sq = inference.heldout("mean_sq_cca", x, y, test_fraction=0.25, seed=4)
    assert sq.statistic == pytest.approx(np.mean(np.clip(ref, 0, None) ** 2))


def test_heldout_removes_inflation_when_d_is_close_to_n():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(40, 34)), rng.normal(size=(40, 34))
    res = inference.heldout("mean_cca", x, y, seed=0, n_splits=4)
    assert res.in_sample > 0.9  # in-sample CCA is inflated towards 1
    assert abs(res.statistic) < 0.15  # the held-out value is not
    assert res.split_values.shape == (4,)


def test_heldout_exact_linear_relation_generalises(rng):
    x = rng.normal(size=(100, 5))
    a = rng.normal(size=(5, 5))
    for name in ("mean_cca", "mean_sq_cca", "svcca", "ridge_cca", "pwcca", "linear_regression"):
        res = inference.heldout(name, x, x @ a, seed=1)
        assert res.statistic == pytest.approx(1.0, abs=1e-8) or name == "ridge_cca", name
    # ridge shrinkage changes the directions, yet the exact relation still correlates highly
    assert inference.heldout("ridge_cca", x, x @ a, seed=1).statistic > 0.9


def test_heldout_special_cases_reduce_to_mean_cca(rng):
    x, y = related(rng, 100, 5, 4, noise=1.0)
    base = inference.heldout("mean_cca", x, y, seed=2).statistic
    assert inference.heldout(("ridge_cca", {"reg": 0.0}), x, y, seed=2).statistic == pytest.approx(
        base, abs=1e-9
    )
    assert inference.heldout(("svcca", {"var_fraction": 1.0}), x, y, seed=2).statistic == (
        pytest.approx(base, abs=1e-9)
    )


def test_heldout_linear_regression_matches_sklearn(rng):
    sk_lm = pytest.importorskip("sklearn.linear_model")
    sk_metrics = pytest.importorskip("sklearn.metrics")
    x, y = related(rng, 80, 6, 3, noise=1.0)
    res = inference.heldout("linear_regression", x, y, test_fraction=0.3, seed=6)
    order = np.random.default_rng(6).permutation(80)
    test, train = np.sort(order[:24]), np.sort(order[24:])
    pred = sk_lm.LinearRegression().fit(x[train], y[train]).predict(x[test])
    ref = sk_metrics.r2_score(y[test], pred, multioutput="variance_weighted")
    assert res.statistic == pytest.approx(ref, rel=1e-8)


def test_heldout_errors(rng):
    x, y = related(rng)
    with pytest.raises(InvalidParameterError, match="no held-out form"):
        inference.heldout("cka", x, y)
    with pytest.raises(InvalidParameterError):
        inference.heldout("mean_cca", x, y, test_fraction=1.0)
    with pytest.raises(InvalidParameterError):
        inference.heldout("mean_cca", x[:5], y[:5], test_fraction=0.2)
    assert inference.supports_heldout("mean_cca") and not inference.supports_heldout("cka")
    assert "linear_regression" in inference.heldout_measures()


# ------------------------------------------------------------- options
def test_stats_parse():
    assert not inference.Stats.parse(None).any
    s = inference.Stats.parse("permutation")
    assert s.n_permutations == inference.DEFAULT_PERMUTATIONS and s.n_boot == 0
    s = inference.Stats.parse(["bootstrap", "heldout"])
    assert s.n_boot == inference.DEFAULT_BOOTSTRAP and s.heldout and not s.n_permutations
    s = inference.Stats.parse({"n_permutations": 7, "level": 0.9})
    assert s.as_key() == {"n_permutations": 7, "alternative": "more_similar"}
    assert inference.Stats.parse("all").as_key()["heldout"] is True
    for bad in ("jackknife", True, 3, {"n_perm": 3}, {"n_boot": -1}, {"ci_method": "x"},
                {"level": 0}, {"test_fraction": 1.2}, {"alternative": "up"}, {"n_splits": 0}):
        with pytest.raises(InvalidParameterError):
            inference.Stats.parse(bad)


def test_resolve_measure_forms():
    m = repscope.measure("cka", kernel="rbf")
    assert inference.resolve_measure(m) is m
    assert inference.resolve_measure(("cka", {"kernel": "rbf"})).params["kernel"] == "rbf"
    assert inference.resolve_measure("procrustes").info.name == "procrustes"
    with pytest.raises(InvalidParameterError):
        inference.resolve_measure(("cka", [1]))


@pytest.mark.parametrize("shape", [(30, 8), (12, 40)])
def test_range_eigendecomposition_from_data(shape, rng):
    xc = rng.normal(size=shape)
    xc -= xc.mean(0)
    v, w = range_eig_data(xc)
    rank = min(shape[0] - 1, shape[1])
    assert v.shape == (shape[1], rank) and np.all(np.diff(w) <= 0)
    np.testing.assert_allclose(xc.T @ xc @ v, v * w, atol=1e-8)
    np.testing.assert_allclose(v.T @ v, np.eye(rank), atol=1e-8)
    ref = np.sort(np.linalg.eigvalsh(xc.T @ xc))[::-1][:rank]
    np.testing.assert_allclose(w, ref, rtol=1e-8)


class _DuplicateWarning(Measure):
    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_dupwarn", family="custom", kind="similarity", value_range=(-1.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=2,
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        dup = px.n - len(np.unique(px.data, axis=0))
        if dup:
            warn_degenerate(f"{dup} duplicated samples")
        return float(np.corrcoef(px.data[:, 0], py.data[:, 0])[0, 1])


def test_bootstrap_resample_warnings_are_summarised_once(rng):
    x, y = related(rng, 30, 2, 2)
    res = inference.bootstrap_ci(_DuplicateWarning(), x, y, 20, seed=0, method="percentile")
    assert len(res.warnings) == 1
    assert "20 of 20 bootstrap resamples raised warnings" in res.warnings[0]
    assert "duplicated samples" in res.warnings[0]


def test_normal_interval_is_centred_on_the_estimate() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 80))  # d > n: resampled duplicates inflate CKA
    y = x @ rng.normal(size=(80, 70)) + rng.normal(size=(60, 70))
    res = inference.bootstrap_ci("cka", x, y, n_boot=40, seed=0, method="normal")
    lo, hi = res.confidence_interval
    assert lo < res.statistic < hi
    assert (hi - lo) / 2 == pytest.approx(1.959964 * res.standard_error, rel=1e-5)
    with pytest.warns(repscope.RepscopeWarning, match="excludes the estimate"):
        pct = inference.bootstrap_ci("cka", x, y, n_boot=40, seed=0, method="percentile")
    assert pct.confidence_interval.low > pct.statistic  # the failure mode "normal" avoids
