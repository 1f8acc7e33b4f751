"""A crash-safe SQLite database of comparison results.

One row per (dataset × pair × measure × measure parameters × statistics
options × n × seed); the UNIQUE key over these columns makes re-running a study
skip what is done and makes duplicate rows impossible.  The row's key also
holds the measure's version (``MeasureInfo.version``, the version of its
meaning): a stored row of another version — or of none, written before
versions existed — is stale, so a grid recomputes it and the new row replaces
it in place.  The database runs in
WAL mode with ``synchronous=FULL`` and every row is committed on its own as
soon as it is computed, so killing a run loses nothing already written::

    db = repscope.storage.results_db.ResultsDB("results.sqlite")
    repscope.grid(reps, measures=["cka"], db=db)     # resumable
    df = db.to_pandas()

Columns
-------
Key: ``dataset, model_a, layer_a, model_b, layer_b, measure, params, stats, n,
seed`` (UNIQUE) and ``measure_version``.  ``params`` is the canonical JSON of
the measure's parameters (all of them, defaults included), ``stats`` the
canonical JSON of the statistics options that apply to the measure
(:meth:`repscope.inference.options.Stats.as_key`).  Layers keep their Python
type (``int`` or ``str``).

Values: ``kind, dx, dy, value, estimate, ci_low, ci_high, pvalue, p_floor,
calibrated, calibration, chance,
zscore, null_mean, null_sd, heldout, warnings`` (JSON list), ``error`` (message when
the measure could not be computed), ``seconds`` (value), ``stats_seconds``,
``repscope_version, numpy_version, torch_version, python_version, run_id,
timestamp`` (UTC, ISO 8601).  ``estimate`` is the estimate the interval is built around
(bias-corrected where the interval method corrects; equal to ``value`` otherwise).

Schema versions: 1 (before ``measure_version``, ``p_floor``, ``estimate``, ``chance``), 2 (now).  A
database of an older schema is upgraded in place on opening by adding the
missing columns (their values are NULL in old rows).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.core.optional import require
from repscope.storage.result_key import (
    IDENTITY_COLUMNS,
    KEY_COLUMNS,
    ResultKey,
    canonical_json,
    environment,
    json_default,
    utc_now,
)

__all__ = [
    "COLUMNS",
    "ResultsDBError",
    "IDENTITY_COLUMNS",
    "KEY_COLUMNS",
    "ResultKey",
    "ResultsDB",
    "canonical_json",
    "environment",
    "json_default",
]

SCHEMA_VERSION = 2

VALUE_COLUMNS: tuple[str, ...] = (
    "kind",
    "dx",
    "dy",
    "value",
    "estimate",
    "ci_low",
    "ci_high",
    "path",
    "pvalue",
    "p_floor",
    "calibrated",
    "calibration",
    "chance",
    "zscore",
    "null_mean",
    "null_sd",
    "heldout",
    "warnings",
    "error",
    "seconds",
    "stats_seconds",
    "repscope_version",
    "numpy_version",
    "torch_version",
    "python_version",
    "run_id",
    "timestamp",
)

COLUMNS: tuple[str, ...] = KEY_COLUMNS + VALUE_COLUMNS

_SQL_TYPES = {
    "dataset": "TEXT NOT NULL",
    "model_a": "TEXT NOT NULL",
    "layer_a": "NOT NULL",  # no affinity: ints stay ints, strings stay strings
    "model_b": "TEXT NOT NULL",
    "layer_b": "NOT NULL",
    "measure": "TEXT NOT NULL",
    "params": "TEXT NOT NULL",
    "stats": "TEXT NOT NULL",
    "n": "INTEGER NOT NULL",
    "seed": "INTEGER NOT NULL",
    "measure_version": "INTEGER",
    "kind": "TEXT",
    "calibration": "TEXT",
    "dx": "INTEGER",
    "dy": "INTEGER",
    "warnings": "TEXT NOT NULL DEFAULT '[]'",
    "error": "TEXT",
    "repscope_version": "TEXT",
    "numpy_version": "TEXT",
    "torch_version": "TEXT",
    "python_version": "TEXT",
    "run_id": "TEXT",
    "timestamp": "TEXT",
}


# ---------------------------------------------------------------- faults
class ResultsDBError(RepscopeError):
    """The results database cannot be used: damaged, not a database, locked or read-only."""


_DAMAGE = ("malformed", "not a database", "corrupt", "encrypted", "integrity check")
_F = TypeVar("_F", bound=Callable[..., Any])


def _fault(path: Path, exc: BaseException, doing: str) -> ResultsDBError:
    """A one-line error for an SQLite failure: what happened, the file, what to do."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    low = text.lower()
    if type(exc) is sqlite3.DatabaseError or any(w in low for w in _DAMAGE):
        return ResultsDBError(
            f"results database {path} is damaged ({text}, while {doing}). Check it with: "
            f"sqlite3 '{path}' 'PRAGMA integrity_check'. To rebuild it, move it aside "
            f"(mv '{path}' '{path}.damaged') and run the study again: the comparisons are "
            "recomputed, from the activation store of the study folder where there is one"
        )
    if "locked" in low or "busy" in low:
        hint = "another process is using it; try again when it has finished"
    elif "readonly" in low or "read-only" in low:
        hint = "the file or its folder is not writable"
    elif "i/o" in low or "full" in low:
        hint = "check the disk (free space, permissions, network file systems)"
    else:
        hint = ("was it written by another program? Check it with: sqlite3 "
                f"'{path}' 'PRAGMA integrity_check'")
    return ResultsDBError(f"results database {path}: {text} (while {doing}); {hint}")


