"""The findings page: ``findings.html`` (self-contained), ``findings.md`` and ``findings.json``.

The HTML has no external resource: the style is inline and the figures are inline
SVG drawn by matplotlib (Agg, no fonts fetched).  Every text is escaped.  Each
numbered finding is followed by its evidence: the table of its cells (verdict
counts, mean score with the interval from resampling models, null, ceiling, the
largest pair p-value and its BH q-value, the detectable effect of unrelated pairs)
or the numbers of its trend, and the pairs behind it.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from repscope.findings.population import DEPTHS
from repscope.findings.sentences import fmt, overview
from repscope.identifiability.experiments.common import jsonable

__all__ = ["cell_rows", "write_outputs"]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;font-size:.85em;margin:.4em 0 1em}td,th{border:1px
solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}td.l{text-align:left}
li.f{margin:1em 0}details{margin:.3em 0}.note{color:#555;font-size:.9em}"""
_HEAD = ("depth", "class", "layers", "pairs", "equiv.", "partial", "unrel.", "undet.",
         "mean [95 % CI]", "CI from", "null", "ceiling", "max p", "BH q", "detectable")


def cell_rows(cells: dict[str, dict[str, Any]], ids: list[str]) -> list[list[str]]:
    """The evidence table of a group finding, one row per cell."""
    rows = []
    for i in ids:
        c = cells[i]
        k = c["counts"]
        ci = "" if c["ci_low"] is None else f" [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"
        rows.append([c["depth"], c["cls"], ", ".join(c["layers"]), str(c["n_pairs"]),
                     str(k["equivalent"]), str(k["partial"]), str(k["unrelated"]),
                     str(k["undetermined"]), fmt(c["mean"]) + ci, c["ci_source"] or "none",
                     fmt(c["null_mean"]), fmt(c["ceiling"]), fmt(c["p"], 3),
                     fmt(c.get("q"), 3), fmt(c["detectable"])])
    return rows


