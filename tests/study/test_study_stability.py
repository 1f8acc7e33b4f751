"""``extras["match_stability"]``: computed by a study for the primary measure, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import repscope.inference.match_stability as ms
from repscope import ResultsDB
from repscope.report.build import best_matches
from repscope.study import load_study, run_study
from repscope.study.runner import load_extras
from repscope.study.spec import StudySpecError
from repscope.study.stability import primary_entry

N = 80


def _study(tmp_path: Path, report: str = "", measures: str = '["cka", "mean_cca"]') -> Path:
    rng = np.random.default_rng(0)
    for i, noise in enumerate((0.3, 0.6, 0.9)):
        a = rng.normal(size=(N, 10))
        np.save(tmp_path / f"a{i}.npy", a)
        np.save(tmp_path / f"b{i}.npy", a + noise * rng.normal(size=a.shape))
    np.save(tmp_path / "c0.npy", rng.normal(size=(N, 6)))
    text = f"""\
[study]
name = "stability"
[[models]]
name = "a"
activations = {{ l0 = "a0.npy", l1 = "a1.npy", l2 = "a2.npy" }}
[[models]]
name = "b"
activations = {{ l2 = "b2.npy", l0 = "b0.npy", l1 = "b1.npy" }}
[[models]]
name = "c"
activations = {{ l0 = "c0.npy" }}
[compare]
measures = {measures}
profile = false
[report]
{report}
"""
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def test_study_stores_stability_of_every_model_pair(tmp_path: Path) -> None:
    study = _study(tmp_path, "stability_resamples = 20")
    out = tmp_path / "out"
    res = run_study(load_study(study), out, progress=False, report=False)
    entries = res.extras["match_stability"]
    assert entries == load_extras(out)["match_stability"]
    assert json.loads(json.dumps(entries, allow_nan=False)) == entries
    assert [(e["model_a"], e["model_b"]) for e in entries] == [("a", "b"), ("a", "c"),
                                                              ("b", "c")]
    results = ResultsDB(res.db_path).to_pandas()
    for e in entries:
        assert e["measure"] == "cka" and e["n_resamples"] == 20 and e["skipped"] is None
        assert e["level"] == 0.95 and e["seed"] == 0 and e["dataset"]
        # the same best matches as the report's tables, layers in the report's order
        table = {m["layer_a"]: m["layer_b"]
                 for m in best_matches(results, "cka", e["model_a"], e["model_b"])}
        assert {r["layer_a"]: r["best_layer_b"] for r in e["records"]} == table
        assert [r["layer_a"] for r in e["records"]] == sorted(table)
    ab = entries[0]["records"]
    assert [r["best_layer_b"] for r in ab] == ["l0", "l1", "l2"]
    assert all(r["stability"] >= 0.95 and r["n_resamples"] == 20 for r in ab)
    assert list(ab[0]["frequencies"]) == ["l0", "l1", "l2"]


def test_stability_is_resumed_and_recomputed_when_settings_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    first = run_study(load_study(_study(tmp_path, "stability_resamples = 5")), out,
                      progress=False, report=False).extras["match_stability"]

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although the stored entries match")

    with monkeypatch.context() as mp:
        mp.setattr(ms, "match_stability_pairs", refuse)
        again = run_study(load_study(_study(tmp_path, "stability_resamples = 5")), out,
                          progress=False, report=False).extras["match_stability"]
    assert again == first
    changed = run_study(load_study(_study(tmp_path, "stability_resamples = 7")), out,
                        progress=False, report=False).extras["match_stability"]
    assert len(changed) == 3 and {e["n_resamples"] for e in changed} == {7}


def test_zero_resamples_computes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setattr(ms, "match_stability_pairs", None)
    res = run_study(load_study(_study(tmp_path, "stability_resamples = 0")), tmp_path / "out",
                    progress=False, report=False)
    assert res.extras.get("match_stability", []) == []


def test_fitted_primary_measure_is_skipped_with_the_reason(tmp_path: Path) -> None:
    study = _study(tmp_path, 'primary_measure = "mean_cca"\nstability_resamples = 5')
    res = run_study(load_study(study), tmp_path / "out", progress=False, report=False)
    entries = res.extras["match_stability"]
    assert len(entries) == 3
    for e in entries:
        assert e["measure"] == "mean_cca" and e["records"] == []
        assert "fitted" in e["skipped"]


def test_primary_entry_prefers_default_parameters(tmp_path: Path) -> None:
    study = _study(tmp_path, measures='[{ name = "cka", kernel = "rbf" }, "cka", "rsa"]')
    spec = load_study(study)
    assert primary_entry(spec, "cka") == "cka"
    assert primary_entry(spec, "rsa") == "rsa"
    assert primary_entry(spec, "procrustes") is None
    rbf = primary_entry(spec, "cka[kernel=rbf]")  # a primary measure in the report's notation
    assert rbf is not None and rbf != "cka" and "rbf" in str(rbf)
    only = load_study(_study(tmp_path, measures='[{ name = "cka", kernel = "rbf" }]'))
    assert primary_entry(only, "cka") == {"name": "cka", "kernel": "rbf"}


@pytest.mark.parametrize("value", ["-1", '"50"', "2.5"])
def test_stability_resamples_is_checked(tmp_path: Path, value: str) -> None:
    with pytest.raises(StudySpecError, match="stability_resamples"):
        load_study(_study(tmp_path, f"stability_resamples = {value}"))
