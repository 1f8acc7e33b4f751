"""A tiny builder for self-contained HTML pages: headings, text, tables, inline figures."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

__all__ = ["HtmlReport", "natural_key"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#1d232a;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2.2rem}h3{margin-top:1.4rem}.meta{color:#666;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.82rem;color:#555;max-width:560px}
.sentence{background:#f3f8ff;border-left:3px solid #3b82f6;padding:.3rem .6rem;margin:.3rem 0}
details{margin:.5rem 0}nav a{margin-right:1rem}
.warning{background:#fff7e6;border-left:3px solid #d97706;padding:.3rem .6rem;margin:.3rem 0}
"""


def natural_key(s: Any) -> tuple[Any, ...]:
    """Sort key that orders ``layer2`` before ``layer10``."""
    import re

    parts = re.split(r"(\d+)", str(s))
    return tuple(int(p) if p.isdigit() else p for p in parts)


class HtmlReport:
    """Collects sections and writes one HTML file with every figure embedded as PNG."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self._body: list[str] = []
        self._toc: list[tuple[str, str]] = []
        self.n_figures = 0
        #: warnings about the report's contents (e.g. mixed measure versions), also shown in it
        self.warnings: list[str] = []

    # ---------------------------------------------------------------- parts
    def section(self, title: str) -> None:
        anchor = f"s{len(self._toc) + 1}"
        self._toc.append((anchor, title))
        self._body.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')

    def heading(self, text: str) -> None:
        self._body.append(f"<h3>{html.escape(text)}</h3>")

    def text(self, text: str, cls: str | None = None) -> None:
        c = f' class="{cls}"' if cls else ""
        self._body.append(f"<p{c}>{html.escape(text)}</p>")

    def raw(self, fragment: str) -> None:
        self._body.append(fragment)

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        collapsed: str | None = None,
    ) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for v in row:
                if isinstance(v, float):
                    cells.append(f'<td class="num">{_fmt(v)}</td>')
                else:
                    cells.append(f"<td>{html.escape(str(v))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        tab = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        if collapsed:
            tab = f"<details><summary>{html.escape(collapsed)}</summary>{tab}</details>"
        self._body.append(tab)

    def figure(self, fig: Any, caption: str = "", data: dict[str, str] | None = None) -> None:
        """Embed a matplotlib figure as a base64 PNG and close it.

        ``data`` become ``data-*`` attributes of the ``<figure>`` (machine-readable
        marks, e.g. ``{"boxed": "layer1→layer2"}``).
        """
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        png = base64.b64encode(buf.getvalue()).decode("ascii")
        self.n_figures += 1
        alt = html.escape(caption or f"figure {self.n_figures}")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        attrs = "".join(f' data-{k}="{html.escape(v)}"' for k, v in (data or {}).items())
        self._body.append(
            f'<figure{attrs}><img class="rs-figure" alt="{alt}" '
            f'src="data:image/png;base64,{png}">{cap}</figure>'
        )

    # ---------------------------------------------------------------- output
    def render(self) -> str:
        from repscope.core.version import __version__

        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        toc = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in self._toc)
        sub = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>{sub}"
            f'<p class="meta">repscope {__version__} · generated {stamp} · '
            f"{self.n_figures} figures</p><nav>{toc}</nav>"
            + "\n".join(self._body)
            + "</body></html>\n"
        )

    def write(self, path: Any) -> None:
        from pathlib import Path

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        tmp.replace(p)


def _fmt(v: float) -> str:
    if v != v:  # NaN
        return "–"
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.3f}"
    return f"{v:.2e}"
