"""HTML views for notebooks (``_repr_html_``): escaped, truncated tables.

Jupyter shows an object's ``_repr_html_()`` in place of its ``repr``; the
result tables and the invariance profile build theirs with :func:`html_table`.
Every cell, header, caption and note is escaped, so a model or layer name such
as ``"<script>"`` is shown as text and never runs.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["MAX_ROWS", "html_table"]

#: rows a notebook view shows before it says how many more there are
MAX_ROWS = 50

_STYLE = ("border-collapse:collapse;font-size:0.9em;font-variant-numeric:tabular-nums")
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;"


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    caption: str | None = None,
    total: int | None = None,
    notes: Sequence[str] = (),
    paragraphs: Sequence[str] = (),
    right: Sequence[str] = (),
) -> str:
    """An HTML table of already formatted cells, everything escaped.

    Parameters
    ----------
    header : column names.
    rows : the rows shown (cells as text).
    caption : a line above the table.
    total : how many rows there are in all; when more than ``len(rows)``, a line
        ``… N more rows`` follows the table.
    notes : numbered notes below the table (``[1] …``).
    paragraphs : text below the notes, one paragraph each.
    right : columns aligned right (numbers).

    Returns
    -------
    str
        A ``<div>`` holding the table.
    """
    esc = html.escape
    right_set = set(right)
    align = ["text-align:right;" if h in right_set else "text-align:left;" for h in header]
    parts = ['<div class="repscope">']
    if caption:
        parts.append(f"<p><b>{esc(caption)}</b></p>")
    parts.append(f'<table style="{_STYLE}"><thead><tr>')
    parts += [f'<th style="{_CELL}{a}">{esc(h)}</th>' for h, a in zip(header, align)]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>")
        parts += [f'<td style="{_CELL}{a}">{esc(str(v))}</td>' for v, a in zip(row, align)]
        parts.append("</tr>")
    parts.append("</tbody></table>")
    more = (total or 0) - len(rows)
    if more > 0:
        parts.append(f"<p>… {more} more row{'s' if more != 1 else ''}</p>")
    if notes:
        parts.append('<ol style="font-size:0.85em">')
        parts += [f"<li>{esc(n)}</li>" for n in notes]
        parts.append("</ol>")
    parts += [f"<p>{esc(p)}</p>" for p in paragraphs]
    parts.append("</div>")
    return "".join(parts)