def _guarded(doing: str) -> Callable[[_F], _F]:
    """Turn SQLite failures inside a :class:`ResultsDB` method into :class:`ResultsDBError`."""

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        def guarded(self: ResultsDB, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                raise _fault(self.path, exc, doing) from exc

        return guarded  # type: ignore[return-value]

    return wrap


# ---------------------------------------------------------------- database
class ResultsDB:
    """SQLite results database (see the module docstring for the schema).

    Parameters
    ----------
    path : file path (created with its parent folders if missing).
    timeout : seconds to wait for a lock held by another process.

    Use as a context manager or call :meth:`close`.  Every write is its own
    committed transaction; concurrent writers of the same key are resolved by
    the UNIQUE constraint (the first row wins).  An SQLite failure anywhere
    (opening, reading, writing: a damaged file, a lock, a read-only disk)
    raises :class:`ResultsDBError`, one line saying what to do.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InvalidParameterError(f"{self.path} is a folder; give a database file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._create()
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(Exception):
                self._con.close()
            raise _fault(self.path, exc, "opening it") from exc
        self.run_id = uuid.uuid4().hex
        self._env = environment()

    # ------------------------------------------------------------ schema
    def _create(self) -> None:
        version = self._con.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master")}
        if "results" in tables and not 1 <= version <= SCHEMA_VERSION:
            raise RepscopeError(
                f"{self.path} has results schema version {version}; this repscope writes "
                f"version {SCHEMA_VERSION} and reads versions 1 to {SCHEMA_VERSION}"
            )
        if "results" in tables:
            self._upgrade()
            return
        cols = ",\n  ".join(f"{c} {_SQL_TYPES.get(c, 'REAL')}" for c in COLUMNS)
        self._con.execute(
            f"CREATE TABLE IF NOT EXISTS results (\n  id INTEGER PRIMARY KEY,\n  {cols},\n"
            f"  UNIQUE ({', '.join(IDENTITY_COLUMNS)})\n)"
        )
        self._con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @_guarded("checking it")
    def check(self) -> None:
        """Verify the whole file (``PRAGMA quick_check``, ~0.05 s per 100 000 rows).

        Raises
        ------
        ResultsDBError
            The file is damaged: the message names it and says how to rebuild it.
        """
        problems = [r[0] for r in self._con.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"integrity check: {'; '.join(problems[:3])}")

    def _upgrade(self) -> None:
        """Add the columns an older schema lacks (NULL in its rows); one writer at a time."""
        have = {r[1] for r in self._con.execute("PRAGMA table_info(results)")}
        if set(COLUMNS) <= have:
            return
        self._con.execute("BEGIN IMMEDIATE")
        try:
            have = {r[1] for r in self._con.execute("PRAGMA table_info(results)")}
            for c in COLUMNS:
                if c not in have:
                    sql_type = _SQL_TYPES.get(c, "REAL").replace(" NOT NULL", "")
                    self._con.execute(f"ALTER TABLE results ADD COLUMN {c} {sql_type}")
            self._con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------ basics
    @_guarded("closing it")
    def close(self) -> None:
        self._con.close()

    @contextlib.contextmanager
    def batch(self) -> Any:
        """Commit the rows inserted inside the block together, at its end (one disk sync
        instead of one per row); an exception rolls them back."""
        self._con.execute("BEGIN")
        try:
            yield self
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @_guarded("counting its rows")
    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def __repr__(self) -> str:
        return f"ResultsDB({str(self.path)!r}, rows={len(self)})"

    # ------------------------------------------------------------ keys
    @_guarded("reading it")
    def has(self, key: ResultKey, *, include_errors: bool = True) -> bool:
        """Whether a row with this key (version included) exists.

        Rows holding an error count unless ``include_errors=False``.
        """
        where = " AND ".join(f"{c} IS ?" for c in KEY_COLUMNS)
        if not include_errors:
            where += " AND error IS NULL"
        row = self._con.execute(f"SELECT 1 FROM results WHERE {where} LIMIT 1", tuple(key))
        return row.fetchone() is not None

    @_guarded("reading it")
    def done_keys(self, *, include_errors: bool = True) -> set[ResultKey]:
        """Keys of every stored row (one query; what a resumed run skips).

        A key holds the stored row's ``measure_version``, so a row of another
        version (or of none) does not match the key a grid asks for: it is
        stale and gets recomputed.
        """
        sql = f"SELECT {', '.join(KEY_COLUMNS)} FROM results"
        if not include_errors:
            sql += " WHERE error IS NULL"
        return {ResultKey(*r) for r in self._con.execute(sql)}

    # ------------------------------------------------------------ writes
    @_guarded("writing a row")
    def insert(self, row: Mapping[str, Any], *, replace: bool = False) -> bool:
        """Store one row, committed immediately.

        ``row`` holds the key columns (``params``/``stats`` as mappings or
        canonical JSON; ``measure_version`` optional) and any value columns;
        versions, ``run_id`` and ``timestamp`` are filled in when absent.
        Returns ``False`` (and changes nothing) if a row of the same identity and
        the same ``measure_version`` exists, unless ``replace=True``; a stored
        row of the same identity but another ``measure_version`` is stale and
        is replaced.
        """
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise InvalidParameterError(f"unknown result column(s): {', '.join(unknown)}")
        missing = [c for c in IDENTITY_COLUMNS if c not in row and c != "dataset"]
        if missing:
            raise InvalidParameterError(f"result row lacks key column(s): {', '.join(missing)}")
        key = ResultKey.make(
            row["model_a"], row["layer_a"], row["model_b"], row["layer_b"], row["measure"],
            params=row["params"], stats=row["stats"], n=row["n"], seed=row["seed"],
            dataset=row.get("dataset", ""), measure_version=row.get("measure_version"),
        )
        values = {**self._env, "run_id": self.run_id, "timestamp": utc_now()}
        values.update({c: row[c] for c in VALUE_COLUMNS if c in row})
        values["warnings"] = json.dumps(list(values.get("warnings") or []))
        record = {**key._asdict(), **{c: _sql_value(values.get(c)) for c in VALUE_COLUMNS}}
        cols = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in ("measure_version", *VALUE_COLUMNS))
        conflict = f"DO UPDATE SET {updates}"
        if not replace:  # only a stale row (another measure version) is replaced
            conflict += " WHERE results.measure_version IS NOT excluded.measure_version"
        cur = self._con.execute(
            f"INSERT INTO results ({cols}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(IDENTITY_COLUMNS)}) {conflict}",
            tuple(record[c] for c in COLUMNS),
        )
        return cur.rowcount > 0

    @_guarded("deleting rows")
    def delete(self, **where: Any) -> int:
        """Delete rows matching ``column=value`` filters (all rows if none); returns the count."""
        clause, args = _where(where)
        cur = self._con.execute(f"DELETE FROM results{clause}", args)
        return int(cur.rowcount)

    # ------------------------------------------------------------ reads
    @_guarded("reading it")
    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Rows as dicts (``warnings`` decoded to a list), filtered by ``column=value``."""
        clause, args = _where(where)
        cur = self._con.execute(f"SELECT {', '.join(COLUMNS)} FROM results{clause} ORDER BY id",
                                args)
        out = []
        for r in cur:
            d = dict(zip(COLUMNS, r))
            try:
                d["warnings"] = json.loads(d["warnings"]) if d["warnings"] else []
            except (TypeError, ValueError) as exc:
                raise sqlite3.DatabaseError(f"row {len(out) + 1} holds malformed warnings") \
                    from exc
            out.append(d)
        return out

    def to_pandas(self, **where: Any) -> Any:
        """A :class:`pandas.DataFrame` of the (filtered) rows; ``warnings`` joined by ``" | "``."""
        pd = require("pandas", purpose="ResultsDB.to_pandas()")
        rows = self.rows(**where)
        for r in rows:
            r["warnings"] = " | ".join(r["warnings"])
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def to_csv(self, path: str | Path, **where: Any) -> Path:
        """Write the (filtered) rows to CSV; returns the path."""
        path = Path(path)
        self.to_pandas(**where).to_csv(path, index=False)
        return path

    def to_parquet(self, path: str | Path, **where: Any) -> Path:
        """Write the (filtered) rows to Parquet (needs ``pyarrow``); returns the path."""
        require("pyarrow", purpose="Parquet export (ResultsDB.to_csv() works without it)")
        df = self.to_pandas(**where)
        for col in ("layer_a", "layer_b"):  # Arrow columns need one type
            if len({type(v) for v in df[col]}) > 1:
                df[col] = df[col].astype(str)
        path = Path(path)
        df.to_parquet(path, index=False, engine="pyarrow")
        return path


def _sql_value(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _where(where: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    unknown = sorted(set(where) - set(COLUMNS))
    if unknown:
        raise InvalidParameterError(f"unknown result column(s): {', '.join(unknown)}")
    if not where:
        return "", ()
    parts, args = [], []
    for c, v in where.items():
        if c in ("params", "stats") and not isinstance(v, str):
            v = canonical_json(dict(v))
        if v is None:
            parts.append(f"{c} IS NULL")
        else:
            parts.append(f"{c} = ?")
            args.append(v)
    return " WHERE " + " AND ".join(parts), tuple(args)
