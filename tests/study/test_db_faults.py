"""A damaged results database is a one-line error (exit code 2) with the path and what to do.

Regression test of issue 14: a database whose data pages were overwritten made
``repscope report`` end in a raw ``sqlite3.DatabaseError`` traceback.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from repscope.cli.main import main
from repscope.storage.results_db import ResultsDB, ResultsDBError


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["repscope", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0), capsys.readouterr().err


def _study(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 4))
    lines = []
    for model in ("a", "b"):
        acts = []
        for layer in range(2):
            np.save(tmp_path / f"{model}{layer}.npy", np.tanh(z @ rng.normal(size=(4, 6))))
            acts.append(f'l{layer} = "{model}{layer}.npy"')
        lines.append(f'[[models]]\nname = "{model}"\nactivations = {{ {", ".join(acts)} }}\n')
    path = tmp_path / "study.toml"
    path.write_text("\n".join(lines) + '[compare]\nmeasures = ["cka", "procrustes"]\n'
                    "profile = false\n")
    return path


def _overwrite_data_pages(db: Path, seed: int = 0) -> None:
    """Garbage over every page but the first (the header and schema stay intact)."""
    raw = bytearray(db.read_bytes())
    page = int.from_bytes(raw[16:18], "big")
    page = 65536 if page == 1 else page
    assert len(raw) >= 2 * page, "the database has no data pages to damage"
    noise = np.random.default_rng(seed).integers(0, 256, size=len(raw) - page, dtype=np.uint8)
    raw[page:] = noise.tobytes()
    db.write_bytes(bytes(raw))


def _damaged(message: str, db: Path) -> None:
    assert message.count("\n") == 1 and message.startswith("error: "), message
    assert f"results database {db} is damaged" in message
    assert "PRAGMA integrity_check" in message and "run the study again" in message
    assert "Traceback" not in message


def test_report_and_run_on_a_corrupted_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    study, out = _study(tmp_path), tmp_path / "out"
    code, err = _cli(["run", str(study), "--out", str(out), "-q"], monkeypatch, capsys)
    assert code == 0, err
    db = out / "results.sqlite"
    assert not (out / "results.sqlite-wal").exists()  # checkpointed on close
    _overwrite_data_pages(db)
    code, err = _cli(["report", str(out)], monkeypatch, capsys)
    assert code == 2
    _damaged(err, db)
    code, err = _cli(["run", str(study), "--out", str(out), "-q"], monkeypatch, capsys)
    assert code == 2
    _damaged(err, db)
    # what the message says works: move it aside, run again, the report is back
    db.rename(tmp_path / "results.sqlite.damaged")
    code, err = _cli(["run", str(study), "--out", str(out), "-q"], monkeypatch, capsys)
    assert code == 0, err
    code, err = _cli(["report", str(out)], monkeypatch, capsys)
    assert code == 0, err


def _filled(tmp_path: Path, rows: int = 200) -> Path:
    path = tmp_path / "r.sqlite"
    with ResultsDB(path) as db:
        for i in range(rows):
            db.insert(dict(model_a="a", layer_a=i, model_b="b", layer_b="l", measure="cka",
                           params={}, stats={}, n=10, seed=0, value=0.5, warnings=["w"] * 3))
    return path


def test_every_access_to_a_damaged_database_is_a_repscope_error(tmp_path: Path) -> None:
    path = _filled(tmp_path)
    _overwrite_data_pages(path, seed=1)
    db = ResultsDB(path)  # the header and schema are intact: opening works
    try:
        for read in (db.check, db.rows, db.done_keys, db.to_pandas, lambda: len(db)):
            with pytest.raises(ResultsDBError, match=r"is damaged .*PRAGMA integrity_check"):
                read()
        with pytest.raises(ResultsDBError, match=r"is damaged \(.*while writing a row\)"):
            db.insert(dict(model_a="x", layer_a=0, model_b="y", layer_b=0, measure="cka",
                           params={}, stats={}, n=10, seed=0, value=0.1))
    finally:
        db.close()


def test_not_a_database_and_a_locked_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(np.random.default_rng(2).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    with pytest.raises(ResultsDBError, match=r"junk.sqlite is damaged \(file is not a database, "
                                             r"while opening it\)"):
        ResultsDB(junk)
    path = _filled(tmp_path, rows=3)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process is writing
    try:
        with ResultsDB(path, timeout=0.05) as db:
            with pytest.raises(ResultsDBError, match=r"database is locked .*another process is "
                                                     r"using it"):
                db.insert(dict(model_a="x", layer_a=0, model_b="y", layer_b=0, measure="cka",
                               params={}, stats={}, n=10, seed=0, value=0.1))
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_malformed_cells_are_damage_too(tmp_path: Path) -> None:
    path = _filled(tmp_path, rows=2)
    con = sqlite3.connect(path)
    con.execute("UPDATE results SET warnings = '[not json' WHERE layer_a = 1")
    con.commit()
    con.close()
    with ResultsDB(path) as db, pytest.raises(ResultsDBError, match="row 2 holds malformed"):
        db.rows()


def test_damaged_extras_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    study, out = _study(tmp_path), tmp_path / "out"
    assert _cli(["run", str(study), "--out", str(out), "-q", "--no-report"], monkeypatch,
                capsys)[0] == 0
    (out / "extras.json").write_text('{"probes": [')
    code, err = _cli(["report", str(out)], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"{out / 'extras.json'} is damaged" in err and "move it aside" in err
