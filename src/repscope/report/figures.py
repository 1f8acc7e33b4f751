"""Matplotlib figures for reports (Agg backend, no LaTeX)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["heatmap", "bar"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = True,
    mark_rows_best: str | None = None,
    boxes: Sequence[tuple[int, int]] | None = None,
    hatch: np.ndarray | None = None,
    corner: np.ndarray | None = None,
) -> Any:
    """A labelled heatmap.

    ``boxes`` outlines the given ``(row, column)`` cells in red (the best
    matches; :func:`repscope.report.marks.best_cells`); ``mark_rows_best`` =
    "max"/"min" outlines each row's best cell instead.  ``hatch`` (boolean,
    the matrix's shape) hatches cells (degenerate values); ``corner`` (strings)
    writes a small mark in a cell's top-right corner (``"ns"``, ``"u"``).
    """
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
    h = max(2.4, 0.36 * m.shape[0] + 1.3)
    w = max(3.0, 0.42 * m.shape[1] + 2.0)
    fig, ax = plt.subplots(figsize=(w, h))
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(m.shape[1]), [str(c) for c in col_labels], rotation=60, ha="right",
                  fontsize=8)
    ax.set_yticks(range(m.shape[0]), [str(r) for r in row_labels], fontsize=8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    finite = m[np.isfinite(m)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    # ink that reads on the cell's colour (light on the dark end of the colour map)
    dark_low = not cmap.endswith("_r")

    def ink(i: int, j: int) -> str:
        if not np.isfinite(m[i, j]):
            return "black"
        return "white" if (m[i, j] < mid) == dark_low else "black"

    if annotate and m.size <= 196:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6.5,
                            color=ink(i, j))
    if hatch is not None:
        for i, j in zip(*np.nonzero(np.asarray(hatch, dtype=bool))):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=0,
                                       hatch="///", edgecolor=ink(i, j), alpha=0.7))
    if corner is not None:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if corner[i][j]:
                    ax.text(j + 0.46, i - 0.44, str(corner[i][j]), ha="right", va="top",
                            fontsize=6.5, color=ink(i, j), fontweight="bold")
    if boxes is None and mark_rows_best in ("max", "min"):
        boxes = []
        for i in range(m.shape[0]):
            row = m[i]
            if np.isfinite(row).any():
                boxes.append((i, int(np.nanargmax(row) if mark_rows_best == "max"
                                     else np.nanargmin(row))))
    for i, j in boxes or ():
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.8,
                                   edgecolor="red"))
    fig.tight_layout()
    return fig


def bar(values: Sequence[float], labels: Sequence[str], *, title: str, ylabel: str = "",
        ylim: tuple[float, float] | None = None) -> Any:
    """A simple labelled bar chart."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(3.0, 0.35 * len(values) + 1.5), 2.8))
    ax.bar(range(len(values)), values, color="#3b82f6")
    ax.set_xticks(range(len(values)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=9)
    if ylim:
        ax.set_ylim(*ylim)
    fig.tight_layout()
    return fig
