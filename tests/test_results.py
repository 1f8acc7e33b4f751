"""Tests of repscope.storage.results_db: the SQLite results database."""

from __future__ import annotations

import json
import sqlite3
import sys

import numpy as np
import pandas as pd
import pytest

import repscope
from repscope.core.errors import InvalidParameterError, MissingDependencyError, RepscopeError
from repscope.storage import results_db as results
from repscope.storage.results_db import (
    COLUMNS,
    IDENTITY_COLUMNS,
    KEY_COLUMNS,
    ResultKey,
    ResultsDB,
    canonical_json,
)


def row(**kw):
    base = dict(model_a="a", layer_a=0, model_b="b", layer_b="fc1", measure="cka",
                params={"kernel": "linear"}, stats={}, n=10, seed=0, value=0.5)
    base.update(kw)
    return base


@pytest.fixture
def db(tmp_path):
    with ResultsDB(tmp_path / "sub" / "r.sqlite") as d:
        yield d


def test_insert_has_and_no_duplicates(db):
    assert db.insert(row())
    assert not db.insert(row(value=0.9))  # same key: ignored, first row kept
    assert len(db) == 1
    assert db.rows()[0]["value"] == 0.5
    key = ResultKey.make("a", 0, "b", "fc1", "cka", params={"kernel": "linear"}, n=10)
    assert db.has(key)
    assert not db.has(key._replace(seed=1))
    assert db.done_keys() == {key}
    assert db.insert(row(value=0.9), replace=True)
    assert len(db) == 1 and db.rows()[0]["value"] == 0.9


def test_key_distinguishes_every_key_column(db):
    variants = [row(), row(dataset="d2"), row(model_a="a2"), row(layer_a=1), row(model_b="c"),
                row(layer_b="fc2"), row(measure="procrustes"), row(params={"kernel": "rbf"}),
                row(stats={"n_permutations": 10}), row(n=11), row(seed=3)]
    for r in variants:
        assert db.insert(r)
    assert len(db) == len(variants)
    assert len(db.done_keys()) == len(variants)


def test_layer_types_and_values_round_trip(db):
    db.insert(
        row(warnings=("DegeneracyWarning: small n",), pvalue=np.float64(0.01), dx=np.int64(3))
    )
    r = db.rows()[0]
    assert r["layer_a"] == 0 and isinstance(r["layer_a"], int)
    assert r["layer_b"] == "fc1"
    assert r["warnings"] == ["DegeneracyWarning: small n"]
    assert r["pvalue"] == 0.01 and r["dx"] == 3
    assert json.loads(r["params"]) == {"kernel": "linear"}
    assert r["repscope_version"] == repscope.__version__
    assert r["numpy_version"] == np.__version__
    assert r["run_id"] == db.run_id and r["timestamp"].endswith("+00:00")
    assert set(r) == set(COLUMNS)


def test_canonical_json_is_order_independent_and_hashes_arrays():
    assert canonical_json({"b": 1, "a": 2.0}) == canonical_json({"a": 2.0, "b": 1}) == (
        '{"a":2.0,"b":1}'
    )
    a = canonical_json({"labels": np.arange(5)})
    assert a == canonical_json({"labels": np.arange(5)})
    assert a != canonical_json({"labels": np.arange(6)})
    assert "array_sha256" in a
    assert canonical_json({"x": float("inf"), "y": np.int32(3), "z": (1, None)}) == (
        '{"x":"inf","y":3,"z":[1,null]}'
    )


