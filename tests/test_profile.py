"""Tests of repscope.profile: the invariance profile and its one-sentence verdict."""

from __future__ import annotations

import re

import numpy as np
import pytest

import repscope
from repscope.core.errors import InputShapeError, InvalidParameterError
from repscope.inference.profile import CLASS_ORDER, InvarianceProfile, Thresholds, profile


def orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@pytest.fixture
def x(rng) -> np.ndarray:
    d = 8
    return (rng.normal(size=(150, d)) * np.linspace(2.0, 0.5, d)) @ orthogonal(d, rng)


def ill_conditioned(d: int, rng: np.random.Generator, cond: float = 100.0) -> np.ndarray:
    return orthogonal(d, rng) @ np.diag(np.logspace(0, -np.log10(cond), d)) @ orthogonal(d, rng)


def test_random_rotation_is_equal_up_to_rotation(x, rng):
    p = profile(x, x @ orthogonal(8, rng))
    assert p.strongest == "orthogonal"
    assert p.agrees("orthogonal") and p.agrees("linear") and not p.agrees("permutation")
    assert p["orthogonal"].score == pytest.approx(1.0)
    assert p["orthogonal"].others["linear CKA"] == pytest.approx(1.0)
    s = p.sentence
    assert s.startswith("Equal up to rotation (Procrustes similarity 1.00)")
    assert "but not up to a permutation of units" in s
    assert re.sub(r"\d+\.\d+", "", s).count(".") == 1 and s.endswith(".")  # one sentence


def test_ill_conditioned_linear_map_is_linear_but_not_rotation(x, rng):
    a = ill_conditioned(8, rng)
    p = profile(x, x @ a)
    assert p.strongest == "linear"
    assert p["linear"].score == pytest.approx(1.0, abs=1e-8)  # held-out mean CCA
    assert p["orthogonal"].score < 0.9 and not p.agrees("orthogonal")
    assert p.sentence.startswith(
        "Equal up to an invertible linear map (held-out mean CCA 1.00), but not up to rotation "
        f"(Procrustes similarity {p['orthogonal'].score:.2f})"
    )
    assert p["orthogonal"].raw == pytest.approx(repscope.measure("nbs")(x, p_y := x @ a))
    assert p["orthogonal"].others["linear CKA"] == pytest.approx(repscope.measure("cka")(x, p_y))


def test_unrelated_data_agree_in_no_sense(x, rng):
    p = profile(x, rng.normal(size=x.shape))
    assert p.strongest is None
    assert not any(p.agrees(c) for c in ("permutation", "orthogonal", "linear", "neighbourhood"))
    assert p.sentence.startswith(
        "Not equal up to a permutation of units (permutation Procrustes similarity 0."
    )
    assert ", rotation (Procrustes similarity 0." in p.sentence
    assert " or an invertible linear map (held-out mean CCA " in p.sentence
    assert "neighbourhoods differ" in p.sentence
    assert abs(p["linear"].score) < 0.2


def test_column_permutation_is_equal_up_to_permutation(x, rng):
    y = 2.5 * x[:, rng.permutation(8)] + 3.0  # permutation, scale and shift
    p = profile(x, y)
    assert p.strongest == "permutation"
    assert p["permutation"].score == pytest.approx(1.0)
    assert p.sentence.startswith(
        "Equal up to a permutation of units (permutation Procrustes similarity 1.00)"
    )
    assert "but not" not in p.sentence


def test_statistics_use_calibrated_scores_and_pvalues(x, rng):
    rot = profile(x, x @ orthogonal(8, rng), stats=30)
    assert rot.stats and rot.strongest == "orthogonal"
    c = rot["orthogonal"]
    assert c.calibrated == pytest.approx(1.0) and c.pvalue == pytest.approx(1 / 31)
    assert c.p_floor == 1 / 31  # at the floor: the sentence says "p ≤ 1/(m + 1)"
    assert "p ≤ 0.032" in rot.sentence and "p = 0.032" not in rot.sentence
    assert "p ≤ 0.0323" in str(rot)
    noise = profile(x, rng.normal(size=x.shape), stats=30)
    assert noise.strongest is None
    assert abs(noise["linear"].calibrated) < 0.3 and noise["linear"].pvalue > 0.05
    with pytest.raises(InvalidParameterError):
        profile(x, x, stats=1)