def _table(head: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(
        f"<td{' class=l' if j in (0, 1, 2) else ''}>{html.escape(v)}</td>"
        for j, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _trend_rows(trends: dict[str, dict[str, Any]], ids: list[str]) -> list[list[str]]:
    rows = []
    for i in ids:
        t = trends[i]
        value = next((t[k] for k in ("slope", "difference", "rho") if k in t), None)
        rows.append([i, fmt(value, 3), fmt(t.get("ci_low"), 3), fmt(t.get("ci_high"), 3),
                     fmt(t.get("p"), 3), fmt(t.get("q"), 3), fmt(t.get("detectable"), 3),
                     json.dumps(jsonable({k: t[k] for k in ("levels", "means", "curves",
                                                             "first_mean", "last_mean")
                                          if k in t}))])
    return rows


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _figures(data: dict[str, Any]) -> dict[str, str]:
    """Width trend and checkpoint curves as inline SVG (empty when matplotlib is absent)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    figs: dict[str, str] = {}
    trends = data["trends"]
    for factor in ("width", "language models"):
        fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), sharey=True)
        drawn = False
        for ax, depth in zip(axes, DEPTHS):
            for cls in ("orthogonal", "linear", "neighbourhood"):
                t = trends.get(f"trend | {factor} | {depth} | {cls}")
                if t and t.get("levels"):
                    ax.plot(t["levels"], t["means"], marker="o", label=cls)
                    drawn = True
            ax.set_xscale("log", base=2)
            ax.set_title(f"{depth} layer", fontsize=9)
            ax.set_xlabel("width")
        axes[0].set_ylabel("mean score, seed pairs")
        axes[-1].legend(fontsize=7)
        figs[factor] = _svg(fig) if drawn else ""
        if not drawn:
            plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), sharey=True)
    drawn = False
    for ax, cls in zip(axes, ("orthogonal", "linear", "neighbourhood")):
        t = trends.get(f"time order | {cls}")
        for depth, curve in (t or {}).get("curves", {}).items():
            ax.plot([float(k) for k in curve], list(curve.values()), marker="o", label=depth)
            drawn = True
        ax.set_xscale("log", base=2)
        ax.set_title(cls, fontsize=9)
        ax.set_xlabel("epochs of the checkpoint")
    axes[0].set_ylabel("score vs final model")
    axes[-1].legend(fontsize=7)
    figs["time"] = _svg(fig) if drawn else ""
    if not drawn:
        plt.close(fig)
    return figs


def _evidence(f: dict[str, Any], data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    if f["kind"] == "group":
        return list(_HEAD), cell_rows(data["cells"], f["evidence"])
    return (["trend", "value", "CI low", "CI high", "p", "BH q", "detectable", "data"],
            _trend_rows(data["trends"], f["evidence"]))


def _html(data: dict[str, Any]) -> str:
    figs = _figures(data)
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>repscope findings "
             f"({html.escape(data['preset'])})</title><style>{_STYLE}</style></head><body>",
             f"<h1>What models trained differently share: findings ({html.escape(data['preset'])}"
             " preset)</h1>",
             "<p class=note>Each finding states a group of model pairs at three relative depths. "
             "Verdicts are the calibrated invariance profile's (repscope.profile: permutation ⊂ "
             "rotation ⊂ linear, neighbourhoods, predictions, the softmax family's class); "
             "intervals resample models (pairs that share a model are not independent); the "
             "p-values of all cells and trends are adjusted together (Benjamini–Hochberg), and "
             "a result with q &gt; 0.05 is reported as not shown, with the effect it could "
             "have detected.</p>"]
    if data["skipped"]:
        parts.append("<p class=note>Skipped: " + html.escape("; ".join(data["skipped"]))
                     + "</p>")
    parts.append("<h2>Overview: in which sense each group's pairs are alike</h2>")
    parts.append(_table(["finding", "group", *(f"{d} layer" for d in DEPTHS)],
                        overview(data["cells"], data["findings"])))
    parts.append("<h2>Findings</h2><ol>")
    for f in data["findings"]:
        head, rows = _evidence(f, data)
        fig = ""
        key = {"width": "width", "language models": "language models", "time": "time"}.get(
            f["factor"]) if f["kind"] == "direction" else None
        if key and figs.get(key):
            fig = f"<div>{figs[key]}</div>"
        pairs = ", ".join(f"{a} ~ {b}" for a, b in f["pairs"][:60])
        more = f" … ({len(f['pairs'])} in all)" if len(f["pairs"]) > 60 else ""
        head_text, sep, rest = f["text"].partition(" — " if f["kind"] == "direction"
                                                   else ": ")
        parts.append(f"<li class=f id=f{f['number']}><b>{html.escape(head_text)}"
                     f"{html.escape(sep.rstrip())}</b> "
                     f"<span class=t>{html.escape(rest)}</span>{fig}"
                     f"<details><summary>evidence</summary>{_table(head, rows)}"
                     f"<p class=note>pairs: {html.escape(pairs + more)}</p></details></li>")
    parts.append("</ol>")
    parts.append(_grounding_html(data.get("grounding")))
    parts.append("<h2>Populations and timings</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(jsonable(data['populations']), indent=1))}\n"
                 f"{html.escape(json.dumps(jsonable(data['timings']), indent=1))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def _markdown(data: dict[str, Any]) -> str:
    lines = [f"# repscope findings ({data['preset']} preset)", ""]
    for f in data["findings"]:
        lines.append(f"{f['number']}. {f['text']}")
    g = data.get("grounding")
    if g:
        lines += ["", f"Which measure to trust for each class (grounding: {g['description']}):"]
        lines += [f"- {c['sentence']}" for c in g["classes"].values()]
    if data["skipped"]:
        lines += ["", "Skipped: " + "; ".join(data["skipped"])]
    return "\n".join(lines) + "\n"


def _grounding_html(g: dict[str, Any] | None) -> str:
    """The section "Which measure to trust for each class", when a grounding result is given."""
    if not g:
        return ("<p class=note>No grounding result was given (<code>repscope ground</code>, "
                "then <code>--grounding</code>): the page does not say which measure the "
                "tests with a known answer support for each class.</p>")
    head = ["class", "measure", "test", "score", "CI low", "CI high", "rank", "chance",
            "failed"]
    rows = [[cls, c["measure"], r["test"], fmt(r.get("score")), fmt(r.get("ci_low")),
             fmt(r.get("ci_high")), f"{r.get('rank', '')} of {g['n_measures']}",
             fmt(g["chance"].get(r["test"])), str(r.get("failed", 0))]
            for cls, c in g["classes"].items() for r in c["rows"]]
    items = "".join(f"<li>{html.escape(c['sentence'])}</li>" for c in g["classes"].values())
    return ("<h2>Which measure to trust for each class</h2><p class=note>How the measure "
            "closest to each class's statistic fared on the grounding tests with a known "
            f"answer ({html.escape(g['description'])}; {html.escape(g['path'])}). The "
            "profile's statistic is a held-out fit, not the measure itself: read this as "
            f"evidence about the family.</p><ul>{items}</ul>"
            f"<details><summary>rows</summary>{_table(head, rows)}</details>")


def write_outputs(out: Path, data: dict[str, Any]) -> list[Path]:
    """Write ``findings.json``, ``findings.md`` and ``findings.html`` into ``out``."""
    clean = jsonable(data)
    paths = [out / "findings.json", out / "findings.md", out / "findings.html"]
    paths[0].write_text(json.dumps(clean, indent=1, allow_nan=False), encoding="utf-8")
    paths[1].write_text(_markdown(clean), encoding="utf-8")
    paths[2].write_text(_html(clean), encoding="utf-8")
    return paths
