"""``repscope measures``: the registry table."""

from __future__ import annotations

import json
import math
import sys

import typer
from rich.console import Console
from rich.table import Table

from repscope.measures.metadata import SHORT_NAMES, Invariance
from repscope.measures.registry import list_measures


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:g}"


def measures(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    family: str = typer.Option(None, "--family", help="Only measures of this family."),
) -> None:
    """List every registered measure with its metadata."""
    infos = list_measures(family=family)
    if as_json:
        typer.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    table = Table(title=f"repscope measures ({len(infos)})")
    for col in ("name", "family", "kind", "range", "sym", "metric", "invariances", "backend"):
        table.add_column(col)
    for i in infos:
        lo, hi = i.value_range
        inv = ",".join(SHORT_NAMES[v] for v in sorted(i.invariances, key=list(Invariance).index))
        table.add_row(
            i.name,
            i.family,
            i.kind,
            f"[{_fmt(lo)}, {_fmt(hi)}]",
            "yes" if i.symmetric else "no",
            "yes" if i.metric else "no",
            inv or "-",
            i.backend,
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
