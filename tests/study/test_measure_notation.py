"""Study files name measures as the report labels them: ``"cka[kernel=rbf]"``, any case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repscope.study.spec import StudySpecError, parse_study


def _study(compare: list, stats: list | None = None, primary: str | None = None) -> dict:
    doc: dict = {"study": {"name": "s"},
                 "models": [{"name": "a", "activations": {"l": "a.npy"}},
                            {"name": "b", "activations": {"l": "b.npy"}}],
                 "compare": {"measures": compare}}
    if stats is not None:
        doc["stats"] = {"permutations": 10, "measures": stats}
    if primary is not None:
        doc["report"] = {"primary_measure": primary}
    return doc


def _parse(doc: dict, tmp_path: Path):
    for name in ("a.npy", "b.npy"):
        if not (tmp_path / name).exists():
            np.save(tmp_path / name, np.zeros((5, 2)))
    return parse_study(doc, tmp_path)


def test_notation_and_case_in_all_three_places(tmp_path: Path) -> None:
    spec = _parse(_study(["CKA[kernel=rbf, sigma=1]", "cka", "Procrustes"],
                         stats=["cka[sigma=1.0,kernel=rbf]", "PROCRUSTES"],
                         primary="Cka[kernel=rbf,sigma=1]"), tmp_path)
    rbf = {"name": "cka", "kernel": "rbf", "sigma": 1.0}
    assert spec.measures == (rbf, "cka", "procrustes")
    assert spec.stats_measures == (rbf, "procrustes")
    assert spec.primary_measure == "cka[kernel=rbf,sigma=1.0]"  # the report's label


def test_tables_and_notation_are_the_same_entries(tmp_path: Path) -> None:
    spec = _parse(_study([{"name": "cka", "kernel": "rbf"}, "cka"],
                         stats=["cka[kernel=rbf]", "cka[kernel=linear]"]), tmp_path)
    assert spec.stats_measures == ({"name": "cka", "kernel": "rbf"},
                                   {"name": "cka", "kernel": "linear"})  # = "cka"


def test_bare_primary_name_picks_the_only_entry_of_that_measure(tmp_path: Path) -> None:
    spec = _parse(_study(["cka[kernel=rbf]", "procrustes"], primary="CKA"), tmp_path)
    assert spec.primary_measure == "cka[kernel=rbf]"
    spec = _parse(_study(["cka[kernel=rbf]", "cka"], primary="cka"), tmp_path)
    assert spec.primary_measure == "cka"  # the default-parameter entry is "cka" itself


@pytest.mark.parametrize("doc, message", [
    (_study(["cka[kernal=rbf]"]),
     "[compare] measures: cka: unknown parameter(s) kernal; allowed: debiased, kernel, sigma"),
    (_study(["ckaa[kernel=rbf]"]),
     "[compare] measures: unknown measure 'ckaa'; did you mean cka"),
    (_study(["cka[kernel]"]), "[compare] measures: cannot read measure 'cka[kernel]'"),
    (_study(["cka"], stats=["cka[kernel=rbf]"]),
     '[stats] measures: "cka[kernel=rbf]" is not one of the [compare] measures (cka); did you '
     'mean "cka"?'),
    (_study(["cka", "procrustes"], primary="cka[kernel=rbf]"),
     '[report] primary_measure "cka[kernel=rbf]" is not one of the [compare] measures '
     "(cka, procrustes); did you mean \"cka\"?"),
    (_study(["cka[kernel=rbf]", "cka[debiased=true]"], primary="cka"),
     '[report] primary_measure "cka" matches several [compare] measures (cka[kernel=rbf], '
     "cka[debiased=True]); write one of them"),
    (_study([{"name": "cka[kernel=rbf]"}]), "in a table, write the parameters as keys"),
])
def test_one_line_errors(doc: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(StudySpecError) as info:
        _parse(doc, tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_study_with_the_notation_runs_and_labels_its_rows(tmp_path: Path) -> None:
    from repscope.report.build import measure_label
    from repscope.study import run_study

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4))
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "b.npy", np.tanh(x))
    spec = _parse(_study(["CKA[kernel=rbf]", "procrustes"], primary="cka[kernel=rbf]"),
                  tmp_path)
    out = run_study(spec, tmp_path / "out", report=False, progress=False)
    from repscope.storage.results_db import ResultsDB

    with ResultsDB(out.db_path) as db:
        rows = db.rows()
    labels = sorted(measure_label(r["measure"], r["params"]) for r in rows)
    assert labels == ["cka[kernel=rbf]", "procrustes"]
    assert out.extras["primary_measure"] == "cka[kernel=rbf]"