def test_stricter_alpha_blocks_agreement(x, rng):
    p = profile(x, x @ orthogonal(8, rng), stats=10, thresholds={"alpha": 0.05})
    # with 10 permutations the smallest p-value is 1/11 > 0.05: nothing can agree
    assert p.strongest is None and not p.agrees("neighbourhood")


def test_heldout_linear_class_is_not_inflated_when_d_is_close_to_n():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 30)), rng.normal(size=(40, 30))
    p = profile(x, y)
    assert p["linear"].others["in-sample mean CCA"] > 0.8
    assert abs(p["linear"].score) < 0.2 and not p.agrees("linear")
    insample = profile(x, y, heldout=False, thresholds={"linear": 0.75})
    assert insample["linear"].label == "mean CCA" and insample.agrees("linear")
    assert any("DegeneracyWarning" in w for w in profile(
        rng.normal(size=(20, 25)), rng.normal(size=(20, 25)), heldout=False
    )["linear"].warnings)


def test_different_widths_skip_the_permutation_class(x, rng):
    y = x @ rng.normal(size=(8, 12))
    p = profile(x, y)
    assert p.agrees("permutation") is None
    assert "widths differ (8 vs 12)" in p["permutation"].note
    assert p.strongest == "linear"
    assert "permutation" not in p.sentence


def test_outputs_add_the_function_class(x, rng):
    logits = x[:, :4]
    same = profile(x, x @ orthogonal(8, rng), outputs=(logits, logits * 3.0))
    assert same.agrees("function") and same["function"].score == pytest.approx(1.0)
    assert "outputs agree (prediction agreement 1.00)" in same.sentence
    other = profile(x, x, outputs=(logits, rng.normal(size=logits.shape)))
    assert other.agrees("function") is False and "outputs differ" in other.sentence
    assert profile(x, x).agrees("function") is None
    with pytest.raises(InvalidParameterError):
        profile(x, x, outputs=logits)
    with pytest.raises(InvalidParameterError):
        profile(x, x, outputs=(logits[:5], logits[:5]))


def test_result_object_api(x, rng):
    p = profile(x, x @ orthogonal(8, rng))
    assert isinstance(p, InvarianceProfile)
    assert list(p.classes) == list(CLASS_ORDER)
    recs = p.to_records()
    assert [r["name"] for r in recs] == list(CLASS_ORDER)
    d = p.to_dict()
    assert d["strongest"] == "orthogonal" and d["sentence"] == p.sentence
    assert (d["n"], d["dx"], d["dy"]) == (150, 8, 8)
    text = str(p)
    assert "orthogonal" in text and "agree" in text and p.sentence in text
    assert "strongest='orthogonal'" in repr(p)


def test_thresholds_and_argument_errors(x):
    t = Thresholds.parse({"orthogonal": 0.95})
    assert t.orthogonal == 0.95 and t.linear == 0.9
    assert Thresholds.parse(t) is t and Thresholds.parse(None) == Thresholds()
    with pytest.raises(InvalidParameterError):
        Thresholds.parse({"rotation": 0.9})
    with pytest.raises(InvalidParameterError):
        Thresholds(linear=1.5)
    with pytest.raises(InvalidParameterError):
        profile(x, x, k=0)
    with pytest.raises(InputShapeError):
        profile(x, x[:-1])


def test_lower_threshold_changes_the_verdict(x, rng):
    y = x @ ill_conditioned(8, rng, cond=10.0)
    strict = profile(x, y)
    score = strict["orthogonal"].score
    assert not strict.agrees("orthogonal")
    loose = profile(x, y, thresholds={"orthogonal": score - 0.01})
    assert loose.strongest == "orthogonal"


def test_implied_looser_class_is_explained():
    """Rotation-equal top structure with isotropic noise in many dimensions: the held-out
    mean CCA (all directions weighted equally) is low although rotation agreement holds."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(120, 5))
    x = z @ rng.normal(size=(5, 60)) * 3 + 0.3 * rng.normal(size=(120, 60))
    y = x @ orthogonal(60, rng) + 0.3 * rng.normal(size=(120, 60))
    p = profile(x, y)
    assert p.strongest == "orthogonal"
    assert p.agrees("linear") is False
    assert p["linear"].note.startswith("implied by agreement up to rotation")
    assert "implied by agreement" in str(p)
