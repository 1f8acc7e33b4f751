"""Group separation (ReSi tests 3–5): AUPRC against sklearn, chance level, the interventions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repscope.core.errors import InvalidParameterError
from repscope.grounding import run_grounding, zoo_from_arrays
from repscope.grounding.groups import average_precision, chance_auprc, group_separation
from repscope.zoo.interventions import (
    augment_batch,
    describe,
    parse_intervention,
    randomise_labels,
    shortcut_images,
    variant_name,
)
from repscope.zoo.population import ModelSpec, training_subset


def test_average_precision_matches_sklearn_with_ties() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    for _ in range(20):
        s = rng.integers(0, 5, size=30).astype(float)  # many ties
        y = rng.random(30) < 0.3
        if not y.any():
            continue
        assert average_precision(s, y) == pytest.approx(sk.average_precision_score(y, s))
    assert np.isnan(average_precision([1.0, 2.0], [False, False]))


def test_group_separation_perfect_chance_and_resampled_copies() -> None:
    groups = {f"{g}{i}": g for g in "abc" for i in range(3)}
    # perfect: in-group distance 0, cross-group 1
    score = group_separation(groups, lambda x, y: float(x[0] != y[0]))
    assert score(list(groups)) == 1.0
    # copies of one model are never paired with each other: group "a" has no pair left
    assert score(["a0", "a0", "b0", "b1", "c0", "c1"]) == 1.0
    assert chance_auprc([5, 5, 5]) == pytest.approx(10 / 60)
    rng = np.random.default_rng(0)
    noise = {}
    rand = group_separation(groups, lambda x, y: noise.setdefault((x, y), rng.random()))
    vals = []
    for _ in range(200):
        noise.clear()
        vals.append(rand(list(groups)))
    assert abs(np.mean(vals) - chance_auprc([3, 3, 3])) < 0.08


def test_group_tests_in_the_benchmark_with_declared_groups() -> None:
    rng = np.random.default_rng(0)
    n = 150
    centre = {g: rng.normal(size=(n, 12)) for g in ("p", "q", "r")}
    reps, logits, groups, extra = {}, {}, {}, {}
    for s in range(3):
        x = centre["p"] + 0.3 * rng.normal(size=(n, 12))
        reps[f"s{s}"] = {"l0": rng.normal(size=(n, 8)), "l1": x, "out": x[:, :10]}
        logits[f"s{s}"] = x[:, :10]
        groups[f"s{s}"] = "p"
    for g in ("q", "r"):
        for s in range(3):
            extra[f"{g}{s}"] = centre[g] + 0.3 * rng.normal(size=(n, 12))
            groups[f"{g}{s}"] = g
    zoo = zoo_from_arrays(reps, logits, rng.integers(0, 10, n), groups={"shortcut": groups},
                          group_reps=extra)
    res = run_grounding(zoo, [("cka", {}), ("magnitude_difference", {})],
                        tests=["shortcut", "augmentation"], n_boot=30)
    assert res.score("cka", "shortcut") == 1.0
    assert res.score("magnitude_difference", "shortcut") < 0.9
    assert "augmentation" in res.skipped and "grouped by augmentation" in res.skipped[
        "augmentation"]
    row = next(r for r in res.rows if r["measure"] == "cka")
    assert row["n_models"] == 9 and row["ci_low"] <= 1.0
    assert res.settings["groups"]["shortcut"]["chance"] == pytest.approx(3 / 21)
    json.dumps(res.to_dict(), default=str)
    with pytest.raises(InvalidParameterError, match="group_reps"):
        zoo_from_arrays(reps, logits, np.zeros(n), groups={"shortcut": {"zz": "a"}})
    with pytest.raises(InvalidParameterError, match="unknown group test"):
        zoo_from_arrays(reps, logits, np.zeros(n), groups={"colour": {"s0": "a"}})


def test_interventions_leave_plain_variants_alone() -> None:
    labels = np.random.default_rng(0).integers(0, 10, size=2000)
    for plain in ("full", "half0", "noise20"):
        spec = ModelSpec(data=plain, n_train=1000)
        assert parse_intervention(plain) is None and describe(plain) is None
        idx, y = training_subset(labels, spec)
        assert np.array_equal(randomise_labels(y, plain), y)
    idx, y = training_subset(labels, ModelSpec(data="rand50", n_train=1000))
    idx0, y0 = training_subset(labels, ModelSpec(data="full", n_train=1000))
    assert np.array_equal(idx, idx0)
    changed = (y != y0).mean()
    assert 0.38 < changed < 0.52  # 50 % replaced, 1/10 of those by the same class
    assert describe("rand50") == {"kind": "label_randomisation", "level": 50,
                                  "level_means": describe("rand50")["level_means"],
                                  "evaluated_on": "clean test images"}
    with pytest.raises(InvalidParameterError):
        training_subset(labels, ModelSpec(data="rand500"))
    with pytest.raises(InvalidParameterError):
        variant_name("colour", 3)
    with pytest.raises(InvalidParameterError, match="unknown data variant"):
        training_subset(labels, ModelSpec(data="mystery"))


def test_shortcut_marker_encodes_the_label_at_its_predictiveness() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((3000, 28, 28)).astype(np.float32) * 0.5
    labels = rng.integers(0, 10, size=3000)
    for level, lo, hi in ((100, 1.0, 1.0), (75, 0.72, 0.83), (0, 0.05, 0.16)):
        out = shortcut_images(images, labels, f"short{level}")
        assert np.array_equal(out[:, 5:], images[:, 5:])  # only the top rows change
        col = np.argmax(out[:, 2, :] == 1.0, axis=1)
        decoded = (col - 3) // 2
        assert lo <= (decoded == labels).mean() <= hi
    assert shortcut_images(images, labels, "full") is images


def test_augmentation_draws_only_for_aug_variants() -> None:
    torch = pytest.importorskip("torch")
    x = torch.zeros(4, 28, 28)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert augment_batch(x, "full", gen) is x and torch.equal(gen.get_state(), state)
    out = augment_batch(x, "aug2", gen)
    assert float(out.std()) == pytest.approx(0.4, rel=0.1)


def test_advice_is_read_off_the_rows_and_skips_partly_failed_measures() -> None:
    from repscope.grounding.advice import recommend

    def row(m, score, lo, hi, failed=0):
        return {"measure": m, "test": "layer_identification", "score": score, "ci_low": lo,
                "ci_high": hi, "rank": 1, "failed": failed, "evaluated": 10}

    result = {"tests": ["layer_identification"], "measures": ["a", "b", "c", "d"],
              "settings": {"layers": ["x", "y", "z", "w"]},
              "rows": [row("a", 1.0, 1.0, 1.0, failed=6), row("b", 0.8, 0.7, 0.9),
                       row("c", 0.75, 0.6, 0.72), row("d", 0.3, 0.2, 0.4)]}
    (a,) = recommend(result)
    assert a["best"] == "b" and a["tied"] == ["c"] and a["above_chance"]
    assert a["chance"] == pytest.approx(0.25)
    assert "1 measure with failed comparisons" in a["sentence"]
    result["rows"][1] = row("b", 0.8, 0.2, 0.9)
    assert "reaches chance" in recommend(result)[0]["sentence"]
