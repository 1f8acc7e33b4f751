"""The report page: a Jinja2 template, its stylesheet and script, and the data once as JSON.

No network request: the script and style are inlined from the package
(``report/static``), figures are drawn in the browser as inline SVG from the
embedded JSON, and every text reaches the page through Jinja2's autoescaping
(the JSON is escaped for a ``<script>`` element as well).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["HtmlReport", "json_for_script"]


def json_for_script(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">`` (no ``</script>``,
    no comment or entity starts)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("repscope.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _static(name: str) -> str:
    return resources.files("repscope.report").joinpath("static", name).read_text("utf-8")


def _num(v: Any, digits: int = 3) -> str:
    """A number for a table cell: 3 decimals, scientific outside [1e-3, 1e4), – for none."""
    if v is None:
        return "–"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if x != x:
        return "–"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}f}"
    return f"{x:.2e}"


def _pct(v: Any) -> str:
    if v is None:
        return "–"
    return f"{100 * float(v):.0f} %"


class HtmlReport:
    """A built report: :meth:`render` gives the HTML, :meth:`write` writes it atomically.

    Attributes
    ----------
    title : the page title.
    payload : the data the page draws from (see :mod:`repscope.report.payload`).
    context : the template's other inputs (summary lines, tables).
    warnings : what the reader must know about the rows (also shown at the top).
    """

    def __init__(self, title: str, payload: dict[str, Any], context: dict[str, Any],
                 warnings: list[str] | None = None) -> None:
        self.title = title
        self.payload = payload
        self.context = context
        self.warnings = list(warnings or [])

    def render(self) -> str:
        from repscope.core.version import __version__

        env = _environment()
        env.filters["num"] = _num
        env.filters["pct"] = _pct
        template = env.get_template("report.html.j2")
        return template.render(
            title=self.title, version=__version__,
            stamp=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            warnings=self.warnings, css=_static("report.css"), js=_static("report.js"),
            data_json=json_for_script(self.payload), p=self.payload, **self.context)

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        tmp.replace(p)
        return p

    def _repr_html_(self) -> str:  # a notebook shows the page inline
        import html

        return (f'<iframe srcdoc="{html.escape(self.render(), quote=True)}" '
                'style="width:100%;height:720px;border:1px solid #ddd"></iframe>')

    def __repr__(self) -> str:
        return (f"HtmlReport(title={self.title!r}, panels={len(self.payload.get('panels', []))},"
                f" warnings={len(self.warnings)})")
