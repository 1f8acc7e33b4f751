"""All-pairs amortisation in repscope.grid: batched, shared cross products; same rows.

The grid computes ``X̃ₐᵀ[X̃_b₁ … X̃_bₖ]`` once per representation and shares the
cross products among every second-moment measure (:class:`CrossMoments`).
These tests check that this changes no row (values to 1e-12 of the single-pair
calls, warnings, errors, order) and that the batching really happens (counted
GEMMs, not timings).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import repscope
from repscope.engine.compare import compare, resolve_measures
from repscope.engine.cross_moments import CrossMoments
from repscope.engine.grid import grid
from repscope.engine.local import run_tasks
from repscope.engine.tasks import Task, pair_list
from repscope.inference.options import Stats
from repscope.measures.moment_measure import MomentMeasure
from repscope.storage.results_db import ResultKey

#: second-moment measures (all use X̃ᵀỸ on the feature path), symmetric and not
MOMENT: list[Any] = ["cka", "hsic", ("cka", {"debiased": True}), ("hsic", {"debiased": True}),
                     "procrustes", "procrustes_angular", "nbs", "bures_distance", "mean_cca",
                     "mean_sq_cca", "svcca", "pwcca", "ridge_cca", "shape_metric",
                     "linear_regression", "permutation_procrustes", "hard_correlation_match"]


def _reps(rng, n: int, widths=(7, 5), layers: int = 3, dtype: str = "float64") -> dict:
    z = rng.normal(size=(n, 3))
    out = {}
    for model, d in zip(("a", "b"), widths):
        for layer in range(layers):
            w = rng.normal(size=(3, d + layer))
            x = np.tanh(z @ w) + 0.3 * rng.normal(size=(n, d + layer)) + 2.0
            out[(model, layer)] = x.astype(dtype)
    return out


def _tasks(reps: dict, measures: Any, pairs: Any = "cross") -> list[Task]:
    n = next(iter(reps.values())).shape[0]
    out = []
    for m in resolve_measures(measures):
        plist = pair_list(list(reps), pairs)
        orders = plist if m.info.symmetric else [o for a, b in plist for o in ((a, b), (b, a))]
        for a, b in orders:
            out.append(Task(a, b, m, ResultKey.make(a[0], a[1], b[0], b[1], m.info.name,
                                                     params=m.params, n=n)))
    return out


def _run(reps: dict, tasks: list[Task], table: CrossMoments | None) -> list[dict]:
    rows: list[dict] = []
    n = next(iter(reps.values())).shape[0]
    run_tasks(tasks, lambda k: reps[k], {k: v.shape[1] for k, v in reps.items()}, n,
              stats=Stats.parse(None), seed=0, on_error="record",
              emit=lambda t, r: rows.append({**r, "pair": (t.a, t.b)}), table=table)
    return rows


class _CrossCalls:
    """Counts the cross products MomentMeasure really computes (and their widths)."""

    def __init__(self, monkeypatch) -> None:
        self.widths: list[tuple[int, int]] = []
        original = MomentMeasure.compute_cross
        original_many = MomentMeasure.compute_cross_many

        def counting(m, px, py, mixed=False):
            self.widths.append((int(px.data.shape[1]), int(py.data.shape[1])))
            return original(m, px, py, mixed)

        def counting_many(m, px, pys):
            self.widths.append((int(px.data.shape[1]), sum(int(p.data.shape[1]) for p in pys)))
            return original_many(m, px, pys)

        monkeypatch.setattr(MomentMeasure, "compute_cross", counting)
        monkeypatch.setattr(MomentMeasure, "compute_cross_many", counting_many)


# ------------------------------------------------------------------ values
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("n", "widths"), [(60, (7, 5)), (9, (12, 10))])
def test_grid_equals_single_pair_calls(rng, dtype, n, widths):
    """Feature-path (n > d) and Gram-path (n < d, CCA degenerate: warned) regimes."""
    reps = _reps(rng, n, widths=widths, dtype=dtype)
    table = grid(reps, MOMENT)
    assert len(table) == 9 * (len(MOMENT) + 2)  # two asymmetric measures, both orders
    checked = 0
    for r in table:
        x, y = reps[(r["model_a"], r["layer_a"])], reps[(r["model_b"], r["layer_b"])]
        ref = compare(x, y, [(r["measure"], r["params"])])[0]
        assert r["error"] == ref["error"] and r["warnings"] == ref["warnings"], r["measure"]
        if ref["value"] is not None:
            single = repscope.measure(r["measure"], **r["params"])(x, y)
            assert r["value"] == pytest.approx(single, rel=1e-12, abs=1e-14), r["measure"]
            checked += 1
    assert checked > len(table) // 2


def test_batching_changes_no_row(rng):
    """Same rows with and without the table, including error rows and role-named messages."""
    reps = _reps(rng, 40)
    reps[("c", 0)] = np.ones((40, 4))  # constant
    bad = reps[("a", 1)].copy()
    bad[2, 2] = np.nan
    reps[("c", 1)] = bad  # non-finite
    explicit = [(("a", 0), ("b", 1)), (("c", 1), ("b", 0)), (("a", 0), ("c", 1)),
                (("a", 0), ("c", 0)), (("a", 0), ("b", 2)), (("b", 2), ("a", 1))]
    for pairs in ("all", explicit):
        tasks = _tasks(reps, MOMENT, pairs)
        plain, batched = _run(reps, tasks, None), _run(reps, tasks, CrossMoments())
        assert len(plain) == len(batched) == len(tasks)
        for p, b in zip(plain, batched):
            for c in p:
                if c == "seconds":
                    continue
                if c in ("value", "estimate") and p[c] is not None:
                    assert b[c] == pytest.approx(p[c], rel=1e-12, abs=1e-14), p["measure"]
                else:
                    assert b[c] == p[c], (p["measure"], c)
        errs = [r["error"] for r in plain if r["error"]]
        assert any("constant" in e for e in errs) and any("NaN" in e for e in errs)
    # the NaN representation first appears as X in the explicit order: messages name it so
    assert any("c/1: InputValueError: X contains NaN" in (r["error"] or "") for r in plain)


# ------------------------------------------------------------------ batching
def test_one_gemm_per_representation_shared_by_every_measure(rng, monkeypatch):
    reps = _reps(rng, 80)  # n = 80 > d: every measure takes the feature path
    measures = ["cka", "procrustes", "mean_cca", "nbs", "linear_regression"]
    tasks = _tasks(reps, measures)
    calls = _CrossCalls(monkeypatch)
    plain = _run(reps, tasks, None)
    unbatched = len(calls.widths)
    assert unbatched == 9 * 4 + 18  # one product per row (regression in both orders)
    calls.widths.clear()
    table = CrossMoments()
    batched = _run(reps, tasks, table)
    # three GEMMs, one per layer of model a, against all three layers of b concatenated
    assert table.gemms == 3 and table.pairs == 9
    assert calls.widths == [(7, 5 + 6 + 7), (8, 5 + 6 + 7), (9, 5 + 6 + 7)]
    assert [r["value"] for r in batched] == pytest.approx([r["value"] for r in plain],
                                                          rel=1e-12)


def test_float32_products_are_shared_not_batched(rng, monkeypatch):
    """float32 GEMMs round differently when batched: each pair once, shared by the measures."""
    reps = _reps(rng, 80, dtype="float32")
    tasks = _tasks(reps, ["cka", "hsic", "nbs"])  # mixed-precision classes
    calls = _CrossCalls(monkeypatch)
    table = CrossMoments()
    rows = _run(reps, tasks, table)
    # CKA and NBS share one product per pair of unit-scaled inputs; linear HSIC, in the
    # data's units, has its own
    assert table.gemms == table.pairs == 18 and len(calls.widths) == 18
    for r in rows:
        (ka, kb) = r["pair"]
        single = repscope.measure(r["measure"])(reps[ka], reps[kb])
        assert r["value"] == pytest.approx(single, rel=1e-12)


def test_float32_products_of_different_block_lengths_are_not_shared(rng, monkeypatch):
    """CKA sums float32 GEMMs over longer blocks than NBS: beyond 4096 rows they differ."""
    reps = {(m, la): rng.standard_normal((5000, 3)).astype(np.float32)
            for m in ("a", "b") for la in ("l0",)}
    tasks = _tasks(reps, ["cka", "nbs"])
    _CrossCalls(monkeypatch)
    table = CrossMoments()
    rows = _run(reps, tasks, table)
    assert table.pairs == 2  # one product per block length
    for r in rows:
        (ka, kb) = r["pair"]
        single = repscope.measure(r["measure"])(reps[ka], reps[kb])
        assert r["value"] == pytest.approx(single, rel=1e-12)


def test_gram_path_pairs_are_not_batched(rng, monkeypatch):
    reps = _reps(rng, 6, widths=(40, 30))  # n << d: linear CKA uses n x n Grams
    calls = _CrossCalls(monkeypatch)
    table = CrossMoments()
    rows = _run(reps, _tasks(reps, ["cka"]), table)
    assert table.gemms == 0 and calls.widths == [] and len(rows) == 9


def test_memory_budget_evicts_and_stays_exact(rng, monkeypatch):
    reps = _reps(rng, 80)
    tasks = _tasks(reps, ["cka", "procrustes", "linear_regression"])
    roomy, tight = CrossMoments(), CrossMoments(budget=8 * 7 * 5 * 3)  # ~3 small products
    a, b = _run(reps, tasks, roomy), _run(reps, tasks, tight)
    assert len(tight) <= 3 < len(roomy) == 9
    assert tight.gemms > roomy.gemms
    assert [r["value"] for r in b] == pytest.approx([r["value"] for r in a], rel=1e-12)


# ------------------------------------------------------------------ timing (slow)
@pytest.mark.slow
def test_benchmark_grid_is_much_faster_than_the_loop(tmp_path):
    """The benchmark script at a reduced size (ratio depends on the machine's load)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import json

    import grid_amortisation

    out = tmp_path / "r.json"
    assert grid_amortisation.main(["--n", "1000", "--d", "128", "--layers", "7",
                                   "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    # float32 (mixed-precision) products of pairs evaluated in threads run one-threaded
    # GEMMs: they round differently from the loop's multi-threaded ones (~1e-9)
    assert res["max_rel_diff"] < 1e-7
    assert res["speedup"] > 2.0


def test_cca_means_share_one_whitened_cross_matrix_per_pair(rng, monkeypatch):
    import repscope.measures.cca as cca_module

    calls: list[tuple[int, ...]] = []
    original = cca_module._whiten
    monkeypatch.setattr(cca_module, "_whiten",
                        lambda lx, sxy, ly: calls.append(sxy.shape) or original(lx, sxy, ly))
    reps = _reps(rng, 80)
    rows = _run(reps, _tasks(reps, ["mean_cca", "mean_sq_cca"]), CrossMoments())
    assert len(rows) == 18 and len(calls) == 9  # one W per pair for both measures
    for r in rows:
        (ka, kb) = r["pair"]
        single = repscope.measure(r["measure"])(reps[ka], reps[kb])
        assert r["value"] == pytest.approx(single, rel=1e-12)


def test_memoised_arrays_are_evicted_beyond_the_budget_scalars_kept(rng, monkeypatch):
    import repscope.engine.cross_moments as allpairs

    table = CrossMoments()
    ps = [repscope.measure("cka").prepare(rng.normal(size=(20, 3))) for _ in range(4)]
    for i, p in enumerate(ps):
        table.register(("m", i), p)
    monkeypatch.setattr(allpairs, "MEMO_BUDGET", 3 * 800)  # three 10 × 10 float64 arrays
    calls: list[int] = []

    def array(i: int):
        return lambda: calls.append(i) or np.full((10, 10), float(i))

    for i in range(1, 4):
        table.memo(ps[0], ps[i], 0, "arr", array(i))
        table.memo(ps[0], ps[i], 0, "scalar", lambda: np.float64(7.0))
    table.memo(ps[1], ps[2], 0, "arr", array(9))  # a fourth array evicts the oldest
    assert calls == [1, 2, 3, 9]
    assert table.memo(ps[1], ps[0], 0, "arr", array(1))[0, 0] == 1.0  # recomputed
    assert table.memo(ps[3], ps[0], 0, "arr", array(3))[0, 0] == 3.0  # still kept
    assert calls == [1, 2, 3, 9, 1]
    assert all(table.memo(ps[0], ps[i], 0, "scalar", lambda: np.float64(-1.0)) == 7.0
               for i in range(1, 4))
