"""The findings page's "which measure to trust for each class", read off a grounding result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repscope.core.errors import RepscopeError
from repscope.findings.grounding_link import CLASS_MEASURES, find_grounding, grounding_evidence
from repscope.findings.page import _grounding_html

FULL = Path(__file__).parents[2] / "benchmarks" / "grounding_full-cpu-2core.json"


def _result(rows: list[dict], measures: list[str]) -> dict:
    return {"description": "a zoo", "measures": measures, "rows": rows,
            "chance": {"layer_identification": 0.25, "specificity": 0.5}}


def test_sentences_follow_the_rows(tmp_path: Path) -> None:
    rows = [{"measure": "procrustes", "test": "layer_identification", "score": 0.9,
             "ci_low": 0.8, "ci_high": 1.0, "rank": 1, "failed": 0},
            {"measure": "procrustes", "test": "specificity", "score": 0.45, "ci_low": 0.4,
             "ci_high": 0.49, "rank": 4, "failed": 0},
            {"measure": "mutual_knn", "test": "layer_identification", "score": 0.5,
             "ci_low": 0.4, "ci_high": 0.6, "rank": 4, "failed": 0}]
    path = tmp_path / "grounding" / "grounding.json"
    path.parent.mkdir()
    path.write_text(json.dumps(_result(rows, ["procrustes", "mutual_knn", "cka", "rsa"])))
    out = tmp_path / "findings"
    out.mkdir()
    assert find_grounding(out) == path  # the sibling folder repscope ground writes by default
    g = grounding_evidence(path)
    orth = g["classes"]["orthogonal"]
    assert orth["good"] == ["layer_identification"] and orth["weak"] == ["specificity"]
    assert "not above chance on specificity" in orth["sentence"]
    knn = g["classes"]["neighbourhood"]
    assert knn["good"] == [] and "never both among the best quarter" in knn["sentence"]
    assert "not scored" in g["classes"]["linear"]["sentence"]
    page = _grounding_html(g)
    assert "Which measure to trust for each class" in page and "1 of 4" in page
    # a leader whose interval does not clear chance is not called good
    rows[0]["ci_low"] = 0.2
    path.write_text(json.dumps(_result(rows, ["procrustes", "mutual_knn", "cka", "rsa"])))
    assert grounding_evidence(path)["classes"]["orthogonal"]["good"] == []
    # the in-sample regression stands in for the held-out one when only it was scored
    rows.append({"measure": "linear_regression", "test": "layer_identification",
                 "score": 0.4, "ci_low": 0.3, "ci_high": 0.5, "rank": 3, "failed": 0})
    path.write_text(json.dumps(_result(rows, ["procrustes", "mutual_knn", "linear_regression",
                                              "rsa"])))
    assert grounding_evidence(path)["classes"]["linear"]["measure"] == "linear_regression"


def test_the_full_grounding_run_names_a_measure_for_every_class() -> None:
    g = grounding_evidence(FULL)
    assert set(g["classes"]) == set(CLASS_MEASURES) and g["n_measures"] > 40
    for cls, c in g["classes"].items():
        assert c["rows"] and c["measure"] == CLASS_MEASURES[cls][0]
        assert set(c["good"]) <= {r["test"] for r in c["rows"]}
        assert cls in c["sentence"]


def test_a_missing_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RepscopeError, match="no grounding result"):
        find_grounding(tmp_path, tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(RepscopeError, match="not a repscope ground result"):
        grounding_evidence(tmp_path / "x.json")
    assert find_grounding(tmp_path / "empty") is None
    assert "No grounding result" in _grounding_html(None)
