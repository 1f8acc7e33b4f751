"""Tests of repscope.grid: all-pairs comparisons, prepared reuse, resumable results."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from typing import Any, ClassVar

import numpy as np
import pytest

import repscope
from repscope import inference
from repscope.core.errors import InputShapeError, InvalidParameterError
from repscope.engine.compare import compare
from repscope.engine.grid import grid
from repscope.engine.tasks import pair_list
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import MeasureInfo
from repscope.storage.results_db import ResultsDB


def make_reps(rng, models=("m0", "m1", "m2"), layers=(0, 1), n=30, d=4):
    z = rng.normal(size=(n, 3))
    return {(m, la): z @ rng.normal(size=(3, d + i)) + rng.normal(size=(n, d + i))
            for m in models for i, la in enumerate(layers)}


class _Counting(Measure):
    """Counts prepares and comparisons (class-level lists)."""

    prepares: ClassVar[list[int]] = []
    compares: ClassVar[list[int]] = []
    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_grid_counting", family="custom", kind="similarity", value_range=(-1.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=2,
    )

    def _prepare(self, p: Prepared) -> None:
        _Counting.prepares.append(p.n)

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        _Counting.compares.append(px.n)
        return float(np.corrcoef(px.data[:, 0], py.data[:, 0])[0, 1])


@pytest.fixture(autouse=True)
def _reset_counts():
    _Counting.prepares.clear()
    _Counting.compares.clear()


class Lazy:
    """A lazy array: shape without data, counting reads through ``__array__``."""

    def __init__(self, a: np.ndarray) -> None:
        self._a, self.shape, self.reads = a, a.shape, 0

    def __array__(self, dtype=None, copy=None):
        self.reads += 1
        return self._a if dtype is None else self._a.astype(dtype)


# ------------------------------------------------------------------ pairs
def test_pair_modes():
    keys = [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("c", 0)]
    cross = pair_list(keys, "cross")
    assert len(cross) == 2 * 2 + 2 * 1 + 2 * 1
    assert all(p[0][0] != p[1][0] for p in cross)
    within = pair_list(keys, "within")
    assert within == [(("a", 0), ("a", 1)), (("b", 0), ("b", 1))]
    assert len(pair_list(keys, "all")) == 10 == len(cross) + len(within)
    explicit = pair_list(keys, [(("a", 0), ("c", 0))])
    assert explicit == [(("a", 0), ("c", 0))]
    with pytest.raises(InvalidParameterError):
        pair_list(keys, "diagonal")
    with pytest.raises(InvalidParameterError):
        pair_list(keys, [(("a", 0), ("z", 9))])
    with pytest.raises(InvalidParameterError):
        pair_list(keys, [("a", 0)])


def test_values_match_compare_and_asymmetric_in_both_orders(rng):
    reps = make_reps(rng, models=("m0", "m1"), layers=(0, 1))
    table = grid(reps, ["cka", "linear_regression"])
    cka_rows = [r for r in table if r["measure"] == "cka"]
    lr_rows = [r for r in table if r["measure"] == "linear_regression"]
    assert len(cka_rows) == 4 and len(lr_rows) == 8
    for r in table:
        x, y = reps[(r["model_a"], r["layer_a"])], reps[(r["model_b"], r["layer_b"])]
        assert r["value"] == pytest.approx(repscope.measure(r["measure"])(x, y), rel=1e-12)
        assert r["dataset"] == "" and r["seed"] == 0
    orders = {((r["model_a"], r["layer_a"]), (r["model_b"], r["layer_b"])) for r in lr_rows}
    assert (("m1", 0), ("m0", 1)) in orders and (("m0", 1), ("m1", 0)) in orders
    text = str(table)
    assert text.splitlines()[0].split()[:5] == ["model_a", "layer_a", "model_b", "layer_b",
                                                "measure"]


def test_repeated_measure_is_computed_once(rng):
    reps = make_reps(rng, models=("m0", "m1"), layers=(0,))
    table = grid(reps, [_Counting(), _Counting()], chance=False)
    assert len(table) == 1 and len(_Counting.compares) == 1


def test_procrustes_family_shares_one_nuclear_norm_per_pair(rng, monkeypatch):
    import repscope.measures.procrustes as procrustes_module

    calls: list[tuple[int, int]] = []
    original = procrustes_module.nuclear_norm

    def counting(a, *args):
        calls.append(tuple(a.shape))
        return original(a, *args)

    monkeypatch.setattr(procrustes_module, "nuclear_norm", counting)
    reps = make_reps(rng, models=("m0", "m1"), layers=(0, 1), n=40)
    names = ["procrustes", "procrustes_angular", "nbs"]
    table = grid(reps, names, chance=False)
    assert len(table) == 12
    assert len(calls) == 4  # one per cross pair, shared by the three measures
    calls.clear()
    for r in table:
        x, y = reps[(r["model_a"], r["layer_a"])], reps[(r["model_b"], r["layer_b"])]
        assert r["value"] == pytest.approx(repscope.measure(r["measure"])(x, y), rel=1e-12)
    assert len(calls) == 12  # single-pair calls compute their own


def test_nested_mapping_input_is_equivalent(rng):
    reps = make_reps(rng, models=("m0", "m1"), layers=("fc1", "fc2"))
    nested = {"m0": {"fc1": reps[("m0", "fc1")], "fc2": reps[("m0", "fc2")]},
              "m1": {"fc1": reps[("m1", "fc1")], "fc2": reps[("m1", "fc2")]}}
    a, b = grid(reps, ["cka"]), grid(nested, ["cka"])
    assert a.column("value") == b.column("value")


def test_each_representation_prepared_once(rng):
    reps = make_reps(rng, layers=(0, 1, 2))  # 9 representations, 27 cross pairs
    table = grid(reps, [_Counting()], pairs="all", chance=False)
    assert len(table) == 36
    assert len(_Counting.prepares) == 9
    assert len(_Counting.compares) == 36


def test_lazy_arrays_are_read_once_and_not_when_done(rng, tmp_path):
    raw = make_reps(rng, models=("m0", "m1"), layers=(0, 1))
    lazy = {k: Lazy(v) for k, v in raw.items()}
    db = tmp_path / "r.sqlite"
    table = grid(lazy, [_Counting(), "cka"], db=db, chance=False)
    assert len(table) == 8
    assert all(a.reads == 2 for a in lazy.values())  # once per prepare-key group
    eager = grid(raw, [_Counting(), "cka"], chance=False)
    assert table.column("value") == pytest.approx(eager.column("value"))
    for a in lazy.values():
        a.reads = 0
    again = grid(lazy, [_Counting(), "cka"], db=db, chance=False)
    assert all(a.reads == 0 for a in lazy.values())
    assert again.column("value") == table.column("value")


def test_input_errors(rng):
    reps = make_reps(rng)
    bad = dict(reps)
    bad[("m9", 0)] = np.zeros((29, 4))
    with pytest.raises(InputShapeError, match="same number of samples"):
        grid(bad, ["cka"])
    with pytest.raises(InputShapeError, match="2-D"):
        grid({("a", 0): np.zeros((5, 2, 2)), ("b", 0): np.zeros((5, 4))}, ["cka"])
    with pytest.raises(InvalidParameterError):
        grid({"a": np.zeros((5, 2))}, ["cka"])
    with pytest.raises(InvalidParameterError):
        grid({("a", 1.5): np.zeros((5, 2))}, ["cka"])
    with pytest.raises(InvalidParameterError):
        grid({}, ["cka"])
    with pytest.raises(InvalidParameterError):
        grid(reps, ["cka"], dataset=3)


def test_errors_recorded_per_row_and_retry(rng, tmp_path):
    reps = make_reps(rng, models=("m0", "m1"), layers=(0,))
    reps[("m2", 0)] = np.ones((30, 4))  # constant: undefined for every measure
    db = tmp_path / "r.sqlite"
    table = grid(reps, ["cka"], db=db)
    errs = [r for r in table if r["error"]]
    assert len(errs) == 2 and all("DegenerateInputError" in r["error"] for r in errs)
    assert all(r["value"] is None for r in errs)
    ok = [r for r in table if not r["error"]]
    assert len(ok) == 1 and ok[0]["value"] is not None
    with ResultsDB(db) as d:
        before = {r["layer_b"]: r["timestamp"] for r in d.rows(model_b="m2")}
    grid(reps, ["cka"], db=db)  # errors count as done
    with ResultsDB(db) as d:
        assert {r["layer_b"]: r["timestamp"] for r in d.rows(model_b="m2")} == before
    grid(reps, ["cka"], db=db, retry_errors=True)
    with ResultsDB(db) as d:
        rows = d.rows(model_b="m2")
        assert len(rows) == 2 and len(d) == 3
        assert all(r["timestamp"] > before[r["layer_b"]] for r in rows)
    with pytest.raises(repscope.DegenerateInputError):
        grid(reps, ["cka"], on_error="raise")


def test_statistics_in_the_grid_match_compare(rng):
    reps = make_reps(rng, models=("m0", "m1"), layers=(0,))
    st = {"n_permutations": 20, "n_boot": 10, "auto_permutations": False}
    table = grid(reps, ["cka", "procrustes"], stats=st, seed=5)
    x, y = reps[("m0", 0)], reps[("m1", 0)]
    ref = compare(x, y, ["cka", "procrustes"], stats=st, seed=5)
    for r, q in zip(table, ref):
        for c in ("value", "pvalue", "calibrated", "ci_low", "ci_high"):
            assert r[c] == pytest.approx(q[c], rel=1e-12), c
    assert table[0]["pvalue"] == inference.permutation_test("cka", x, y, 20, seed=5).pvalue


def test_db_rows_resume_and_extend(rng, tmp_path):
    reps = make_reps(rng, models=("m0", "m1"), layers=(0, 1))
    db = tmp_path / "r.sqlite"
    first = grid(reps, [_Counting()], db=db, dataset="digits", chance=False)
    assert len(first) == 4 and len(_Counting.compares) == 4
    with ResultsDB(db) as d:
        assert len(d) == 4 and {r["dataset"] for r in d.rows()} == {"digits"}
    second = grid(reps, [_Counting(), "cka"], db=ResultsDB(db), dataset="digits", chance=False)
    assert len(_Counting.compares) == 4  # nothing recomputed
    assert len(second) == 8
    assert [r["run_id"] for r in second if r["measure"] == "_grid_counting"] == [
        first[0]["run_id"]] * 4
    other = grid(reps, [_Counting()], db=db, dataset="digits", seed=1, chance=False)
    assert len(other) == 4 and len(_Counting.compares) == 8  # new seed = new rows


SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from repscope.engine.grid import grid
    from repscope.measures.base import Measure
    from repscope.measures.metadata import MeasureInfo

    db, counter = sys.argv[1], sys.argv[2]

    class Slow(Measure):
        info = MeasureInfo(
            name="_slow", family="custom", kind="similarity", value_range=(-1.0, 1.0),
            symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
            reference="test", backend="numpy", min_samples=2,
        )

        def _compare(self, px, py):
            with open(counter, "a") as f:
                f.write("computed\\n")
            time.sleep(0.04)
            return float(np.corrcoef(px.data[:, 0], py.data[:, 0])[0, 1])

    rng = np.random.default_rng(0)
    reps = {(f"m{i}", la): rng.normal(size=(24, 3)) for i in range(3) for la in range(4)}
    grid(reps, [Slow(), "procrustes"], db=db, chance=False)
    print("finished")
    """
)


