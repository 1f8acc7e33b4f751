"""The command line: --version, measures with parameters, statistics options, --out, exit codes."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from repscope.cli.main import main
from repscope.core.version import __version__


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the ``repscope`` entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["repscope", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str, str]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.tanh(x @ rng.standard_normal((5, 5))))
    np.save(tmp_path / "z.npy", rng.standard_normal((40, 3)))  # another width
    return str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), str(tmp_path / "z.npy")


def test_version(monkeypatch, capsys) -> None:
    code, out, err = _run(["--version"], monkeypatch, capsys)
    assert (code, out, err) == (0, f"repscope {__version__}\n", "")


def test_measure_parameters_in_the_report_notation(pair, monkeypatch, capsys) -> None:
    x, y, _ = pair
    code, out, err = _run(["compare", x, y, "-m", "cka[kernel=rbf,sigma=0.5]", "-m", "CKA",
                           "--json"], monkeypatch, capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["measure"] for r in rows] == ["cka", "cka"]
    assert rows[0]["params"] == {"kernel": "rbf", "sigma": 0.5, "debiased": False}
    assert rows[1]["params"]["kernel"] == "linear"
    assert rows[0]["value"] != rows[1]["value"]


def test_unknown_measure_names_the_cli_command(pair, monkeypatch, capsys) -> None:
    x, y, _ = pair
    code, out, err = _run(["compare", x, y, "-m", "ckaa"], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err == ("error: unknown measure 'ckaa'; did you mean cka, cknna? "
                   "(run `repscope measures` to list them)\n")
    assert "list_measures" not in err


def test_unknown_parameter_lists_the_parameters(pair, monkeypatch, capsys) -> None:
    x, y, _ = pair
    code, _, err = _run(["compare", x, y, "-m", "cka[kernal=rbf]"], monkeypatch, capsys)
    assert code == 2
    assert err == "error: cka: unknown parameter(s) kernal; allowed: debiased, kernel, sigma\n"


def test_statistics_options(pair, monkeypatch, capsys) -> None:
    x, y, _ = pair
    code, out, err = _run(["compare", x, y, "-m", "cka", "--permutations", "39", "--json"],
                          monkeypatch, capsys)
    assert code == 0, err
    row = json.loads(out)[0]
    assert row["pvalue"] is not None and row["p_floor"] == pytest.approx(1 / 40)
    assert row["ci_low"] is None
    code, out, err = _run(["compare", x, y, "-m", "cka", "--n-boot", "30", "--ci-method",
                           "percentile", "--json"], monkeypatch, capsys)
    assert code == 0, err
    row = json.loads(out)[0]
    assert row["ci_low"] is not None and row["pvalue"] is None
    assert row["estimate"] == row["value"]  # percentile: no bias correction
    code, out, err = _run(["compare", x, y, "-m", "cka", "--ci-method", "jackknife", "--json"],
                          monkeypatch, capsys)
    row = json.loads(out)[0]
    assert code == 0 and row["ci_low"] is not None and row["estimate"] != row["value"]
    code, _, err = _run(["compare", x, y, "--ci-method", "studentized"], monkeypatch, capsys)
    assert code == 2 and "jackknife" in err


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_out_writes_the_table(pair, suffix: str, tmp_path: Path, monkeypatch, capsys) -> None:
    x, y, _ = pair
    path = tmp_path / "sub" / f"results{suffix}"
    code, out, err = _run(["compare", x, y, "-m", "cka", "-m", "procrustes", "--out",
                           str(path)], monkeypatch, capsys)
    assert code == 0, err
    assert "cka" in out and f"2 rows written to {path}" in err
    if suffix == ".json":
        rows = json.loads(path.read_text())
        assert [r["measure"] for r in rows] == ["cka", "procrustes"]
        assert rows[0]["params"] == {"kernel": "linear", "sigma": 0.8, "debiased": False}
    else:
        with path.open() as f:
            rows = list(csv.DictReader(f))
        assert [r["measure"] for r in rows] == ["cka", "procrustes"]
        assert json.loads(rows[0]["params"])["kernel"] == "linear"
        assert float(rows[0]["value"]) > 0 and rows[0]["error"] == ""


def test_out_of_unknown_type_is_refused_first(pair, tmp_path: Path, monkeypatch, capsys) -> None:
    x, y, _ = pair
    code, out, err = _run(["compare", x, y, "--out", str(tmp_path / "r.xlsx")], monkeypatch,
                          capsys)
    assert code == 2 and out == "" and ".csv, .json, .parquet" in err


def test_parquet_without_pyarrow_says_how_to_install(pair, tmp_path: Path, monkeypatch,
                                                     capsys) -> None:
    x, y, _ = pair
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    code, _, err = _run(["compare", x, y, "-m", "cka", "--out", str(tmp_path / "r.parquet")],
                        monkeypatch, capsys)
    assert code == 2 and "pip install pyarrow" in err


def test_parquet_round_trip(pair, tmp_path: Path, monkeypatch, capsys) -> None:
    pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    x, y, _ = pair
    path = tmp_path / "r.parquet"
    code, _, err = _run(["compare", x, y, "-m", "cka", "--out", str(path)], monkeypatch, capsys)
    assert code == 0, err
    assert list(pd.read_parquet(path)["measure"]) == ["cka"]


def test_a_failed_measure_exits_1(pair, monkeypatch, capsys) -> None:
    x, _, z = pair  # permutation_procrustes needs equal widths: 5 and 3
    code, out, err = _run(["compare", x, z, "-m", "permutation_procrustes"], monkeypatch, capsys)
    assert code == 1
    assert "permutation_procrustes" in out  # the table is printed, with its error note
    assert err.startswith("error: permutation_procrustes failed for the pair: ")
    code, _, err = _run(["compare", x, z, "-m", "cka", "-m", "permutation_procrustes"],
                        monkeypatch, capsys)
    assert code == 1 and "permutation_procrustes failed" in err and "cka failed" not in err
    code, _, err = _run(["compare", x, z, "-m", "cka"], monkeypatch, capsys)
    assert code == 0 and err == ""


def test_memory_budget(tmp_path: Path, monkeypatch, capsys) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 5))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", x + rng.standard_normal((600, 5)))
    args = ["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "-m", "cka", "--json"]
    code, out, err = _run([*args, "--memory", "100KiB"], monkeypatch, capsys)
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["path"] == "exact-blocked"
    code, out, err = _run(args, monkeypatch, capsys)
    assert json.loads(out)[0]["path"] == "exact"
    assert json.loads(out)[0]["value"] == pytest.approx(row["value"], rel=1e-9)
    code, out, err = _run([*args, "--memory", "a lot"], monkeypatch, capsys)
    assert code == 2 and "memory" in err
