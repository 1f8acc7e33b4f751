"""Pairs evaluated in parallel threads by repscope.grid: same rows, per-thread warnings.

``grid(..., threads=k)`` prepares the representations and evaluates the pairs of
thread-safe measures in ``k`` threads.  These tests check that the rows (values,
warnings, errors, order) equal the sequential ones, that the work really runs
in several threads (and only for thread-safe measures), and the three pieces
that make it safe: per-thread warning capture, :meth:`Prepared.cached` and the
shared cross-product table computing each quantity once.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest
from test_grid_amortisation import MOMENT, _reps, _tasks

import repscope
from repscope.core.errors import InvalidParameterError
from repscope.core.warning_capture import capture_warnings, route_warnings
from repscope.engine.cross_moments import CrossMoments
from repscope.engine.grid import grid
from repscope.engine.local import PAIR_THREADS_MAX_N, pair_threads, run_tasks
from repscope.inference.options import Stats
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import MeasureInfo

MEASURES: list[Any] = [*MOMENT, "rsa", ("rsa", {"compare": "pearson"})]


def _degenerate_reps(rng) -> dict:
    reps = _reps(rng, 40)
    reps[("c", 0)] = np.ones((40, 4))  # constant: an error row for every measure
    bad = reps[("a", 1)].copy()
    bad[2, 2] = np.nan
    reps[("c", 1)] = bad  # non-finite
    reps[("c", 2)] = rng.normal(size=(40, 45))  # d > n: CCA-family warnings
    return reps


def _rows(reps: dict, threads: int, on_error: str = "record") -> list[dict]:
    tasks = _tasks(reps, MEASURES, "all")
    rows: list[dict] = []
    n = next(iter(reps.values())).shape[0]
    run_tasks(tasks, lambda k: reps[k], {k: v.shape[1] for k, v in reps.items()}, n,
              stats=Stats.parse(None), seed=0, on_error=on_error,
              emit=lambda t, r: rows.append({**r, "pair": (t.a, t.b)}), table=CrossMoments(),
              threads=threads)
    return rows


# ------------------------------------------------------------------ rows
def test_threaded_rows_equal_sequential_rows(rng):
    reps = _degenerate_reps(rng)
    one, four = _rows(reps, 1), _rows(reps, 4)
    assert len(one) == len(four) > 500
    for p, b in zip(one, four):
        assert (b["pair"], b["measure"], b["params"]) == (p["pair"], p["measure"], p["params"])
        assert b["error"] == p["error"], (p["measure"], p["pair"])
        assert b["warnings"] == p["warnings"], (p["measure"], p["pair"])
        if p.get("value") is None:
            assert b.get("value") is None
        else:  # one-threaded BLAS may sum in another order
            assert b["value"] == pytest.approx(p["value"], rel=1e-10, abs=1e-12), p["measure"]
    assert sum(r.get("value") is not None for r in one) > 300
    assert any(r["warnings"] for r in one) and any(r["error"] for r in one)
    assert any("NaN" in (r["error"] or "") for r in one)
    assert any("constant" in (r["error"] or "") for r in one)


def test_grid_threads_parameter_gives_the_same_table(rng):
    reps = _reps(rng, 50, dtype="float32")
    names = ["cka", "procrustes", "mean_cca", "rsa"]
    a, b = grid(reps, names, threads=1), grid(reps, names, threads=3)
    assert [(r["model_a"], r["layer_a"], r["model_b"], r["layer_b"], r["measure"]) for r in a] \
        == [(r["model_a"], r["layer_a"], r["model_b"], r["layer_b"], r["measure"]) for r in b]
    for r, q in zip(a, b):
        assert q["value"] == pytest.approx(r["value"], rel=1e-10)


def test_errors_are_raised_from_worker_threads(rng):
    reps = _degenerate_reps(rng)
    raised = []
    for threads in (1, 3):
        with pytest.raises(repscope.RepscopeError) as info:
            _rows(reps, threads, on_error="raise")
        raised.append((type(info.value), str(info.value)))
    assert raised[0] == raised[1]  # the first failing task in order, as sequentially
    del reps[("c", 0)]
    with pytest.raises(repscope.InputValueError, match="NaN"):
        _rows(reps, 3, on_error="raise")
    with pytest.raises(repscope.DegenerateInputError):
        grid({("a", 0): reps[("a", 0)], ("b", 0): np.ones((40, 3))}, ["cka", "rsa"],
             on_error="raise", threads=2)


class _Sleepy(Measure):
    """Records the thread of each comparison (a thread-safe toy measure)."""

    threads_seen: ClassVar[list[str]] = []
    thread_safe: ClassVar[bool] = True
    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_grid_sleepy", family="custom", kind="similarity", value_range=(-1.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=2,
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        _Sleepy.threads_seen.append(threading.current_thread().name)
        time.sleep(0.02)
        return float(np.corrcoef(px.data[:, 0], py.data[:, 0])[0, 1])


class _Unsafe(_Sleepy):
    thread_safe: ClassVar[bool] = False
    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_grid_unsafe", family="custom", kind="similarity", value_range=(-1.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=2,
    )


def test_only_thread_safe_measures_run_in_worker_threads(rng):
    reps = _reps(rng, 30)
    _Sleepy.threads_seen.clear()
    grid(reps, [_Sleepy()], threads=3, chance=False)
    assert len(_Sleepy.threads_seen) == 9
    assert len(set(_Sleepy.threads_seen)) > 1
    assert all(t.startswith("repscope-grid") for t in _Sleepy.threads_seen)
    _Sleepy.threads_seen.clear()
    grid(reps, [_Sleepy()], threads=1, chance=False)
    assert set(_Sleepy.threads_seen) == {threading.main_thread().name}
    _Sleepy.threads_seen.clear()
    grid(reps, [_Unsafe()], threads=3, chance=False)
    assert set(_Sleepy.threads_seen) == {threading.main_thread().name}


def test_default_thread_count(rng, monkeypatch):
    import repscope.engine.local as allpairs

    small = {("a", 0): np.zeros((100, 8)), ("b", 0): np.zeros((100, 8))}
    widths = {k: 8 for k in small}
    monkeypatch.setattr(allpairs, "available_cpus", lambda: 4)
    assert pair_threads(small, 100, widths) == 4
    assert pair_threads(small, 100, widths, threads=2) == 2
    monkeypatch.setattr(allpairs, "available_cpus", lambda: 32)
    assert pair_threads(small, 100, widths) == 8
    assert pair_threads(small, PAIR_THREADS_MAX_N + 1, widths) == 1
    assert pair_threads(small, 10_000, {k: 4096 for k in small}) == 1  # BLAS threads pay off
    monkeypatch.setattr(allpairs, "available_cpus", lambda: 1)
    assert pair_threads(small, 100, widths) == 1
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(InvalidParameterError, match="threads"):
            pair_threads(small, 100, widths, threads=bad)
    with pytest.raises(InvalidParameterError, match="threads"):
        grid(small, ["cka"], threads=0)


def test_torch_inputs_keep_torch_threads():
    torch = pytest.importorskip("torch")
    reps = {("a", 0): torch.zeros(50, 4), ("b", 0): torch.zeros(50, 4)}
    assert pair_threads(reps, 50, {k: 4 for k in reps}) == 1


# ------------------------------------------------------------------ building blocks
def test_warnings_are_captured_per_thread():
    n_threads, rounds = 4, 25
    barrier = threading.Barrier(n_threads)
    got: dict[int, list[str]] = {}

    def work(i: int) -> None:
        with capture_warnings() as cw:
            barrier.wait()
            for r in range(rounds):
                warnings.warn(f"thread {i} round {r}", UserWarning, stacklevel=1)
                time.sleep(0.0005)
        got[i] = cw.messages

    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with route_warnings():
            threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            warnings.warn("from the main thread", UserWarning, stacklevel=1)
    for i in range(n_threads):
        assert got[i] == [f"UserWarning: thread {i} round {r}" for r in range(rounds)]
    # warnings outside any capture go to the handler in force before the section
    assert [str(w.message) for w in outside] == ["from the main thread"]


def test_nested_captures_and_plain_mode():
    for routed in (False, True):
        ctx = route_warnings() if routed else _nothing()
        with ctx, capture_warnings() as outer:
            warnings.warn("outer", UserWarning, stacklevel=1)
            with capture_warnings() as inner:
                warnings.warn("inner", UserWarning, stacklevel=1)
            warnings.warn("outer again", UserWarning, stacklevel=1)
        assert inner.messages == ["UserWarning: inner"], routed
        assert outer.messages == ["UserWarning: outer", "UserWarning: outer again"], routed


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` for i < n in n threads released at once (a barrier); results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _slow(value: float, calls: list[int]) -> Callable[[], float]:
    """A computation that counts its calls and takes long enough for the threads to meet."""

    def compute() -> float:
        calls.append(1)
        time.sleep(0.05)
        return value

    return compute


def test_prepared_cached_computes_once_across_threads():
    p = Prepared(np.zeros((5, 2)))
    calls: list[int] = []
    results = _together(8, lambda i: p.cached("x", _slow(3.0, calls)))
    assert calls == [1] and results == [3.0] * 8
    assert p.cached("none", lambda: None) is None and "none" in p.cache

    def failing() -> float:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        p.cached("y", failing)
    assert "y" not in p.cache  # an exception is not cached
    assert p.cached("y", lambda: 7.0) == 7.0


def test_cross_table_memo_computes_once_across_threads():
    table = CrossMoments()
    pa, pb = Prepared(np.zeros((5, 2))), Prepared(np.zeros((5, 3)))
    table.register(("a", 0), pa)
    table.register(("b", 0), pb)
    calls: list[int] = []

    def work(i: int) -> Any:
        x, y = (pa, pb) if i % 2 else (pb, pa)  # the memo is shared by both orders
        return table.memo(x, y, 0, "nuc", _slow(11.0, calls))

    assert _together(6, work) == [11.0] * 6
    assert calls == [1]
