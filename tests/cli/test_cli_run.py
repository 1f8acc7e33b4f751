"""``repscope run``: statistics overrides, exit code 1 for a measure that fails everywhere,
and messages that name commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from repscope.cli.main import main
from repscope.storage.results_db import ResultsDB


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["repscope", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _study(tmp_path: Path, measures: str, stats: str = "") -> Path:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 4))
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "b.npy", np.tanh(x @ rng.standard_normal((4, 3))))
    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nname = "s"\n'
        '[[models]]\nname = "a"\nactivations = { l = "a.npy" }\n'
        '[[models]]\nname = "b"\nactivations = { l = "b.npy" }\n'
        f"[compare]\nmeasures = {measures}\nprofile = false\n{stats}")
    return path


def _rows(out: Path) -> list[dict]:
    with ResultsDB(out / "results.sqlite") as db:
        return db.rows()


def test_overrides_switch_statistics_on(tmp_path: Path, monkeypatch, capsys) -> None:
    study = _study(tmp_path, '["CKA[kernel=rbf]"]')
    out = tmp_path / "out"
    code, stdout, err = _run(["run", str(study), "--out", str(out), "--no-report", "--json",
                              "--permutations", "19", "--n-boot", "20", "--ci-method",
                              "percentile"], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads(stdout)["rows"] == 1
    (row,) = _rows(out)
    assert json.loads(row["params"])["kernel"] == "rbf"
    assert row["pvalue"] is not None and row["ci_low"] is not None
    stats = json.loads(row["stats"])
    assert stats["n_permutations"] >= 19 and stats["n_boot"] == 20
    assert stats["ci_method"] == "percentile"


def test_ci_method_alone_turns_intervals_on(tmp_path: Path, monkeypatch, capsys) -> None:
    study = _study(tmp_path, '["cka"]')
    out = tmp_path / "out"
    code, _, err = _run(["run", str(study), "--out", str(out), "--no-report", "-q",
                         "--ci-method", "normal"], monkeypatch, capsys)
    assert code == 0, err
    (row,) = _rows(out)
    assert row["ci_low"] is not None and row["pvalue"] is None
    assert json.loads(row["stats"])["ci_method"] == "normal"


def test_a_measure_failing_for_every_pair_exits_1(tmp_path: Path, monkeypatch, capsys) -> None:
    study = _study(tmp_path, '["cka", "permutation_procrustes"]')  # widths 4 and 3
    code, stdout, err = _run(["run", str(study), "--out", str(tmp_path / "out"), "--no-report"],
                             monkeypatch, capsys)
    assert code == 1
    assert "2 result rows" in stdout
    assert err.startswith("error: permutation_procrustes failed for every pair: ")
    assert "cka failed" not in err


def test_study_errors_name_the_cli_command(tmp_path: Path, monkeypatch, capsys) -> None:
    study = _study(tmp_path, '["ckaa"]')
    code, _, err = _run(["run", str(study), "--out", str(tmp_path / "out")], monkeypatch,
                        capsys)
    assert code == 2
    assert "unknown measure 'ckaa'; did you mean cka" in err
    assert "(run `repscope measures` to list them)" in err and "list_measures" not in err


def test_python_api_keeps_naming_the_function(tmp_path: Path) -> None:
    from repscope.study import load_study
    from repscope.study.spec import StudySpecError

    with pytest.raises(StudySpecError, match=r"repscope\.list_measures\(\) lists all"):
        load_study(_study(tmp_path, '["ckaa"]'))


def test_memory_key_and_option(tmp_path: Path, monkeypatch, capsys) -> None:
    study = _study(tmp_path, '["cka"]', 'memory = "1KiB"\n')
    out = tmp_path / "out"
    code, _, err = _run(["run", str(study), "--out", str(out), "--no-report", "-q"],
                        monkeypatch, capsys)
    assert code == 1 and "MemoryBudgetError" in err
    (row,) = _rows(out)
    assert "n <=" in row["error"]
    out2 = tmp_path / "out2"
    code, _, err = _run(["run", str(study), "--out", str(out2), "--no-report", "-q",
                         "--memory", "1GiB"], monkeypatch, capsys)
    assert code == 0, err
    (row,) = _rows(out2)
    assert row["path"] == "exact" and row["error"] is None
    bad = _study(tmp_path, '["cka"]', 'memory = "lots"\n')
    code, _, err = _run(["run", str(bad), "--out", str(tmp_path / "o3"), "--no-report", "-q"],
                        monkeypatch, capsys)
    assert code == 2 and "memory" in err
