"""Findings over model populations trained differently (``repscope findings``).

For each factor a population varies (seed, width, depth, architecture, objective,
training data, training time, and tiny language models' seed and width) and for the
real pre-trained networks (MiniLM ↔ MPNet, MobileNetV2 ↔ networks trained here),
the distribution of calibrated profile verdicts and scores over the factor's pairs
at three relative depths, with intervals from resampling models, nulls, ceilings and
Benjamini–Hochberg control over the page; and the published directions (width,
bottom-up convergence, capability and alignment) checked.  Modules:

* :mod:`.population` — the models and the groups of pairs of each preset;
* :mod:`.representations` — layers at relative depths, per kind of model;
* :mod:`.compute` — one profile per pair × depth into the results database;
* :mod:`.store` — the SQLite results database;
* :mod:`.summary` — aggregates and trends with model-resampling intervals;
* :mod:`.compose` — all cells and trends with BH q-values;
* :mod:`.sentences` — the findings in words;
* :mod:`.page` — ``findings.html``, ``findings.md``, ``findings.json``;
* :mod:`.run` — :func:`run_findings`, the whole pipeline.

See ``docs/findings.md``.
"""

from __future__ import annotations

from repscope.findings.run import run_findings

__all__ = ["run_findings"]
