"""What a report may claim: held-out fitted values, degenerate cells, significance, versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from browser import panels_by_measure
from typer.testing import CliRunner

import repscope
from repscope.cli.main import app
from repscope.report import build_report
from repscope.storage.results_db import ResultsDB
from repscope.study import load_study, run_study
from repscope.views.marks import best_cells, prepare_results, version_warnings


def _figures(page: str) -> dict[str, list[dict[str, Any]]]:
    """``{measure label: [its layer × layer panels]}`` from the page's embedded data."""
    return panels_by_measure(page)


# ------------------------------------------------------------------ best cells
def test_best_cells_skip_degenerate_and_not_significant_cells() -> None:
    m = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.7], [0.3, 0.2, 0.1], [0.1, 0.2, 0.3]])
    degenerate = np.zeros(m.shape, dtype=bool)
    degenerate[0, 0] = True  # row 0: the 0.9 is degenerate → 0.5 is the best match
    verdicts = np.full(m.shape, "significant", dtype=object)
    verdicts[1, 1] = "not significant"  # row 1's best: no box (not the runner-up either)
    verdicts[2, 0] = "underpowered"  # row 2's best: no box
    verdicts[3, 2] = None  # untested: boxed
    assert best_cells(m, "max", degenerate=degenerate, verdicts=verdicts) == [(0, 1), (3, 2)]
    assert best_cells(m, "min") == [(0, 2), (1, 0), (2, 2), (3, 0)]
    assert best_cells(np.full((1, 2), np.nan), "max") == []


def _frame(**overrides) -> pd.DataFrame:
    rows = []
    for i, la in enumerate(["l1", "l2"]):
        for j, lb in enumerate(["l1", "l2"]):
            rows.append(dict(model_a="A", layer_a=la, model_b="B", layer_b=lb, measure="cka",
                             params="{}", n=50, seed=0, value=0.9 if i == j else 0.2,
                             pvalue=1 / 321 if i == j else 0.4, p_floor=1 / 321,
                             warnings="", measure_version=1))
    df = pd.DataFrame(rows)
    for (row, col), v in overrides.items():
        df.loc[row, col] = v
    return df


def test_report_marks_degenerate_and_not_significant_cells() -> None:
    df = _frame()
    df.loc[0, "warnings"] = "DegeneracyWarning: cka: n=5 samples is small"
    df.loc[3, "pvalue"] = 0.3  # l2→l2 is the best of its row but not significant
    page = build_report(df, {}, title="t").render()
    (fig,) = _figures(page)["cka"]
    assert fig["hatched"] == "l1→l1"
    assert fig["boxed"] == "l1→l2" or fig["boxed"] == ""  # never l1→l1 nor l2→l2
    assert "l1→l1" not in fig["boxed"] and "l2→l2" not in fig["boxed"]
    assert "Hatched: degenerate" in page and "ns: not significant" in page
    assert "≤ 0.00312" in page  # the floor 1/321 as an upper bound


def test_underpowered_cells_are_named_so(tmp_path: Path) -> None:
    df = _frame()
    df["p_floor"] = 1 / 21  # m = 20: a lone cell at its floor cannot pass BH over 4 cells
    df.loc[[0, 3], "pvalue"] = [1 / 21, 0.5]
    prepared = prepare_results(df.assign(measure_name=df.measure))
    assert prepared.loc[0, "significance"] == "underpowered"
    page = build_report(df, {}, title="t").render()
    assert "u: underpowered" in page and "underpowered" in page
    assert _figures(page)["cka"][0]["boxed"] == ""