def test_wal_mode_and_schema(db):
    con = sqlite3.connect(db.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = [r[1] for r in con.execute("PRAGMA table_info(results)")]
    assert cols == ["id", *COLUMNS]
    idx = [r for r in con.execute("PRAGMA index_list(results)") if r[2] == 1]
    unique_cols = [r[2] for r in con.execute(f"PRAGMA index_info({idx[0][1]})")]
    assert tuple(unique_cols) == IDENTITY_COLUMNS == KEY_COLUMNS[:-1]
    con.close()


def test_two_connections_never_duplicate(tmp_path):
    p = tmp_path / "r.sqlite"
    with ResultsDB(p) as d1, ResultsDB(p) as d2:
        assert d1.insert(row())
        assert not d2.insert(row(value=2.0))
        assert d2.has(ResultKey.make("a", 0, "b", "fc1", "cka", params={"kernel": "linear"},
                                     n=10))
        assert len(d1) == len(d2) == 1


def test_filters_delete_and_errors(db):
    db.insert(row())
    db.insert(row(measure="procrustes", value=None, error="InputShapeError: widths"))
    assert [r["measure"] for r in db.rows(measure="procrustes")] == ["procrustes"]
    assert len(db.rows(params={"kernel": "linear"})) == 2
    assert len(db.rows(error=None)) == 1
    assert len(db.done_keys(include_errors=False)) == 1
    key = ResultKey(*(db.rows(measure="procrustes")[0][c] for c in KEY_COLUMNS))
    assert db.has(key) and not db.has(key, include_errors=False)
    assert db.delete(measure="procrustes") == 1
    assert len(db) == 1
    with pytest.raises(InvalidParameterError):
        db.rows(colour="red")
    with pytest.raises(InvalidParameterError):
        db.insert({**row(), "colour": "red"})
    with pytest.raises(InvalidParameterError):
        db.insert({"model_a": "a"})
    with pytest.raises(InvalidParameterError):
        db.insert(row(layer_a=1.5))
    with pytest.raises(InvalidParameterError):
        db.insert(row(model_a=3))


def test_export_pandas_csv(db, tmp_path):
    db.insert(row(warnings=["w1", "w2"]))
    db.insert(row(layer_a=1, value=0.25))
    df = db.to_pandas()
    assert list(df.columns) == list(COLUMNS)
    assert df["value"].tolist() == [0.5, 0.25]
    assert df["warnings"].tolist() == ["w1 | w2", ""]
    out = db.to_csv(tmp_path / "r.csv")
    back = pd.read_csv(out)
    assert back["value"].tolist() == [0.5, 0.25]
    assert back["layer_a"].tolist() == [0, 1]
    assert len(db.to_pandas(layer_a=1)) == 1


def test_parquet_needs_pyarrow(db, tmp_path, monkeypatch):
    db.insert(row())
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match="pip install pyarrow"):
        db.to_parquet(tmp_path / "r.parquet")


def test_parquet_round_trip(db, tmp_path):
    pytest.importorskip("pyarrow")
    db.insert(row())
    db.insert(row(layer_a="conv", value=0.1))  # mixed int/str layers become strings
    back = pd.read_parquet(db.to_parquet(tmp_path / "r.parquet"))
    assert back["value"].tolist() == [0.5, 0.1]
    assert back["layer_a"].tolist() == ["0", "conv"]


def test_bad_database_files(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RepscopeError):
        ResultsDB(junk)
    with pytest.raises(InvalidParameterError):
        ResultsDB(tmp_path)
    old = tmp_path / "old.sqlite"
    ResultsDB(old).close()
    con = sqlite3.connect(old)
    con.execute("PRAGMA user_version=99")
    con.close()
    with pytest.raises(RepscopeError, match="schema version 99"):
        ResultsDB(old)


def test_environment_versions():
    env = results.environment()
    assert env["repscope_version"] == repscope.__version__
    assert env["numpy_version"] == np.__version__
    assert set(env) == {"repscope_version", "numpy_version", "torch_version", "python_version"}


def test_batch_commits_together_and_rolls_back_on_error(db):
    other = sqlite3.connect(str(db.path))
    with db.batch():
        db.insert(row())
        db.insert(row(seed=1))
        # not visible to another connection before the block ends
        assert other.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    assert other.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2
    with pytest.raises(RuntimeError), db.batch():
        db.insert(row(seed=2))
        raise RuntimeError("stop")
    assert len(db) == 2 and other.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2
    other.close()
