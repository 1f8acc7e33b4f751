"""Stability of the best-matching layer under bootstrap resampling of the inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import repscope
from repscope.core.errors import InputShapeError, InvalidParameterError, UnknownMeasureError
from repscope.inference.intervals import wilson_interval
from repscope.inference.match_stability import (
    best_match_stability,
    best_shares,
    match_stability_pairs,
    stability_refusal,
)
from repscope.inference.resampling import bootstrap_rows, group_members

N = 120


def _layers(rng: np.random.Generator, k: int, d: int = 12, n: int = N) -> dict[str, np.ndarray]:
    return {f"l{i}": rng.normal(size=(n, d)) for i in range(k)}


def _noisy_copies(seed: int = 0) -> tuple[dict, dict]:
    """B's layers are copies of A's layers with distinct noise levels, in another order."""
    rng = np.random.default_rng(seed)
    a = _layers(rng, 4)
    noise = {"l0": 0.3, "l1": 0.6, "l2": 0.9, "l3": 1.2}
    b = {f"copy_of_{k}": a[k] + noise[k] * rng.normal(size=a[k].shape)
         for k in ("l2", "l0", "l3", "l1")}
    return a, b


# ---------------------------------------------------------------- known answers
@pytest.mark.parametrize("measure", ["cka", "procrustes", "rsa", "mutual_knn",
                                     ("cka", {"kernel": "rbf"})])
def test_noisy_copies_are_stable_best_matches(measure) -> None:
    a, b = _noisy_copies()
    res = best_match_stability(a, b, measure, n_resamples=40, seed=1)
    assert res.layers_a == tuple(a) and res.layers_b == tuple(b)
    for m in res.matches:
        assert m.best_layer_b == f"copy_of_{m.layer_a}"
        assert m.stability >= 0.95, m
        assert m.ci_low <= m.stability <= m.ci_high
        assert m.frequencies[m.best_layer_b] == m.stability
        assert math.isclose(sum(m.frequencies.values()), 1.0)
        assert m.n_resamples == 40


def test_distances_are_minimised() -> None:
    a, b = _noisy_copies()
    res = best_match_stability(a, b, "procrustes", n_resamples=5)
    assert res.kind == "distance"
    for i, m in enumerate(res.matches):
        assert m.value == np.nanmin(res.values[i])


def test_exact_tie_splits_the_resamples_and_names_the_runner_up() -> None:
    rng = np.random.default_rng(3)
    a = _layers(rng, 2)
    twin = a["l0"] + 0.5 * rng.normal(size=a["l0"].shape)
    b = {"other": rng.normal(size=(N, 12)), "x": twin, "y": twin.copy()}
    for path in ("prepared", "gram"):
        res = match_stability_pairs({"A": a, "B": b}, [("A", "B")], "cka", n_resamples=30,
                                    path=path)[("A", "B")]
        m = res.match("l0")
        assert m.best_layer_b == "x"  # the first of tied layers, as in the report
        assert m.stability == pytest.approx(0.5)
        assert m.runner_up == "y" and m.runner_up_frac == pytest.approx(0.5)
        assert m.ci_low < 0.5 < m.ci_high


def test_layers_equal_up_to_rounding_are_tied() -> None:
    """A rotated copy has the same CKA to rounding: a tie, split half and half."""
    rng = np.random.default_rng(4)
    a = _layers(rng, 1)
    twin = a["l0"] + 0.5 * rng.normal(size=a["l0"].shape)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    b = {"far": a["l0"] + 3.0 * rng.normal(size=twin.shape), "x": twin, "y": twin @ q}
    m = best_match_stability(a, b, "cka", n_resamples=40, seed=0).match("l0")
    assert m.best_layer_b == "x" and m.runner_up == "y"
    assert m.stability == pytest.approx(0.5) and m.runner_up_frac == pytest.approx(0.5)


def test_near_identical_layers_share_the_resamples() -> None:
    rng = np.random.default_rng(4)
    a = _layers(rng, 1)
    twin = a["l0"] + 0.5 * rng.normal(size=a["l0"].shape)
    b = {"x": twin, "y": twin + 1e-4 * rng.normal(size=twin.shape),
         "far": a["l0"] + 3.0 * rng.normal(size=twin.shape)}
    m = best_match_stability(a, b, "cka", n_resamples=50, seed=0).match("l0")
    assert {m.best_layer_b, m.runner_up} == {"x", "y"}
    assert 0 < m.stability < 1 and 0 < m.runner_up_frac < 1  # neither wins every resample
    assert m.stability + m.runner_up_frac == pytest.approx(1.0)
    assert m.frequencies["far"] == 0.0


def test_unrelated_layers_give_low_stability_spread_over_layers() -> None:
    rng = np.random.default_rng(5)
    a, b = _layers(rng, 4, d=8), _layers(rng, 6, d=8)
    res = best_match_stability(a, b, "cka", n_resamples=50, seed=2)
    assert np.mean([m.stability for m in res.matches]) < 0.6
    for m in res.matches:
        assert sum(f > 0 for f in m.frequencies.values()) >= 3, m
        assert m.runner_up is not None and m.runner_up_frac > 0


def test_degenerate_cells_are_never_best() -> None:
    """A rank-one layer of B agrees most with A (by value) but warns: it is never a match."""
    rng = np.random.default_rng(6)
    t = rng.normal(size=(N, 1))
    a = {"a": np.hstack([10 * t, 0.1 * rng.normal(size=(N, 5))])}
    b = {"line": t @ rng.normal(size=(1, 6)), "noisy": a["a"] + 4 * rng.normal(size=(N, 6))}
    for path in ("prepared", "gram"):
        res = match_stability_pairs({"A": a, "B": b}, [("A", "B")], "cka", n_resamples=20,
                                    path=path)[("A", "B")]
        with pytest.warns(repscope.DegeneracyWarning):
            assert repscope.measure("cka")(a["a"], b["line"]) > res.values[0, 1]
        assert np.isnan(res.values[0, 0])
        m = res.match("a")
        assert m.best_layer_b == "noisy" and m.frequencies["line"] == 0.0


def test_a_row_without_valid_cells_has_no_best_match() -> None:
    rng = np.random.default_rng(7)
    a, b = _layers(rng, 2, n=12), _layers(rng, 3, n=12)  # CKA warns below 20 samples
    for path in ("prepared", "gram"):
        res = match_stability_pairs({"A": a, "B": b}, [("A", "B")], "cka", n_resamples=5,
                                    path=path)[("A", "B")]
        for m in res.matches:
            assert m.best_layer_b is None and m.stability is None and m.value is None
            assert m.runner_up is None and m.runner_up_frac == 0.0
            assert set(m.frequencies.values()) == {0.0}
        json.dumps(res.to_records(), allow_nan=False)


# ---------------------------------------------------------------- paths agree
@pytest.mark.parametrize("grouped", [False, True])
def test_gram_shortcut_equals_prepared_path(grouped: bool) -> None:
    rng = np.random.default_rng(8)
    base = rng.normal(size=(N, 10))
    a = {"a0": base, "a1": rng.normal(size=(N, 30)), "a2": base @ rng.normal(size=(10, 4))}
    b = {"b0": base + rng.normal(size=(N, 10)), "b1": rng.normal(size=(N, 3)),
         "b2": base[:, :5] + 0.8 * rng.normal(size=(N, 5)), "b3": base[:, :5].astype(np.float32)}
    groups = np.repeat(np.arange(N // 3), 3) if grouped else None
    kw = {"n_resamples": 25, "seed": 11, "groups": groups}
    gram = match_stability_pairs({"A": a, "B": b}, [("A", "B")], "cka", path="gram", **kw)
    prep = match_stability_pairs({"A": a, "B": b}, [("A", "B")], "cka", path="prepared", **kw)
    g, p = gram[("A", "B")], prep[("A", "B")]
    assert g.path == "gram" and p.path == "prepared" and g.grouped is grouped
    assert g.to_records() == p.to_records()
    auto = best_match_stability(a, b, "cka", **kw)
    assert auto.path == "gram" and auto.to_records() == p.to_records()


def test_pairs_share_resamples_and_equal_single_pairs() -> None:
    rng = np.random.default_rng(9)
    models = {"m1": _layers(rng, 3), "m2": _layers(rng, 2), "m3": _layers(rng, 3)}
    pairs = [("m1", "m2"), ("m1", "m3"), ("m2", "m3")]
    for measure in ("cka", "rsa"):
        together = match_stability_pairs(models, pairs, measure, n_resamples=8, seed=4)
        for a, b in pairs:
            alone = best_match_stability(models[a], models[b], measure, n_resamples=8, seed=4)
            assert together[(a, b)].to_records() == alone.to_records()


def test_seed_makes_results_reproducible() -> None:
    a, b = _layers(np.random.default_rng(1), 3), _layers(np.random.default_rng(2), 3)
    one = best_match_stability(a, b, "cka", n_resamples=10, seed=5).to_records()
    assert one == best_match_stability(a, b, "cka", n_resamples=10, seed=5).to_records()


def test_torch_inputs_give_the_numpy_matches() -> None:
    torch = pytest.importorskip("torch")
    a, b = _noisy_copies()
    b["noise"] = np.random.default_rng(99).normal(size=(N, 12))
    ta, tb = ({k: torch.tensor(v) for k, v in d.items()} for d in (a, b))
    for measure in ("cka", "procrustes"):
        want = best_match_stability(a, b, measure, n_resamples=6, seed=3).to_records()
        got = best_match_stability(ta, tb, measure, n_resamples=6, seed=3).to_records()
        for g, w in zip(got, want):
            assert g["value"] == pytest.approx(w["value"], rel=1e-12)
            g.pop("value"), w.pop("value")
        assert got == want


def test_per_sample_parameters_follow_the_resampled_rows() -> None:
    """Labels of a labelled measure are resampled with the rows (else the measure fails)."""
    rng = np.random.default_rng(10)
    y = rng.integers(0, 3, size=N)
    a = {"good": 3 * np.eye(3)[y] + rng.normal(size=(N, 3)), "bad": rng.normal(size=(N, 3))}
    b = {"good": 3 * np.eye(3)[y] + 1.2 * rng.normal(size=(N, 3)),
         "bad": rng.normal(size=(N, 3))}
    res = best_match_stability(a, b, ("accuracy_difference", {"labels": y}), n_resamples=10)
    m = res.match("good")
    assert m.best_layer_b == "good" and m.stability == 1.0
    assert sum(res.match("bad").frequencies.values()) == pytest.approx(1.0)


# ---------------------------------------------------------------- records
def test_records_are_json_and_complete() -> None:
    a, b = _noisy_copies()
    recs = best_match_stability(a, b, "cka", n_resamples=6).to_records()
    assert json.loads(json.dumps(recs, allow_nan=False)) == recs
    assert [r["layer_a"] for r in recs] == list(a)
    for r in recs:
        assert set(r) == {"layer_a", "best_layer_b", "value", "stability", "ci_low", "ci_high",
                          "runner_up", "runner_up_frac", "frequencies", "n_resamples"}
        assert list(r["frequencies"]) == list(b)
        assert (r["ci_low"], r["ci_high"]) == wilson_interval(r["stability"] * 6, 6)


def test_best_shares_split_ties_and_skip_invalid_rows() -> None:
    s = np.array([[0.2, 0.5, 0.5, np.nan], [np.nan] * 4, [0.3, 0.1, 0.2, 0.9]])
    sim = best_shares(s, "similarity")
    np.testing.assert_array_equal(sim, [[0, 0.5, 0.5, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    dist = best_shares(s, "distance")
    np.testing.assert_array_equal(dist, [[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])


# ---------------------------------------------------------------- resampling
def test_groups_are_resampled_whole() -> None:
    groups = np.repeat(["p", "q", "r", "s", "t"], [1, 2, 3, 4, 5])
    members = group_members(groups, 15)
    rng = np.random.default_rng(0)
    for _ in range(20):
        rows = bootstrap_rows(rng, 15, members)
        counts = np.bincount(rows, minlength=15)
        for idx in members:
            assert len(set(counts[idx])) == 1  # every row of a group drawn equally often
    plain = bootstrap_rows(rng, 15)
    assert plain.size == 15 and np.all(np.diff(plain) >= 0)


# ---------------------------------------------------------------- errors
def test_errors_are_repscope_errors() -> None:
    a, b = _noisy_copies()
    with pytest.raises(InvalidParameterError, match="n_resamples"):
        best_match_stability(a, b, "cka", n_resamples=0)
    with pytest.raises(InputShapeError, match="same inputs"):
        best_match_stability(a, {"short": b["copy_of_l0"][:-1]}, "cka")
    with pytest.raises(InputShapeError, match="2-D"):
        best_match_stability(a, {"flat": np.zeros(N)}, "cka")
    with pytest.raises(UnknownMeasureError, match="did you mean"):
        best_match_stability(a, b, "ckaa")
    with pytest.raises(InputShapeError, match="one label per input"):
        best_match_stability(a, b, "cka", groups=np.zeros(N - 1))
    with pytest.raises(InvalidParameterError, match="two groups"):
        best_match_stability(a, b, "cka", groups=np.zeros(N))
    with pytest.raises(InvalidParameterError, match="non-empty"):
        best_match_stability(a, {}, "cka")
    with pytest.raises(InvalidParameterError, match="linear CKA"):
        match_stability_pairs({"A": a, "B": b}, [("A", "B")], "rsa", path="gram")
    with pytest.raises(InvalidParameterError, match="level"):
        best_match_stability(a, b, "cka", level=1.5)


@pytest.mark.parametrize("name", ["mean_cca", "svcca", "pwcca", "linear_regression",
                                  "linear_regression_cv"])
def test_fitted_measures_are_refused(name: str) -> None:
    a, b = _noisy_copies()
    assert stability_refusal(name) is not None
    with pytest.raises(InvalidParameterError, match="fitted|cross-validated"):
        best_match_stability(a, b, name, n_resamples=2)


def test_unfitted_measures_are_accepted() -> None:
    for name in ("cka", "procrustes", "rsa", "mutual_knn", "knn_jaccard", "nbs"):
        assert stability_refusal(name) is None


# ---------------------------------------------------------------- Wilson
def test_wilson_interval() -> None:
    z2 = 1.959963984540054 ** 2
    assert wilson_interval(0, 10) == (0.0, pytest.approx(z2 / (10 + z2)))
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + z2)), 1.0)
    lo, hi = wilson_interval(81, 100)
    assert lo == pytest.approx(0.7222, abs=1e-4) and hi == pytest.approx(0.8749, abs=1e-4)
    lo90, hi90 = wilson_interval(81, 100, level=0.9)
    assert lo < lo90 < 0.81 < hi90 < hi
    for bad in [(-1, 10), (11, 10), (1, 0)]:
        with pytest.raises(InvalidParameterError):
            wilson_interval(*bad)