def test_mixed_versions_warn_in_the_report_and_the_cli(tmp_path: Path) -> None:
    df = _frame()
    df.loc[0, "measure_version"] = None
    assert len(version_warnings(df)) == 1
    with pytest.warns(repscope.RepscopeWarning, match="mixed"):
        rep = build_report(df, {}, title="t")
    assert rep.warnings and "cka: rows of measure versions 1 and none" in rep.warnings[0]
    assert 'class="warning"' in rep.render()
    assert version_warnings(_frame()) == []
    out = tmp_path / "study"
    with ResultsDB(out / "results.sqlite") as db:
        for r in df.to_dict("records"):
            r = {k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))}
            if "measure_version" in r:
                r["measure_version"] = int(r["measure_version"])
            db.insert({**r, "stats": {"n_permutations": 320}, "warnings": []})
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert "warning: cka: rows of measure versions 1 and none" in res.output
    assert (out / "report.html").exists()


# ------------------------------------------- observation 2: the d ≈ n artefact
def _artefact_study(tmp_path: Path) -> Path:
    """n = 316: A's 256-unit layers against B's 16-unit ``match`` and 10-unit ``logits``.

    ``A/a1`` is related to ``B/match``; ``A/a2`` is unrelated to everything, yet its
    in-sample CCA with B's layers — the 10 random logits included — is ≈ 0.9 (the
    d ≈ n artefact);
    ``A/wide`` has 320 units ≥ n − 1 (degenerate for CCA).
    """
    rng = np.random.default_rng(0)
    n = 316
    a1, a2, wide = rng.normal(size=(n, 256)), rng.normal(size=(n, 256)), rng.normal(size=(n, 320))
    match = (np.hstack([a1[:, :8] @ rng.normal(size=(8, 8)), rng.normal(size=(n, 8))])
             + 0.5 * rng.normal(size=(n, 16)))
    arrays = {"a1": a1, "a2": a2, "wide": wide, "match": match, "logits": rng.normal(size=(n, 10))}
    for name, arr in arrays.items():
        np.save(tmp_path / f"{name}.npy", arr)
    text = """
[study]
name = "artefact"
[[models]]
name = "A"
activations = { a1 = "a1.npy", a2 = "a2.npy", wide = "wide.npy" }
[[models]]
name = "B"
activations = { match = "match.npy", logits = "logits.npy" }
[compare]
measures = ["mean_cca", "svcca", "cka"]
profile = false
[stats]
permutations = 20
measures = ["mean_cca", "svcca"]
"""
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("artefact")
    outcome = run_study(load_study(_artefact_study(tmp)), tmp / "out", progress=False)
    with ResultsDB(outcome.db_path) as db:
        results = db.to_pandas()
    return outcome, results


def test_in_sample_values_show_the_artefact(artefact) -> None:
    """The data do hold the artefact: in-sample, unrelated a2 'matches' the random logits."""
    _, results = artefact
    cca = results[(results.measure == "mean_cca") & (results.layer_a == "a2")]
    in_sample = dict(zip(cca.layer_b, cca.value))
    held_out = dict(zip(cca.layer_b, cca.heldout))
    assert min(in_sample.values()) > 0.85  # everything looks alike …
    assert max(abs(v) for v in held_out.values()) < 0.15  # … and nothing generalises


def test_report_shows_held_out_fitted_values_and_boxes_no_artefact(artefact) -> None:
    outcome, results = artefact
    page = Path(outcome.report_path).read_text(encoding="utf-8")
    figs = _figures(page)
    assert "mean_cca" not in figs and "mean_cca (in-sample)" not in figs
    (cca,) = figs["mean_cca (held-out)"]
    assert cca["boxed"] == "a1→match"  # a2's best cell is not significant, wide is degenerate
    assert cca["hatched"] == "wide→logits; wide→match"
    assert "svcca (held-out)" in figs and "Held-out value: fitted on a random half" in page
    # m rose to the family's need: 6 cells at q = 0.05 → m = 120
    assert set(results.loc[results.pvalue.notna(), "p_floor"]) == {1 / 121}


def test_in_sample_on_request_is_labelled_and_still_not_boxed(artefact) -> None:
    _, results = artefact
    page = build_report(results, {}, fitted="in_sample").render()
    figs = _figures(page)
    (cca,) = figs["mean_cca (in-sample)"]
    assert "a2→" not in cca["boxed"] and "wide→" not in cca["boxed"]
    assert "approaches 1 as d → n" in page
