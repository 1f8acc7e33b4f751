"""Minimum sample sizes with their reasons, and the rank <= 1 warning (issue 14, point 3)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import repscope
from repscope.core.errors import DegeneracyWarning, InsufficientSamplesError
from repscope.core.linalg import centred_rank_at_most_one
from repscope.measures.metadata import (
    CROSS_VALIDATED,
    GEOMETRY,
    MEAN,
    NEIGHBOURS,
    SAMPLE_RULES,
    UNBIASED,
    SampleRule,
)

RANK_ONE = "span at most one direction"


def _rule(info: repscope.MeasureInfo) -> SampleRule:
    return SampleRule(info.min_samples, info.min_samples_reason)


def test_every_measure_states_its_minimum_n_and_why() -> None:
    for info in repscope.list_measures():
        assert _rule(info) in SAMPLE_RULES, info.name
        assert info.as_dict()["min_samples_reason"] == info.min_samples_reason


def test_measures_of_one_kind_agree() -> None:
    """Every comparison of two representations' geometry needs the same three samples
    (or more, for a stated reason); today's cka (4) and procrustes (2) disagreed."""
    for info in repscope.list_measures():
        cls = repscope.measure_class(info.name)
        if info.input_kind == "representation" and cls.warns_rank_one:
            assert _rule(info) in (GEOMETRY, NEIGHBOURS, UNBIASED, CROSS_VALIDATED), info.name
            assert info.min_samples >= GEOMETRY.n
    geometry = {i.name for i in repscope.list_measures() if _rule(i) == GEOMETRY}
    assert {"cka", "procrustes", "nbs", "aligned_cosine", "mean_cca", "rsa"} <= geometry
    assert _rule(repscope.measure_info("disagreement")) == MEAN


@pytest.mark.parametrize("name", ["procrustes", "nbs", "aligned_cosine", "cka",
                                  "permutation_procrustes", "bures_distance"])
def test_two_samples_are_refused_with_the_reason(name: str) -> None:
    """n = 2 gave procrustes 0.0, nbs 1.0 and aligned_cosine 0.99999 for unrelated data."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    with pytest.raises(InsufficientSamplesError, match="needs at least 3: two samples form"):
        repscope.measure(name)(x, y)


def test_three_samples_already_tell_unrelated_data_apart() -> None:
    rng = np.random.default_rng(1)
    values = []
    for _ in range(20):
        x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegeneracyWarning)
            values.append((repscope.measure("procrustes")(x, y), repscope.measure("nbs")(x, y)))
    d, nbs = np.array(values).T
    assert d.max() > 0.1 and nbs.min() < 0.99


@pytest.mark.parametrize(("name", "params", "need", "why"), [
    ("cka", {"debiased": True}, 4, "divides by n − 3"),
    ("hsic", {"debiased": True}, 4, "divides by n − 3"),
    ("cka", {}, 3, "two samples form"),
    ("mutual_knn", {}, 11, "k=10 nearest neighbours need k"),
    ("mutual_knn", {"k": 1}, 3, "two other samples"),
    ("linear_regression_cv", {"folds": 2}, 6, "training set must keep the three"),
    ("linear_regression_cv", {}, 5, "with folds=5"),
    ("cluster_mutual_information", {}, 8, "n_clusters=8 needs a sample per cluster"),
    ("distance_correlation_sq_unbiased", {}, 4, "divides by n − 3"),
    ("distance_correlation", {}, 3, "two samples form"),
])
def test_instance_minimums(name: str, params: dict, need: int, why: str) -> None:
    m = repscope.measure(name, **params)
    assert m.min_samples == need and why in m.min_samples_reason
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(need - 1, 3)), rng.normal(size=(need - 1, 3))
    with pytest.raises(InsufficientSamplesError, match=f"at least {need}"):
        m(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        m(np.vstack([x, rng.normal(size=(1, 3))]), np.vstack([y, rng.normal(size=(1, 3))]))


# ------------------------------------------------------------ rank <= 1
def _line(n: int = 12, d: int = 4, offset: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.outer(rng.normal(size=n), rng.normal(size=d)) + offset


def test_centred_rank_decision_is_relative() -> None:
    assert centred_rank_at_most_one(_line())
    assert centred_rank_at_most_one(_line(offset=1e8))  # centring rounding counts as rounding
    assert centred_rank_at_most_one(_line() * 1e-300) and centred_rank_at_most_one(_line() * 1e300)
    plane = _line() + 1e-9 * _line(seed=1)
    assert not centred_rank_at_most_one(plane)
    assert not centred_rank_at_most_one(plane * 1e-290)
    assert centred_rank_at_most_one(np.random.default_rng(0).normal(size=(2, 5)))  # n = 2
    assert centred_rank_at_most_one(torch.from_numpy(_line()))
    assert centred_rank_at_most_one(_line().astype(np.float32))


@pytest.mark.parametrize("name", ["procrustes", "cka", "mean_cca", "rsa", "mutual_knn",
                                  "distance_correlation"])
def test_rank_one_representations_are_warned_about(name: str) -> None:
    y = np.random.default_rng(5).normal(size=(12, 3))
    m = repscope.measure(name, **({"k": 3} if name == "mutual_knn" else {}))
    with pytest.warns(DegeneracyWarning, match=f"centred rows of X {RANK_ONE}"):
        try:
            m(_line() * 1e-250, y)
        except repscope.RepscopeError:
            pass  # some measures refuse a line outright; the warning came first
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegeneracyWarning)
        if name not in ("mean_cca", "cka"):  # small-n / d >= n warnings of their own
            m(np.random.default_rng(6).normal(size=(12, 4)), y)


def test_rank_warning_rows_torch_and_float32() -> None:
    y = np.random.default_rng(5).normal(size=(12, 3))
    row = repscope.compare(_line(), y, ["procrustes"])[0]
    assert any(RANK_ONE in w for w in row["warnings"]) and row["value"] is not None
    with pytest.warns(DegeneracyWarning, match=RANK_ONE):
        repscope.measure("nbs")(torch.from_numpy(_line()), torch.from_numpy(y))
    with pytest.warns(DegeneracyWarning, match=RANK_ONE):
        repscope.measure("nbs")(_line().astype(np.float32), y.astype(np.float32))


def test_no_rank_warning_for_one_unit_or_summary_statistics() -> None:
    x = np.random.default_rng(3).normal(size=(12, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegeneracyWarning)
        repscope.measure("procrustes")(x, x[::-1] + 1.0)  # a single unit is rank 1 by nature
        repscope.measure("magnitude_difference")(_line(), _line(seed=2))
        repscope.measure("disagreement")(_line(d=3), _line(d=3, seed=2))
