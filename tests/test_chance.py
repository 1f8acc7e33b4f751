"""Chance levels at the pair's shape: every measure's value for unrelated data, warned about."""

from __future__ import annotations

import numpy as np
import pytest

import repscope
from repscope.inference.chance import chance_level


def _chance_notes(row) -> list[str]:
    return [w for w in row["warnings"] if w.startswith("ChanceWarning")]


def test_unrelated_wide_data_warn_with_their_chance_level():
    """Regression: unrelated 100 × 300 data gave svcca 0.97, ridge_cca 0.9997 / 0.99 / 0.94,
    biased CKA 0.76, nbs 0.92, m_svd 0.92 without a word."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 300)), rng.normal(size=(100, 300))
    specs = ["svcca", "cka", "nbs", "m_svd", "procrustes",
             *[("ridge_cca", {"reg": r}) for r in (0.1, 0.5, 0.9)]]
    table = repscope.compare(x, y, specs)
    for row in table:
        (note,) = _chance_notes(row)
        assert f"{row['measure']} of unrelated data at n = 100, d = 300 is ≈" in note
        assert row["chance"] == pytest.approx(row["value"], abs=0.05)
        assert abs(row["calibrated"]) < 0.15 and row["calibration"] == "chance"
    assert table["svcca"]["chance"] > 0.9


@pytest.mark.parametrize("n, d", [(100, 50), (300, 100)])
def test_svcca_inflation_at_moderate_width_is_warned(n, d):
    rng = np.random.default_rng(1)
    row = repscope.compare(rng.normal(size=(n, d)), rng.normal(size=(n, d)), ["svcca"])[0]
    assert row["value"] > 0.45 and _chance_notes(row)


def test_no_warning_where_chance_is_near_nominal_and_identity_calibrates_to_one():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 5))
    table = repscope.compare(x, x @ np.linalg.qr(rng.normal(size=(5, 5)))[0], ["cka", "nbs"])
    for row in table:
        assert not _chance_notes(row)
        assert row["calibrated"] == pytest.approx(1.0, abs=1e-9)


def test_permutation_calibration_takes_precedence():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 30)), rng.normal(size=(40, 30))
    row = repscope.compare(x, y, ["cka"], stats="permutation")[0]
    assert row["calibration"] == "permutation" and row["chance"] is not None
    assert row["calibrated"] == pytest.approx(
        (row["value"] - row["null_mean"]) / (1 - row["null_mean"]))


def test_chance_level_is_cached_and_skips_what_it_cannot_judge():
    m = repscope.measure("cka")
    a = chance_level(m, 50, 7, 9)
    assert chance_level(m, 50, 7, 9) is a  # cached, same object
    assert chance_level(repscope.measure("cka"), 60, 4, 4) is not None
    probe = [i for i in repscope.list_measures() if i.input_kind != "representation"]
    if probe:
        assert chance_level(repscope.measure(probe[0].name), 60, 4, 4) is None


def test_grid_rows_carry_the_chance_level(tmp_path):
    rng = np.random.default_rng(4)
    reps = {("a", 0): rng.normal(size=(60, 80)), ("b", 0): rng.normal(size=(60, 80))}
    table = repscope.grid(reps, ["nbs"], db=tmp_path / "r.sqlite")
    row = table[0]
    assert row["chance"] > 0.5 and _chance_notes(row)
    again = repscope.grid(reps, ["nbs"], db=tmp_path / "r.sqlite")  # read back from the DB
    assert again[0]["chance"] == pytest.approx(row["chance"])
    assert repscope.grid(reps, ["nbs"], chance=False)[0].get("chance") is None
