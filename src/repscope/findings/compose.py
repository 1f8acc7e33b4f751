"""From the results database to the aggregates behind the findings: cells, trends, BH.

Every number a finding prints is computed here from rows of the results database
(:mod:`repscope.findings.store`) by :mod:`repscope.findings.summary`; the p-values of
all cells and trends form one family, adjusted by Benjamini–Hochberg (q-values), and
a cell or trend is "shown" only when its q-value is at most 0.05.  The sentences
follow the verdict counts literally: "equivalent" is said of a group only when every
pair of the group is judged equivalent, and a result that is not shown is printed as
such, with the smallest effect it could have detected
(:mod:`repscope.findings.sentences`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.findings.compute import CLASSES
from repscope.findings.population import DEPTHS, Group
from repscope.findings.store import ResultsStore
from repscope.findings.summary import capability_alignment, cell, depth_order, trend
from repscope.inference.multiple_testing import bh_adjust

__all__ = ["TREND_CLASSES", "cell_id", "compute_results"]

#: classes whose trends are tested (scores comparable across levels)
TREND_CLASSES = ("orthogonal", "linear", "neighbourhood")


def cell_id(group: Group, depth: str, cls: str) -> str:
    return f"{group.key} | {depth} | {cls}"


def _group_cells(store: ResultsStore, groups: list[Group], settings: str, n_boot: int
                 ) -> dict[str, dict[str, Any]]:
    cells: dict[str, dict[str, Any]] = {}
    for g in groups:
        units = {(a, b): (ua, ub) for a, b, ua, ub in g.pairs}
        seen: dict[frozenset[tuple[str, ...]], str] = {}
        for depth in DEPTHS:
            layers = frozenset(tuple(r.values()) for a, b, _, _ in g.pairs for r in store.rows(
                "SELECT DISTINCT a, b, layer_a, layer_b FROM profiles WHERE a = ? AND b = ? AND "
                "depth = ? AND settings = ?", (a, b, depth, settings)))
            if layers in seen:  # the same layers as a shallower depth (e.g. 2-block LMs)
                cells[f"{g.key} | {depth} | same"] = {"same_as": seen[layers]}
                continue
            seen[layers] = depth
            for cls in CLASSES:
                rows = [r for a, b, _, _ in g.pairs for r in store.rows(
                    "SELECT * FROM profiles WHERE a = ? AND b = ? AND depth = ? AND class = ? "
                    "AND settings = ?", (a, b, depth, cls, settings))]
                if rows:
                    c = cell(rows, units, n_boot)
                    c.update(group=g.key, depth=depth, cls=cls,
                             layers=sorted({f"{r['layer_a']}/{r['layer_b']}" for r in rows}))
                    cells[cell_id(g, depth, cls)] = c
    return cells


def _trend_findings(cells: dict[str, dict[str, Any]], groups: list[Group], n_boot: int
                    ) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind, factor in (("image", "width"), ("lm", "language models")):
        levelled = [g for g in groups if g.factor == factor and g.level is not None]
        for depth in DEPTHS:
            for cls in TREND_CLASSES:
                data = []
                for g in levelled:
                    c = cells.get(cell_id(g, depth, cls))
                    if not c or c["mean"] is None:
                        continue
                    units = {(a, b): (ua, ub) for a, b, ua, ub in g.pairs}
                    data.append((g.level, c["scores"],
                                 [units[(a, b)] for a, b in c["scored_pairs"]]))
                if not data:  # a depth that repeats a shallower one
                    continue
                t = trend(data, n_boot)
                t.update(kind=kind, factor=factor, depth=depth, cls=cls)
                out[f"trend | {factor} | {depth} | {cls}"] = t
    return out


def _time_findings(store: ResultsStore, groups: list[Group], settings: str, n_boot: int
                   ) -> dict[str, dict[str, Any]]:
    timed = [g for g in groups if g.factor == "time"]
    out: dict[str, dict[str, Any]] = {}
    for cls in TREND_CLASSES:
        curves: dict[str, list[tuple[str, float]]] = {}
        table: dict[str, dict[float, float]] = {}
        for g in timed:
            for a, b, ua, _ in g.pairs:
                for r in store.rows("SELECT depth, score FROM profiles WHERE a = ? AND b = ? "
                                    "AND class = ? AND settings = ?", (a, b, cls, settings)):
                    if r["score"] is None:
                        continue
                    curves.setdefault(r["depth"], []).append((ua, r["score"]))
                    table.setdefault(r["depth"], {}).setdefault(g.level, []).append(r["score"])
        d = depth_order(curves, n_boot)
        d.update(cls=cls, curves={dep: {str(k): float(np.mean(v)) for k, v in sorted(t.items())}
                                  for dep, t in table.items()})
        out[f"time order | {cls}"] = d
    return out


def compute_results(store: ResultsStore, groups: list[Group], settings: str, knn_settings: str,
                    n_boot: int) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """All cells and trends, with BH q-values over their p-values (one family)."""
    cells = _group_cells(store, groups, settings, n_boot)
    trends = _trend_findings(cells, groups, n_boot)
    trends.update(_time_findings(store, groups, settings, n_boot))
    for pop in ("image", "lm"):
        rows = store.rows("SELECT * FROM knn WHERE population = ? AND settings = ?",
                          (pop, knn_settings))
        t = capability_alignment(rows, n_boot)
        t.update(population=pop)
        trends[f"capability | {pop}"] = t
    family = [(k, v) for k, v in {**cells, **trends}.items() if v.get("p") is not None]
    qs = bh_adjust([v["p"] for _, v in family]) if family else []
    for (_, v), q in zip(family, qs):
        v["q"] = float(q)
    return cells, trends
