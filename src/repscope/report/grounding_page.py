"""The grounding page: ``repscope ground``'s table and recommendations as one HTML file.

Self-contained like the report (:mod:`repscope.report.page`): the report's
stylesheet inlined, no script, the figure (if any) as a ``data:`` image, every
text through Jinja2's autoescaping.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from repscope.report.page import _environment, _num, _static

__all__ = ["render_grounding_page"]


def render_grounding_page(result: dict[str, Any], advice: list[dict[str, Any]],
                          chance: dict[str, float], figure: str | Path | None = None,
                          title: str = "Which measure should I trust?") -> str:
    """The HTML of a grounding result (its JSON form), the recommendations
    (:func:`repscope.grounding.advice.recommend`) and the chance level per test."""
    from repscope.core.version import __version__

    env = _environment()
    env.filters["num"] = _num
    cells = {(r["measure"], r["test"]): r for r in result["rows"]}
    png = None
    if figure is not None and Path(figure).exists():
        png = base64.b64encode(Path(figure).read_bytes()).decode("ascii")
    g = dict(result)
    g["tests_described"] = result["tests"] if isinstance(result["tests"], dict) else {}
    return env.get_template("grounding.html.j2").render(
        title=title, version=__version__, css=_static("report.css"),
        stamp=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), g=g, advice=advice,
        chance=chance, cells=cells, figure=png)
