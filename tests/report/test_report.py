from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import figure_status, open_page, severe_console_errors

import repscope
from repscope.report import build_report, write_report
from repscope.report.build import best_matches


def _results(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for a, b in [("A", "B"), ("A", "C"), ("B", "C")]:
        for i, la in enumerate(["layer1", "layer2", "layer10"]):
            for j, lb in enumerate(["layer1", "layer2", "layer10"]):
                for m in ["cka", "procrustes"]:
                    diag = 0.9 if i == j else 0.3
                    v = diag + 0.05 * rng.uniform() if m == "cka" else 1 - diag
                    rows.append(dict(model_a=a, layer_a=la, model_b=b, layer_b=lb, measure=m,
                                     params="{}", n=100, seed=0, value=v, ci_low=v - 0.1,
                                     ci_high=v + 0.1, pvalue=0.01, calibrated=v, warnings=""))
    return pd.DataFrame(rows)


EXTRAS = {
    "findings": ["A and B agree layer by layer."],
    "profiles": [{"model_a": "A", "layer_a": "layer1", "model_b": "B", "layer_b": "layer1",
                  "sentence": "equal up to rotation (Procrustes similarity 0.99)"}],
    "probes": [{"model": "A", "layer": f"layer{i}", "accuracy": 0.5 + i / 10} for i in (1, 2)],
    "stitching": [{"model_a": "A", "model_b": "B", "layers_a": ["layer1", "layer2"],
                   "layers_b": ["layer1", "layer2"], "matrix": [[1.0, 0.9], [0.8, 1.0]]}],
}


def test_best_matches_follow_measure_direction() -> None:
    df = _results()
    sim = best_matches(df, "cka", "A", "B")
    dist = best_matches(df, "procrustes", "A", "B")
    assert [m["layer_b"] for m in sim] == ["layer1", "layer2", "layer10"]
    assert [m["layer_b"] for m in dist] == ["layer1", "layer2", "layer10"]


def test_report_contents() -> None:
    rep = build_report(_results(), EXTRAS, title="t")
    html = rep.render()
    assert "Best-matching layers (cka)" in html
    assert "equal up to rotation" in html
    assert "Model stitching" in html and "Linear probes" in html
    assert "Do the measures agree?" in html
    # layer order is natural (layer2 before layer10) in the best-match table
    assert html.index("<td>layer2</td>") < html.index("<td>layer10</td>")
    assert rep.n_figures == html.count('class="rs-figure"') > 10


def test_empty_results_raise() -> None:
    with pytest.raises(repscope.RepscopeError, match="no results"):
        build_report(pd.DataFrame(columns=["measure"]))


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    path = write_report(tmp_path / "report.html", _results(), EXTRAS, title="browser test")
    drv = open_page(path)
    try:
        assert drv.title == "browser test"
        status = figure_status(drv)
        assert status["total"] > 10
        assert status["rendered"] == status["total"], status
        assert severe_console_errors(drv) == []
        drv.save_screenshot(str(tmp_path / "shot.png"))
    finally:
        drv.quit()
    assert (tmp_path / "shot.png").stat().st_size > 10_000
