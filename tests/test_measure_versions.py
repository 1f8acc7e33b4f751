"""Versioned meaning: every measure has a version that keys its stored results."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import repscope
from repscope.engine.compare import compare
from repscope.engine.grid import grid
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import MeasureInfo, _json_param
from repscope.storage.results_db import IDENTITY_COLUMNS, ResultKey, ResultsDB

SNAPSHOT = Path(__file__).with_name("measure_versions.json")


def test_every_measure_has_a_version_in_its_metadata() -> None:
    for info in repscope.list_measures():
        assert isinstance(info.version, int) and info.version >= 1
        assert info.as_dict()["version"] == info.version
    with pytest.raises(ValueError, match="version"):
        dataclasses.replace(repscope.measure_info("cka"), version=0)


def test_a_changed_default_needs_a_version_bump() -> None:
    """Defaults recorded with each measure's version (tests/measure_versions.json).

    Changing a default changes what ``measure(name)`` computes, so stored rows
    of the old meaning must not be reused: bump ``MeasureInfo.version`` and
    record the new defaults and version in the snapshot.  (New measures: add
    an entry.)
    """
    recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    stale = []
    for info in repscope.list_measures():
        if info.name not in recorded:
            continue
        now = {k: _json_param(v) for k, v in info.params.items()}
        was = recorded[info.name]
        if now != was["defaults"] and info.version == was["version"]:
            stale.append(f"{info.name}: defaults {was['defaults']} → {now} without a version bump")
        assert info.version >= was["version"], f"{info.name}: version went down"
    assert stale == []


# ------------------------------------------------------------- keys and rows
class _Versioned(Measure):
    """A measure whose meaning has version 1; :func:`_bumped` makes version 2 of it."""

    compares: ClassVar[list[int]] = []
    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_versioned", family="custom", kind="similarity", value_range=(-1.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=2,
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        _Versioned.compares.append(self.info.version)
        return float(np.corrcoef(px.data[:, 0], py.data[:, 0])[0, 1]) / self.info.version


class _Bumped(_Versioned):
    info: ClassVar[MeasureInfo] = dataclasses.replace(_Versioned.info, version=2)


@pytest.fixture(autouse=True)
def _reset() -> None:
    _Versioned.compares.clear()


def _reps(rng: np.random.Generator) -> dict:
    return {(m, layer): rng.normal(size=(20, 3)) for m in ("a", "b") for layer in (0, 1)}


def test_version_is_in_the_key_the_row_and_the_database(rng, tmp_path) -> None:
    db = tmp_path / "r.sqlite"
    table = grid(_reps(rng), [_Versioned()], db=db)
    assert {r["measure_version"] for r in table} == {1}
    with ResultsDB(db) as d:
        keys = d.done_keys()
        assert {k.measure_version for k in keys} == {1}
        assert all(d.has(k) and not d.has(k._replace(measure_version=2)) for k in keys)
    assert "measure_version" in ResultKey._fields and "measure_version" not in IDENTITY_COLUMNS
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    assert compare(x, y, ["cka"])["cka"]["measure_version"] == repscope.measure_info("cka").version


def test_stale_rows_are_recomputed_and_replaced_not_reused(rng, tmp_path) -> None:
    db = tmp_path / "r.sqlite"
    reps = _reps(rng)
    first = grid(reps, [_Versioned()], db=db)
    assert _Versioned.compares == [1] * 4
    grid(reps, [_Versioned()], db=db)
    assert _Versioned.compares == [1] * 4  # same version: reused
    second = grid(reps, [_Bumped()], db=db)
    assert _Versioned.compares == [1] * 4 + [2] * 4  # new meaning: recomputed
    assert [r["value"] for r in second] == pytest.approx([r["value"] / 2 for r in first])
    with ResultsDB(db) as d:
        assert len(d) == 4 and {r["measure_version"] for r in d.rows()} == {2}


def _v1_database(path: Path) -> None:
    """A results database as repscope wrote it before measure versions (schema 1)."""
    identity = ", ".join(IDENTITY_COLUMNS)
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE results (id INTEGER PRIMARY KEY, dataset TEXT NOT NULL, model_a TEXT NOT "
        "NULL, layer_a NOT NULL, model_b TEXT NOT NULL, layer_b NOT NULL, measure TEXT NOT NULL, "
        "params TEXT NOT NULL, stats TEXT NOT NULL, n INTEGER NOT NULL, seed INTEGER NOT NULL, "
        "kind TEXT, dx INTEGER, dy INTEGER, value REAL, ci_low REAL, ci_high REAL, pvalue REAL, "
        "calibrated REAL, zscore REAL, null_mean REAL, null_sd REAL, heldout REAL, warnings TEXT "
        "NOT NULL DEFAULT '[]', error TEXT, seconds REAL, stats_seconds REAL, repscope_version "
        "TEXT, numpy_version TEXT, torch_version TEXT, python_version TEXT, run_id TEXT, "
        f"timestamp TEXT, UNIQUE ({identity}))"
    )
    con.execute(
        "INSERT INTO results (dataset, model_a, layer_a, model_b, layer_b, measure, params, "
        "stats, n, seed, value) VALUES ('', 'a', 0, 'b', 0, '_versioned', '{}', '{}', 20, 0, "
        "-9.0)"
    )
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()


def test_an_old_database_opens_and_its_unversioned_rows_are_stale(rng, tmp_path) -> None:
    db = tmp_path / "old.sqlite"
    _v1_database(db)
    with ResultsDB(db) as d:
        (old,) = d.rows()
        assert old["measure_version"] is None and old["value"] == -9.0 and old["p_floor"] is None
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()
    reps = _reps(rng)
    table = grid(reps, [_Versioned()], db=db)
    assert len(_Versioned.compares) == 4  # the unversioned row was recomputed, not reused
    assert -9.0 not in table.column("value")
    with ResultsDB(db) as d:
        assert len(d) == 4 and {r["measure_version"] for r in d.rows()} == {1}
