"""Matplotlib figures of result tables, for notebooks and papers.

Every function returns a :class:`matplotlib.figure.Figure` built with the
object-oriented API: no ``pyplot`` state, and the caller's backend is never
changed (a notebook's own plots keep showing).  Pass ``ax=`` to draw into an
existing axes.  The colour scale of a measure is the same in every panel
(:func:`repscope.views.measure_notes.colour_domain`), the colour bar names the
measure and its direction, and cell annotations take black or white ink from
the luminance of their own colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.core.optional import require
from repscope.views.colormaps import ink_for
from repscope.views.frames import as_frame

__all__ = ["heatmap", "layer_heatmap", "model_heatmap"]


def _matplotlib() -> Any:
    return require("matplotlib.figure", purpose="a heatmap figure").Figure


def _axes(ax: Any, shape: tuple[int, int]) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    figure_cls = _matplotlib()
    h = max(2.6, 0.4 * shape[0] + 1.6)
    w = max(3.4, 0.55 * shape[1] + 2.6)
    fig = figure_cls(figsize=(w, h), layout="constrained")
    return fig, fig.add_subplot()


def heatmap(
    matrix: Any,
    row_labels: Sequence[Any],
    col_labels: Sequence[Any],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    cbar_label: str = "",
    annotate: bool = True,
    boxes: Sequence[tuple[int, int]] | None = None,
    hatch: Any = None,
    corner: Any = None,
    empty_text: Any = None,
    ax: Any = None,
) -> Any:
    """A labelled heatmap of ``matrix`` (rows × columns).

    ``boxes`` outlines the given ``(row, column)`` cells in red (best
    matches); ``hatch`` (booleans, the matrix's shape) hatches cells
    (degenerate values); ``corner`` (strings) writes a small mark in a cell's
    corner (``"ns"``, ``"u"``); ``empty_text`` (strings) is written in NaN
    cells (default ``"n/a"``).  Annotation ink is black or white, whichever
    contrasts more with the cell's own colour.
    """
    m = np.asarray(matrix, dtype=float)
    fig, ax = _axes(ax, m.shape)
    import matplotlib as mpl
    from matplotlib.patches import Rectangle

    cm = mpl.colormaps[cmap].with_extremes(bad="#f1f1f1")
    finite = m[np.isfinite(m)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    norm = mpl.colors.Normalize(lo, hi)
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cm, norm=norm, aspect="auto",
                   interpolation="nearest")
    ax.set_xticks(range(m.shape[1]), [str(c) for c in col_labels], rotation=50, ha="right",
                  fontsize=8)
    ax.set_yticks(range(m.shape[0]), [str(r) for r in row_labels], fontsize=8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03, label=cbar_label)

    def ink(i: int, j: int) -> str:
        return ink_for(cm(norm(m[i, j]))[:3]) if np.isfinite(m[i, j]) else "#666666"

    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if not np.isfinite(m[i, j]):
                word = "n/a" if empty_text is None else str(empty_text[i][j] or "")
                ax.text(j, i, word, ha="center", va="center", fontsize=6.5, color="#666666")
            elif annotate and m.size <= 400:
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6.5,
                        color=ink(i, j))
            if hatch is not None and np.asarray(hatch, dtype=bool)[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=0,
                                       hatch="///", edgecolor=ink(i, j), alpha=0.7))
            if corner is not None and corner[i][j]:
                ax.text(j + 0.46, i - 0.44, str(corner[i][j]), ha="right", va="top",
                        fontsize=6.5, color=ink(i, j), fontweight="bold")
    for i, j in boxes or ():
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.8, edgecolor="red"))
    return fig


def _prepared(results: Any, fitted: str, adjust: str, q: float) -> Any:
    from repscope.views.analysis import with_labels
    from repscope.views.marks import prepare_results

    df = with_labels(as_frame(results))
    if "error" in df.columns:
        df = df[df["error"].isna()]
    if df.empty:
        raise RepscopeError("no results to plot")
    return prepare_results(df, fitted=fitted, method=adjust, q=q)


def _domain(df: Any, label: str) -> tuple[float, float, str]:
    from repscope.views.measure_notes import colour_domain, describe_measure

    rows = df[df.measure == label]
    meta = describe_measure(label, str(rows["measure_name"].iloc[0]),
                            rows["params"].iloc[0] if "params" in rows.columns else None)
    dom = colour_domain(meta["range"], rows["value"].astype(float))
    return dom["lo"], dom["hi"], f"{label} ({meta['kind']}, {meta['arrow']})"


def _pick(df: Any, measure: str) -> str:
    from repscope.views.marks import resolve_label

    label = resolve_label(df, measure)
    if label not in set(df.measure):
        known = ", ".join(sorted(set(df.measure)))
        raise RepscopeError(f"no rows of measure {measure!r} in these results; they hold: "
                            f"{known}")
    return label


def layer_heatmap(results: Any, measure: str, model_a: str | None = None,
                  model_b: str | None = None, *, dataset: str | None = None,
                  fitted: str = "heldout", adjust: str = "bh", q: float = 0.05,
                  ax: Any = None) -> Any:
    """Layer × layer heatmap of one measure for one model pair, marked as in the report.

    ``results`` is a :class:`~repscope.ResultTable` or a DataFrame of
    results; ``model_a``/``model_b`` may be omitted when the table holds one
    model pair.  Red boxes mark each row's best match where significant (or
    untested); degenerate cells are hatched and never boxed; ``ns`` / ``u``
    mark cells not significant / underpowered after the ``adjust`` correction
    within the figure.  Fitted measures show their held-out value by default.
    """
    from repscope.views.analysis import layer_matrix, measure_direction, ordered_layers, pairs
    from repscope.views.marks import best_cells

    df = _prepared(results, fitted, adjust, q)
    label = _pick(df, measure)
    sub = df[df.measure == label]
    if dataset is not None and "dataset" in sub.columns:
        sub = sub[sub["dataset"].astype(str) == str(dataset)]
    if model_a is None or model_b is None:
        found = pairs(sub)
        if model_a is not None:
            found = [p for p in found if p[0] == model_a]
        if model_b is not None:
            found = [p for p in found if p[1] == model_b]
        if len(found) != 1:
            raise RepscopeError(f"{len(found)} model pairs hold {label!r}: name model_a and "
                                f"model_b (pairs: {', '.join(f'{a} vs {b}' for a, b in found)})")
        model_a, model_b = found[0]
    cells = sub[(sub.model_a == model_a) & (sub.model_b == model_b)]
    if cells.empty:
        raise RepscopeError(f"no {label!r} rows for {model_a} vs {model_b}")
    la, lb = ordered_layers(cells, "layer_a"), ordered_layers(cells, "layer_b")
    values = layer_matrix(cells, la, lb)
    degenerate = layer_matrix(cells, la, lb, "degenerate", False, bool)
    verdicts = layer_matrix(cells, la, lb, "significance", "", object)
    direction = measure_direction(label)
    boxes = best_cells(values, direction, degenerate=degenerate, verdicts=verdicts)
    corner = np.where(verdicts == "not significant", "ns",
                      np.where(verdicts == "underpowered", "u", ""))
    lo, hi, cbar = _domain(df, label)
    return heatmap(values, la, lb, title=f"{label}: {model_a} vs {model_b}",
                   xlabel=f"{model_b} (columns)", ylabel=f"{model_a} (rows)",
                   cmap="viridis" if direction == "max" else "viridis_r", vmin=lo, vmax=hi,
                   cbar_label=cbar, boxes=boxes, hatch=degenerate, corner=corner, ax=ax)


def model_heatmap(results: Any, measure: str, *, fitted: str = "heldout", ax: Any = None) -> Any:
    """Model × model view of one measure: the mean over the row model's layers of its
    best-matching layer's value in the column model.

    Empty cells say why: ``—`` the same model, ``n/a`` the two models were never
    run on the same inputs, ``–`` not compared.
    """
    from repscope.views.analysis import measure_direction, model_matrix

    df = _prepared(results, fitted, "bh", 0.05)
    label = _pick(df, measure)
    models, mat, status = model_matrix(df, label)
    words = {"same model": "—", "n/a: different inputs": "n/a", "not compared": "–"}
    empty = [[words.get(s, "") for s in row] for row in status]
    lo, hi, cbar = _domain(df, label)
    direction = measure_direction(label)
    fig = heatmap(mat, models, models, title=f"{label}: model × model", cmap="viridis"
                  if direction == "max" else "viridis_r", vmin=lo, vmax=hi, cbar_label=cbar,
                  empty_text=empty, ax=ax)
    if any(s == "n/a: different inputs" for row in status for s in row):
        fig.text(0.01, 0.005, "n/a: the two models were never run on the same inputs",
                 fontsize=7, color="#444444")
    return fig
