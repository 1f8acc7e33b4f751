"""The grounding table in HTML: ``repscope ground``'s own page and the report's section.

Self-contained like the report (:mod:`repscope.report.page`): the report's
stylesheet inlined, no script, the figure (if any) as a ``data:`` image, every
text through Jinja2's autoescaping.  Both read a grounding result's JSON form
(``grounding.json``: rows, chance per test and the recommendations derived
from the rows); the table markup is one template partial
(``templates/_grounding.html.j2``) shared by the page and the report.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from repscope.core.errors import RepscopeError
from repscope.report.page import _environment, _num, _static

__all__ = ["GROUNDING_FILES", "find_grounding", "grounding_context", "render_grounding_page"]

#: where the report looks for a grounding result beside a study's results
GROUNDING_FILES = ("grounding/grounding.json", "grounding.json")


def grounding_context(result: dict[str, Any] | None, figure: str | Path | None = None
                      ) -> dict[str, Any] | None:
    """What the templates need from a grounding result's JSON form (``None`` for none)."""
    if not result:
        return None
    missing = [k for k in ("rows", "tests", "measures") if k not in result]
    if missing:
        raise RepscopeError(f"not a grounding result (no {', '.join(missing)}): write it "
                            "with repscope ground")
    tests = result["tests"]
    png = None
    if figure is not None and Path(figure).exists():
        png = base64.b64encode(Path(figure).read_bytes()).decode("ascii")
    return {"g": {**result, "tests_described": tests if isinstance(tests, dict) else {},
                  "settings": result.get("settings", {}), "skipped": result.get("skipped", {}),
                  "description": result.get("description", "")},
            "advice": result.get("advice", []), "chance": result.get("chance", {}),
            "cells": {(r["measure"], r["test"]): r for r in result["rows"]}, "figure": png}


def find_grounding(folder: Path) -> dict[str, Any] | None:
    """The grounding result saved beside a study's results, if any."""
    for name in GROUNDING_FILES:
        path = folder / name
        if path.exists():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RepscopeError(f"{path} is not readable JSON ({exc}); rerun repscope "
                                    "ground") from exc
    return None


def render_grounding_page(result: dict[str, Any], figure: str | Path | None = None,
                          title: str = "Which measure should I trust?") -> str:
    """The HTML page of a grounding result (its JSON form)."""
    from repscope.core.version import __version__

    env = _environment()
    env.filters["num"] = _num
    ctx = grounding_context(result, figure)
    assert ctx is not None
    return env.get_template("grounding.html.j2").render(
        title=title, version=__version__, css=_static("report.css"),
        stamp=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), **ctx)
