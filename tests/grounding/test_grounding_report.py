"""The report's "Which measure to trust" section, from a grounding result beside a study."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest

import repscope
from repscope.grounding import run_grounding, zoo_from_arrays


def _grounding() -> dict:
    rng = np.random.default_rng(0)
    z = [rng.normal(size=(80, 6)) for _ in range(3)]
    reps = {f"s{s}": {f"l{i}": zi @ rng.normal(size=(6, 6)) + 0.2 * rng.normal(size=(80, 6))
                      for i, zi in enumerate(z)} for s in range(3)}
    res = run_grounding(zoo_from_arrays(reps, {}, np.zeros(80, dtype=int)),
                        [("cka", {}), ("magnitude_difference", {})], n_boot=15)
    return json.loads(json.dumps(res.to_dict(), default=str))


def test_report_shows_the_grounding_table_found_beside_the_study(tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    from repscope.storage.results_db import ResultsDB

    data = _grounding()
    assert data["advice"] and data["chance"]["layer_identification"] == pytest.approx(1 / 3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5))
    with ResultsDB(tmp_path / "results.sqlite") as db:
        repscope.grid({"A": {"l": x}, "B": {"l": np.tanh(x)}}, measures=["cka"], db=db,
                      progress=False)
    plain = repscope.report.build_report(tmp_path).render()
    assert "grounding-questions" not in plain  # nothing to show without a grounding result
    (tmp_path / "grounding").mkdir()
    (tmp_path / "grounding" / "grounding.json").write_text(json.dumps(data))
    page = html.unescape(repscope.report.build_report(tmp_path).render())
    assert '<a href="#grounding-questions">' in page and 'id="grounding-table"' in page
    for a in data["advice"]:
        assert a["sentence"] in page
    cka = next(r for r in data["rows"] if r["measure"] == "cka"
               and r["test"] == "layer_identification")
    assert f"{cka['score']:.2f} [{cka['ci_low']:.2f}, {cka['ci_high']:.2f}] ({cka['rank']})" \
        in page
    (tmp_path / "grounding" / "grounding.json").write_text("{not json")
    with pytest.raises(repscope.RepscopeError, match="not readable JSON"):
        repscope.report.build_report(tmp_path)