def _count(path) -> int:
    con = sqlite3.connect(path, timeout=10)
    try:
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0
    finally:
        con.close()


def test_kill_and_resume_loses_nothing_and_recomputes_nothing(tmp_path):
    """SIGKILL a grid run mid-way, re-run it, and check the table."""
    script = tmp_path / "run_grid.py"
    script.write_text(SCRIPT)
    db = tmp_path / "results.sqlite"
    total = 2 * 48  # 3 models x 4 layers: 48 cross pairs, two measures
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(tmp_path / "c1")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while (not db.exists() or _count(db) < 10) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with ResultsDB(db) as d:
        before = {tuple(r[c] for c in ("model_a", "layer_a", "model_b", "layer_b", "measure")):
                  (r["timestamp"], r["run_id"], r["value"]) for r in d.rows()}
    assert 10 <= len(before) < total, "the run should have been killed mid-way"
    done_slow = sum(1 for k in before if k[4] == "_slow")

    out = subprocess.run([sys.executable, str(script), str(db), str(tmp_path / "c2")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "finished" in out.stdout
    recomputed = (tmp_path / "c2").read_text().count("computed")
    assert recomputed == 48 - done_slow  # finished rows were not computed again

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    dupes = con.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM results GROUP BY dataset, model_a, layer_a, "
        "model_b, layer_b, measure, params, stats, n, seed HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    con.close()
    assert dupes == 0
    with ResultsDB(db) as d:
        rows = d.rows()
        assert len(rows) == total
        assert all(r["value"] is not None and r["error"] is None for r in rows)
        after = {tuple(r[c] for c in ("model_a", "layer_a", "model_b", "layer_b", "measure")):
                 (r["timestamp"], r["run_id"], r["value"]) for r in rows}
    for k, v in before.items():
        assert after[k] == v  # rows from the killed run kept as they were
    assert len({v[1] for v in after.values()}) == 2  # two runs wrote the table


def test_fitted_measures_get_held_out_values_by_default(rng, tmp_path):
    reps = make_reps(rng, models=("m0", "m1"), layers=(0,), n=40)
    table = grid(reps, ["mean_cca", "cka"], db=tmp_path / "r.sqlite")
    cca, cka = table["mean_cca"], table["cka"]
    x, y = reps[("m0", 0)], reps[("m1", 0)]
    assert cca["heldout"] == pytest.approx(inference.heldout("mean_cca", x, y, seed=0).statistic)
    assert cka["heldout"] is None and cka["stats"] == "{}"  # no held-out form: key unchanged
    assert json.loads(cca["stats"]) == {"heldout": True, "n_splits": 1, "test_fraction": 0.5}
    plain = grid(reps, ["mean_cca"], fitted="in_sample")
    assert plain["mean_cca"]["heldout"] is None and plain["mean_cca"]["stats"] == "{}"
    tiny = {k: v[:5] for k, v in reps.items()}  # too few samples to split: in-sample only
    assert grid(tiny, ["mean_cca"])["mean_cca"]["heldout"] is None
    with pytest.raises(repscope.InvalidParameterError):
        grid(reps, ["mean_cca"], fitted="both")
