"""The findings' results database (SQLite, ``findings.sqlite`` in the output folder).

Tables: ``models`` (name, kind, JSON info: accuracy, provenance), ``groups`` (one row
per pair of a group, with its units), ``profiles`` (one row per pair × relative depth
× invariance class: verdict, score, interval, null, ceiling, p-value, detectable
effect), ``knn`` (mutual kNN of every pair of a population, with both models'
capability), ``cells`` (the aggregates of a group × depth × class) and
``findings`` (number, sentence, JSON evidence).  Profile rows are keyed by the
settings that produced them, so a rerun with the same settings skips them
(resumable) and different settings never mix.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["PROFILE_COLUMNS", "ResultsStore"]

PROFILE_COLUMNS = ("a", "b", "depth", "layer_a", "layer_b", "n", "dx", "dy", "class",
                   "verdict", "verdict_profile", "score", "ci_low", "ci_high", "null_mean",
                   "null_q95", "ceiling", "pvalue", "pvalue_raw", "p_floor", "detectable", "reason",
                   "settings")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS models (name TEXT PRIMARY KEY, kind TEXT, info TEXT);
CREATE TABLE IF NOT EXISTS groups (gkey TEXT, factor TEXT, name TEXT, question TEXT,
    level REAL, kind TEXT, a TEXT, b TEXT, unit_a TEXT, unit_b TEXT);
CREATE TABLE IF NOT EXISTS profiles ({", ".join(PROFILE_COLUMNS)},
    PRIMARY KEY (a, b, depth, class, settings));
CREATE TABLE IF NOT EXISTS knn (population TEXT, a TEXT, b TEXT, score REAL, cap_a REAL,
    cap_b REAL, settings TEXT, PRIMARY KEY (population, a, b, settings));
CREATE TABLE IF NOT EXISTS cells (id TEXT PRIMARY KEY, data TEXT);
CREATE TABLE IF NOT EXISTS findings (number INTEGER PRIMARY KEY, text TEXT, data TEXT);
"""


class ResultsStore:
    """A thin wrapper of the SQLite file; rows go in and come out as dicts."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path)
        self.con.row_factory = sqlite3.Row
        self.con.executescript(_SCHEMA)

    def close(self) -> None:
        self.con.close()

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.con.execute(sql, params)]

    def put_model(self, name: str, kind: str, info: dict[str, Any]) -> None:
        self.con.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?)",
                         (name, kind, json.dumps(info, sort_keys=True, default=str)))
        self.con.commit()

    def replace_groups(self, rows: list[tuple[Any, ...]]) -> None:
        self.con.execute("DELETE FROM groups")
        self.con.executemany("INSERT INTO groups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.con.commit()

    def has_profile(self, a: str, b: str, depth: str, settings: str) -> bool:
        cur = self.con.execute("SELECT 1 FROM profiles WHERE a = ? AND b = ? AND depth = ? "
                               "AND settings = ? LIMIT 1", (a, b, depth, settings))
        return cur.fetchone() is not None

    def put_profiles(self, rows: list[dict[str, Any]]) -> None:
        marks = ", ".join("?" for _ in PROFILE_COLUMNS)
        self.con.executemany(f"INSERT OR REPLACE INTO profiles VALUES ({marks})",
                             [tuple(r[c] for c in PROFILE_COLUMNS) for r in rows])
        self.con.commit()

    def put_knn(self, rows: list[tuple[Any, ...]]) -> None:
        self.con.executemany("INSERT OR REPLACE INTO knn VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self.con.commit()

    def replace_outputs(self, cells: dict[str, dict[str, Any]],
                        findings: list[dict[str, Any]]) -> None:
        self.con.execute("DELETE FROM cells")
        self.con.execute("DELETE FROM findings")
        self.con.executemany("INSERT INTO cells VALUES (?, ?)",
                             [(k, json.dumps(v, sort_keys=True)) for k, v in cells.items()])
        self.con.executemany("INSERT INTO findings VALUES (?, ?, ?)",
                             [(f["number"], f["text"], json.dumps(f, sort_keys=True))
                              for f in findings])
        self.con.commit()
