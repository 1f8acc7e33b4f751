"""Score every measure on every test with a known answer; uncertainty from resampling models.

:func:`run_grounding` evaluates each measure (and, on request, each of its
documented variants) on the tests of :mod:`repscope.grounding.known_answers`
that apply to the zoo, then recomputes every score on ``n_boot`` bootstrap
resamples of the zoo's models — the same resamples for every measure, so that
ranks are compared on equal terms — and reports per (measure, test): the
score, a percentile interval, the rank among the measures (1 = best) with its
interval over the resamples, and how many comparisons failed (wrong widths,
too few samples, degenerate inputs: shown, never a crash).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.progress import progress_bar
from repscope.grounding.advice import chance_levels, recommend
from repscope.grounding.groups import GROUP_TESTS, describe_groups, group_strata
from repscope.grounding.known_answers import TESTS, Dissimilarity, _edits, prepare_test
from repscope.grounding.zoo import GroundingZoo

__all__ = ["QUICK_MEASURES", "GroundingResult", "default_measures", "run_grounding",
           "score_measures", "table_from_db"]


#: the measures of the quick preset: one of most families, and the ones the published
#: directions are about (linear CKA, mean CCA, SVCCA, PWCCA, Procrustes)
QUICK_MEASURES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("cka", {}), ("cka", {"kernel": "rbf"}), ("procrustes", {}), ("mean_cca", {}),
    ("svcca", {}), ("pwcca", {}), ("linear_regression", {}), ("rsa", {}), ("mutual_knn", {}),
    ("distance_correlation", {}),
)


def default_measures(variants: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """Every registered measure of representations, with default parameters or with each of
    its documented variants (``MeasureInfo.variants``)."""
    from repscope.measures.registry import list_measures

    out = []
    for info in list_measures():
        if info.input_kind != "representation":
            continue
        for params in (info.variants if variants else ({},)):
            out.append((info.name, dict(params)))
    return out


@dataclass
class GroundingResult:
    """Scores of measures on tests, with intervals and ranks (see the module docstring)."""

    rows: list[dict[str, Any]]
    tests: list[str]
    measures: list[str]
    skipped: dict[str, str]
    description: str
    settings: dict[str, Any] = field(default_factory=dict)

    def score(self, measure: str, test: str) -> float:
        for r in self.rows:
            if r["measure"] == measure and r["test"] == test:
                return r["score"]
        raise KeyError((measure, test))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the chance level per test and the recommendations derived
        from the rows (:mod:`repscope.grounding.advice`), which the report shows."""
        out = {"description": self.description, "settings": self.settings,
               "tests": {t: TESTS[t][2] for t in self.tests}, "skipped": self.skipped,
               "measures": self.measures, "rows": self.rows,
               "chance": {t: c for t, c in chance_levels(self.settings).items()
                          if t in self.tests and math.isfinite(c)}}
        out["advice"] = recommend(out)
        return out

    def write(self, folder: str | Path) -> list[Path]:
        """``grounding.json``, ``grounding.csv``, ``grounding.md``, ``grounding.png`` (with
        matplotlib) and ``grounding.html`` (with jinja2: the table and the recommendations)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "grounding.json", out / "grounding.csv", out / "grounding.md"]
        paths[0].write_text(json.dumps(self.to_dict(), indent=1, default=_json), "utf-8")
        cols = ["measure", "test", "score", "ci_low", "ci_high", "rank", "rank_low",
                "rank_high", "n_models", "failed", "evaluated"]
        lines = [",".join(cols)] + [",".join(_csv(r.get(c)) for c in cols) for r in self.rows]
        paths[1].write_text("\n".join(lines) + "\n", "utf-8")
        paths[2].write_text(self.markdown(), "utf-8")
        try:
            paths.append(self.figure(out / "grounding.png"))
        except ImportError:
            pass
        try:
            from repscope.report.grounding_page import render_grounding_page
        except ImportError:  # jinja2 absent: the other files are written
            return paths
        page = render_grounding_page(self.to_dict(), out / "grounding.png")
        (out / "grounding.html").write_text(page, "utf-8")
        return paths + [out / "grounding.html"]

    def markdown(self) -> str:
        """A measure × test table: score [95 % interval] (rank)."""
        head = "| measure | " + " | ".join(self.tests) + " |"
        lines = [head, "|---" * (len(self.tests) + 1) + "|"]
        by = {(r["measure"], r["test"]): r for r in self.rows}
        for m in self.measures:
            cells = []
            for t in self.tests:
                r = by.get((m, t))
                if r is None or not math.isfinite(r["score"]):
                    cells.append("–" if r is None else f"n/a ({r['failed']} failed)")
                else:
                    cells.append(f"{r['score']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] "
                                 f"({r['rank']})" + (f" †{r['failed']}/{r['evaluated']} failed"
                                                     if r["failed"] else ""))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        chance = chance_levels(self.settings)
        lines.insert(2, "| *chance* | " + " | ".join(
            f"{chance[t]:.2f}" if math.isfinite(chance.get(t, math.nan)) else "–"
            for t in self.tests) + " |")
        notes = [f"- **{t}**: {TESTS[t][2]}" for t in self.tests]
        notes += [f"- **{t}**: {why}" for t, why in self.skipped.items()]
        advice = [f"- {a['question']} ({', '.join(a['tests'])}): {a['sentence']}"
                  for a in self.to_dict()["advice"]]
        return (f"{self.description}\n\nScore [95 % interval over {self.settings.get('n_boot')} "
                "resamples of the models] (rank among the measures, 1 = best); † k/m failed: "
                "scored on the comparisons that worked, not recommended.\n\n"
                + "\n".join(lines) + "\n\n" + "\n".join(notes)
                + "\n\nWhich measure for which question (read off the table):\n\n"
                + "\n".join(advice) + "\n")

    def figure(self, path: str | Path) -> Path:
        from repscope.views.figures import heatmap

        mat = np.array([[next((r["score"] for r in self.rows if r["measure"] == m
                               and r["test"] == t), np.nan) for t in self.tests]
                        for m in self.measures], dtype=float)
        fig = heatmap(mat, self.measures, self.tests, title="grounding: score per test "
                      "(higher is better)", cmap="viridis", vmin=-1, vmax=1,
                      cbar_label="score (↑ better)")
        fig.savefig(path, dpi=110)
        return Path(path)


def _json(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return str(v)


def _csv(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def _rank(values: np.ndarray) -> np.ndarray:
    """Rank 1 = largest; NaN ranks last."""
    order = np.argsort(np.where(np.isfinite(values), -values, np.inf), kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks


def run_grounding(zoo: GroundingZoo, measures: list[tuple[str, dict[str, Any]]] | None = None,
                  *, tests: list[str] | None = None, n_boot: int = 200, seed: int = 0,
                  progress: bool | None = False, db: str | Path | None = None
                  ) -> GroundingResult:
    """Score ``measures`` (``[(name, params)]``, default :func:`default_measures`) on
    ``tests`` (default: all of :data:`~repscope.grounding.known_answers.TESTS`).

    ``db``: a folder whose ``grounding.sqlite`` receives every value computed
    (:mod:`repscope.grounding.store`); values already there are read, not recomputed.
    NumPy's and torch's thread pools are limited to one thread while it runs.
    """
    from repscope.core.threads import single_threaded

    measures = measures if measures is not None else default_measures()
    tests = list(tests or TESTS)
    with single_threaded():  # spinning BLAS threads cost 50× here on a busy 2-core machine
        return _run(zoo, measures, tests, n_boot, seed, progress, db)


def _run(zoo: GroundingZoo, measures: list[tuple[str, dict[str, Any]]], tests: list[str],
         n_boot: int, seed: int, progress: bool | None, db: str | Path | None
         ) -> GroundingResult:
    from repscope.grounding.store import GroundingStore, fingerprint, zoo_meta

    shared: dict[str, Any] = {"jsd": {}}
    if any(t.startswith(("sensitivity", "specificity")) for t in tests) and zoo.runnable:
        shared["edits"] = _edits(zoo, {})
    if db is None:
        return score_measures(zoo, measures, tests, n_boot=n_boot, seed=seed, shared=shared,
                              progress=progress)
    store = GroundingStore(db, fingerprint(zoo))
    try:
        store.put_meta("zoo", zoo_meta(zoo, shared))
        store.put_meta("measures", measures)
        store.put_meta("settings", {"tests": tests, "n_boot": n_boot, "seed": seed})
        return score_measures(zoo, measures, tests, n_boot=n_boot, seed=seed, shared=shared,
                              progress=progress, store=store)
    finally:
        store.close()


def score_measures(zoo: GroundingZoo, measures: list[tuple[str, dict[str, Any]]],
                   tests: list[str], *, n_boot: int, seed: int, shared: dict[str, Any],
                   progress: bool | None = False, store: Any = None, compute: bool = True
                   ) -> GroundingResult:
    """The scores behind :func:`run_grounding`; with ``store`` (a
    :class:`~repscope.grounding.store.GroundingStore`) values are read from and written to
    its database, and with ``compute=False`` only read (the table rebuilt from it)."""
    from repscope.measures.registry import measure
    from repscope.views.analysis import measure_label

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    S = len(zoo.models)
    strata = group_strata(zoo.groups, zoo.models)  # intervention models: within their group
    boots = []
    for _ in range(n_boot):
        b = [zoo.models[i] for i in rng.integers(0, S, size=S)]
        for st in strata:
            b += [st[i] for i in rng.integers(0, len(st), size=len(st))]
        boots.append(b)  # the first S are the seeds, then the strata
    everyone = zoo.models + [m for st in strata for m in st]
    n_inputs = int(zoo.labels.shape[0])
    labels, skipped = [], {}
    scores: dict[tuple[str, str], tuple[float, np.ndarray, int, int]] = {}
    with progress_bar(len(measures), "grounding", progress) as advance:
        for name, params in measures:
            label = measure_label(name, params)
            labels.append(label)
            current = [""]
            record = None if store is None or not compute else (
                lambda kx, ky, v, e, name=name, params=params, current=current: store.record(
                    current[0], name, params, n_inputs, kx, ky, v, e))
            d = Dissimilarity(measure(name, **params),
                              None if store is None else store.known(name, params),
                              record, compute)
            cache: dict[Any, Any] = dict(shared)
            # one commit per measure: a killed run loses at most this measure's new values
            with store.db.batch() if record is not None else contextlib.nullcontext():
                for t in tests:
                    current[0] = t
                    fn = prepare_test(t, zoo, d, cache)
                    if isinstance(fn, str):
                        skipped[t] = fn
                        continue
                    full = fn(everyone if t in GROUP_TESTS else zoo.models)
                    reps = np.array([fn(b if t in GROUP_TESTS else b[:S]) for b in boots],
                                    dtype=float)
                    scores[(label, t)] = (full, reps, sum(d.failures.values()), d.calls)
            advance()
    rows = []
    run_tests = [t for t in tests if t not in skipped]
    for t in run_tests:
        full = np.array([scores[(m, t)][0] for m in labels])
        boot = np.array([scores[(m, t)][1] for m in labels])  # measures × resamples
        rank = _rank(full)
        boot_ranks = np.array([_rank(boot[:, b]) for b in range(boot.shape[1])]).T \
            if boot.size else np.full((len(labels), 0), np.nan)
        for i, m in enumerate(labels):
            vals = boot[i][np.isfinite(boot[i])]
            lo, hi = (np.quantile(vals, [0.025, 0.975]) if vals.size >= 10
                      else (math.nan, math.nan))
            rlo, rhi = (np.quantile(boot_ranks[i], [0.025, 0.975]) if boot_ranks.shape[1]
                        else (math.nan, math.nan))
            rows.append({"measure": m, "test": t, "score": float(full[i]), "ci_low": float(lo),
                         "ci_high": float(hi), "rank": int(rank[i]), "rank_low": float(rlo),
                         "rank_high": float(rhi),
                         "n_models": len(zoo.groups[t]) if t in GROUP_TESTS else S,
                         "failed": scores[(m, t)][2], "evaluated": scores[(m, t)][3]})
    return GroundingResult(rows, run_tests, labels, skipped, zoo.description,
                           {"n_boot": n_boot, "seed": seed, "n_models": S,
                            "layers": zoo.layers, "n_inputs": int(zoo.labels.shape[0]),
                            "groups": {t: describe_groups(g) for t, g in zoo.groups.items()},
                            "values_written": None if store is None else store.n,
                            "seconds": time.perf_counter() - start})


def table_from_db(folder: str | Path) -> GroundingResult:
    """The table (scores, intervals, ranks) rebuilt from ``folder/grounding.sqlite`` alone:
    no activations, no measure computed; a
    :class:`~repscope.core.errors.RepscopeError` when a value the tests need is missing."""
    from repscope.grounding.store import GroundingStore, StoredZoo, read_meta, stored_cache

    meta = read_meta(folder)
    store = GroundingStore(folder, meta["fingerprint"])
    try:
        return score_measures(StoredZoo(meta), [(n, dict(p)) for n, p in meta["measures"]],
                              meta["settings"]["tests"], n_boot=meta["settings"]["n_boot"],
                              seed=meta["settings"]["seed"], shared=stored_cache(meta),
                              store=store, compute=False)
    finally:
        store.close()
