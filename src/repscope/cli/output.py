"""What the commands share: writing result tables to files, and failed measures.

``repscope compare --out FILE`` writes its table by the file's suffix:
``.csv`` (one row per result; ``params`` as JSON, ``warnings`` joined by
`` | ``), ``.json`` (a list of records, as ``--json`` prints) or ``.parquet``
(needs pandas and pyarrow).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.core.optional import require
from repscope.measures.registry import measure_info
from repscope.measures.spec import format_measure
from repscope.storage.results_db import json_default

__all__ = ["OUT_SUFFIXES", "check_out", "failed_measures", "report_failures", "row_label",
           "write_table"]

#: file types ``--out`` writes, by suffix
OUT_SUFFIXES: tuple[str, ...] = (".csv", ".json", ".parquet")


def check_out(path: Path | None) -> None:
    """Refuse an ``--out`` file of an unknown type before anything is computed."""
    if path is not None and path.suffix.lower() not in OUT_SUFFIXES:
        raise InvalidParameterError(
            f"--out {path}: write a {', '.join(OUT_SUFFIXES)} file (the suffix picks the format)"
        )


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    if isinstance(v, Mapping):
        return json.dumps(v, sort_keys=True, default=json_default)
    if isinstance(v, (tuple, list)):
        return " | ".join(map(str, v))
    return v


def write_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str], path: Path) -> Path:
    """Write result records to ``path`` (.csv, .json or .parquet by suffix); returns the path."""
    check_out(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(list(records), default=json_default, indent=1) + "\n",
                        encoding="utf-8")
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for r in records:
                writer.writerow([_cell(r.get(c)) for c in columns])
    else:
        require("pyarrow", purpose="--out ….parquet")
        pd = require("pandas", purpose="--out ….parquet")
        rows = [{c: _cell(r.get(c)) if c in ("params", "warnings") else r.get(c)
                 for c in columns} for r in records]
        pd.DataFrame(rows, columns=list(columns)).to_parquet(path, index=False)
    return path


def row_label(row: Mapping[str, Any]) -> str:
    """The report's label of a result row's measure: ``"cka"``, ``"cka[kernel=rbf]"``."""
    name = str(row.get("measure"))
    params = row.get("params") or {}
    if isinstance(params, str):
        params = json.loads(params)
    try:
        defaults = measure_info(name).params
    except RepscopeError:
        defaults = {}
    return format_measure(name, params, defaults)


def failed_measures(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Measures (by :func:`row_label`) with no value in any of their rows: ``{label: error}``."""
    errors: dict[str, str] = {}
    ok: set[str] = set()
    for r in rows:
        key = row_label(r)
        if r.get("value") is not None:
            ok.add(key)
        elif key not in errors:
            errors[key] = str(r.get("error") or "no value")
    return {k: v for k, v in errors.items() if k not in ok}


def report_failures(failed: Mapping[str, str], pairs: str = "the pair") -> None:
    """Print each failed measure on stderr and exit with code 1 (nothing when none failed)."""
    if not failed:
        return
    for name, error in failed.items():
        typer.echo(f"error: {name} failed for {pairs}: {error}", err=True)
    raise typer.Exit(1)
