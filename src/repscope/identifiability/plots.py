"""Figures of the identifiability experiments (matplotlib, Agg canvas, PNG + SVG).

Figures are drawn on :class:`matplotlib.figure.Figure` objects with an Agg
canvas, never through ``pyplot``, so no global backend is changed and nothing
needs a display or a LaTeX installation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.optional import require

__all__ = [
    "save_figure",
    "plot_bound_scatter",
    "plot_embeddings",
    "plot_lm_figures",
    "plot_loss_vs_mcca",
    "plot_table1",
    "plot_width_sweep",
]


def _figure(width: float, height: float) -> Any:
    FigureCanvasAgg = require("matplotlib.backends.backend_agg", "ml",
                              purpose="the paper's figures").FigureCanvasAgg
    Figure = require("matplotlib.figure", "ml").Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, stem: str | Path, dpi: int = 200) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg``; return both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths


def plot_table1(df: Any, stem: str | Path) -> list[Path]:
    """KL (log scale) and d_LLV, m_CCA(f), max d_SVD(f) against the unembedding norm ρ."""
    d = df.sort_values("rho")
    fig = _figure(9, 3.4)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.semilogy(d["rho"], d["kl"], "o-", color="C0")
    ax1.set_xlabel("unembedding norm ρ")
    ax1.set_ylabel("mean KL(p ‖ p′)")
    ax1.set_title("distributions become close")
    ax2.plot(d["rho"], d["d_llv"], "s-", label="d_LLV", color="C1")
    ax2.plot(d["rho"], d["d_svd_f"], "^-", label="max d_SVD(f)", color="C3")
    ax2.plot(d["rho"], d["m_cca_f"], "v-", label="m_CCA(f)", color="C2")
    ax2.set_xlabel("unembedding norm ρ")
    ax2.set_ylim(-0.05, max(1.45, float(d["d_llv"].max()) + 0.1))
    ax2.set_title("representations stay dissimilar")
    ax2.legend(loc="center right", fontsize=8)
    return save_figure(fig, stem)


def plot_width_sweep(summary: Any, stem: str | Path) -> list[Path]:
    """Fig. 3 right: mean ± SD of d_LLV (left) and d_{f,g} (right) against width, per K."""
    fig = _figure(9, 3.4)
    axes = fig.subplots(1, 2)
    for (name, col, sd) in (("d_LLV", "mean_d_llv", "sd_d_llv"),
                            ("d_{f,g}", "mean_d_fg", "sd_d_fg")):
        ax = axes[0] if name == "d_LLV" else axes[1]
        for i, (k, grp) in enumerate(summary.groupby("n_classes")):
            g = grp.sort_values("width")
            w = g["width"].to_numpy(float)
            m = g[col].to_numpy(float)
            s = np.nan_to_num(g[sd].to_numpy(float))
            ax.plot(w, m, "o-", color=f"C{i}", label=f"K = {k}")
            ax.fill_between(w, m - s, m + s, color=f"C{i}", alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width")
        ax.set_ylabel(f"mean {name}")
        ax.set_title(f"{name} vs width")
        if len(summary):
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no width has enough accurate seeds", ha="center",
                    va="center", transform=ax.transAxes)
    return save_figure(fig, stem)


def plot_bound_scatter(
    d_llv: Sequence[float],
    d_fg: Sequence[float],
    dim: int,
    stem: str | Path,
    *,
    title: str = "",
    groups: Sequence[Any] | None = None,
) -> list[Path]:
    """Fig. 16: d_LLV vs d_{f,g} for pairs with d_LLV < 1/(2M), with the line 2M·ε."""
    x = np.asarray(d_llv, dtype=float)
    y = np.asarray(d_fg, dtype=float)
    limit = 1.0 / (2 * dim)
    keep = x < limit
    fig = _figure(4.8, 4)
    ax = fig.subplots()
    if groups is None:
        ax.scatter(x[keep], y[keep], s=12, alpha=0.7, label="model pairs")
    else:
        gr = np.asarray(groups, dtype=object)
        for i, gval in enumerate(dict.fromkeys(gr[keep].tolist())):
            sel = keep & (gr == gval)
            ax.scatter(x[sel], y[sel], s=12, alpha=0.7, color=f"C{i % 10}", label=str(gval))
    line = np.linspace(0, limit, 50)
    ax.plot(line, 2 * dim * line, "k--", label=f"bound 2M·ε (M={dim})")
    ax.plot(line, 2 * line, ":", color="grey", label="2·ε")
    ax.set_xlim(0, limit)
    top = max(float(np.max(y[keep])) if keep.any() else 0.0, 2 * limit)
    ax.set_ylim(0, min(1.05, 1.1 * top))
    ax.set_xlabel("d_LLV")
    ax.set_ylabel("d_{f,g}")
    ax.set_title(title or f"pairs with d_LLV < 1/(2M) ({int(keep.sum())} of {len(x)})")
    ax.legend(fontsize=7)
    return save_figure(fig, stem)


def plot_loss_vs_mcca(df: Any, stem: str | Path) -> list[Path]:
    """Fig. 5: |test-loss difference| against test m_CCA(f), one panel per M."""
    dims = sorted(df["dim"].unique())
    fig = _figure(3.6 * len(dims), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(dims)))
    for ax, m in zip(axes, dims):
        g = df[df["dim"] == m]
        ax.scatter(g["m_cca_f_test"], g["loss_diff"], s=14)
        ax.set_xlabel("m_CCA(f), test")
        ax.set_ylabel("|test-loss difference|")
        ax.set_title(f"M = {m}")
    return save_figure(fig, stem)


def plot_embeddings(
    panels: Sequence[dict[str, Any]], stem: str | Path, class_names: Sequence[str] | None = None
) -> list[Path]:
    """Fig. 3 left: 2-D embeddings coloured by predicted class, unembeddings as arrows
    (rescaled to the embeddings' radius).

    Each panel is a dict with ``F`` (n × 2), ``G`` (K × 2), ``pred`` (n,) and ``title``.
    """
    fig = _figure(4.2 * len(panels), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, p in zip(axes, panels):
        f, g, pred = np.asarray(p["F"]), np.asarray(p["G"]), np.asarray(p["pred"])
        k = g.shape[0]
        for c in range(k):
            sel = pred == c
            lab = class_names[c] if class_names is not None else str(c)
            ax.scatter(f[sel, 0], f[sel, 1], s=3, alpha=0.5, color=f"C{c % 10}", label=lab)
        scale = float(np.max(np.linalg.norm(f, axis=1))) / max(
            float(np.max(np.linalg.norm(g, axis=1))), 1e-12)
        tips = g * scale
        ax.plot([0.0], [0.0], "k+", markersize=8)
        ax.scatter(tips[:, 0], tips[:, 1], s=0)  # make the limits include the arrows
        for c in range(k):
            ax.annotate("", xy=(tips[c, 0], tips[c, 1]), xytext=(0, 0),
                        arrowprops={"arrowstyle": "->", "color": f"C{c % 10}", "lw": 1.5})
        ax.set_title(p.get("title", ""))
        ax.set_aspect("equal", adjustable="datalim")
    axes[-1].legend(fontsize=6, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_figure(fig, stem)


def plot_lm_figures(pairs: Any, k: int, out: str | Path) -> list[Path]:
    """The language-model figures at K = ``k``: d_LLV vs KL (``fig_llv_vs_kl``), d_{f,g}
    (its interval as a bar) vs d_LLV with the bounds 2M·ε and 2·ε (``fig_fg_vs_llv``), and
    d_LLV and d_{f,g} against width (``fig_width``); same-width pairs, coloured by width."""
    out = Path(out)
    d = pairs[(pairs["k"] == k) & pairs["width"].notna()].dropna(subset=["d_llv"])
    widths = sorted(d["width"].unique())
    paths: list[Path] = []
    fig = _figure(4.8, 4)
    ax = fig.subplots()
    for i, w in enumerate(widths):
        g = d[d["width"] == w]
        ax.scatter(g["kl_sym"], g["d_llv"], s=18, color=f"C{i}", label=f"width {int(w)}")
    ax.set_xlabel("KL (symmetrised, nats)")
    ax.set_ylabel(f"d_LLV (K = {k})")
    ax.set_title("d_LLV against KL")
    if widths:
        ax.legend(fontsize=7)
    paths += save_figure(fig, out / "fig_llv_vs_kl")
    fig = _figure(4.8, 4)
    ax = fig.subplots()
    top = 0.0
    for i, w in enumerate(widths):
        g = d[d["width"] == w]
        lo, hi = g["d_fg_lower"].to_numpy(float), g["d_fg_upper"].to_numpy(float)
        ax.errorbar(g["d_llv"], (lo + hi) / 2, yerr=(hi - lo) / 2, fmt="o", ms=4,
                    color=f"C{i}", label=f"width {int(w)}")
        top = max(top, float(np.nanmax(hi)) if hi.size else 0.0)
    xs = d["d_llv"].to_numpy(float)
    xs = xs[xs > 0]
    log = xs.size > 0 and float(xs.max()) > 20 * float(xs.min())
    xmax = float(xs.max()) * 1.05 if xs.size else 1.0
    line = (np.geomspace(float(xs.min()) / 2, xmax, 50) if log else np.linspace(0, xmax, 50))
    if log:
        ax.set_xscale("log")
    if widths:
        m = int(min(widths))
        ax.plot(line, np.minimum(2 * m * line, 1.0), "k--", label=f"2M·ε (M = {m}), capped at 1")
    ax.plot(line, np.minimum(2 * line, 1.0), ":", color="grey", label="2·ε")
    ax.set_ylim(0, max(0.05, min(1.05, 1.2 * top)))
    if xs.size and 2 * float(xs.min()) >= 1.0:
        ax.text(0.5, 0.02, "2·d_LLV ≥ 1 for every pair: both bounds are vacuous here",
                ha="center", va="bottom", fontsize=7, transform=ax.transAxes)
    ax.set_xlabel(f"d_LLV (K = {k})")
    ax.set_ylabel("d_{f,g} [lower, upper]")
    ax.set_title("d_{f,g} against d_LLV")
    ax.legend(fontsize=7)
    paths += save_figure(fig, out / "fig_fg_vs_llv")
    fig = _figure(9, 3.4)
    axes = fig.subplots(1, 2)
    for ax, (name, col) in zip(axes, (("d_LLV (upper end)", "d_llv"),
                                      ("d_{f,g} (upper end)", "d_fg_upper"))):
        if widths:
            g = d.groupby("width")[col]
            mean, sd = g.mean(), g.std().fillna(0.0)
            ax.errorbar(mean.index, mean.to_numpy(), yerr=sd.to_numpy(), fmt="o-", capsize=3,
                        label="upper end, mean ± SD")
            ax.scatter(d["width"], d[col], s=8, alpha=0.5, color="grey")
            lower = {"d_llv": "d_llv_lower", "d_fg_upper": "d_fg_lower"}[col]
            ax.plot(mean.index, d.groupby("width")[lower].mean().to_numpy(), "s--",
                    color="C1", label="lower end, mean")
            ax.set_xscale("log", base=2)
            vals = d[[col, lower]].to_numpy(float)
            if np.nanmin(vals) > 0 and np.nanmax(vals) > 20 * np.nanmin(vals):
                ax.set_yscale("log")
            ax.legend(fontsize=7)
        ax.set_xlabel("width")
        ax.set_ylabel(name)
        ax.set_title(f"{name} of seed pairs vs width")
    paths += save_figure(fig, out / "fig_width")
    return paths
