"""repscope.grid on Dask: a local two-worker cluster gives the in-process rows.

One ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` is
shared by the module (started once, ~2 s); the CLI test starts its own through
``repscope run --dask local:2``.
"""

from __future__ import annotations

import contextvars
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import repscope  # noqa: E402
from repscope.core.errors import InvalidParameterError, RepscopeError  # noqa: E402
from repscope.engine.distributed import (  # noqa: E402
    MemmapSource,
    ZarrSource,
    _chunk_flags,
    _merge_chunks,
    _tile_chunk,
    active_client,
    chunk_bounds,
    current_client,
    dask_client,
    pair_moments,
    parse_address,
    plan_tiles,
    source_of,
)
from repscope.engine.grid import grid  # noqa: E402
from repscope.measures.moments import SecondMoments  # noqa: E402
from repscope.storage.results_db import ResultsDB  # noqa: E402

#: second-moment measures (chunked statistics on the workers) and others (blocks)
MOMENT = ["cka", "hsic", "procrustes", "nbs", "mean_cca", "svcca", "linear_regression"]
OTHER = ["rsa", "mutual_knn", ("cka", {"kernel": "rbf"}), ("cka", {"debiased": True})]


def _reps(n: int = 120, widths=(9, 6), layers: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    out = {}
    for model, d in zip(("a", "b"), widths):
        for layer in range(layers):
            w = rng.normal(size=(4, d + layer))
            out[(model, f"l{layer}")] = np.tanh(z @ w) + 0.3 * rng.normal(size=(n, d + layer))
    return out


@pytest.fixture(scope="module")
def client():
    with dask_client("local:2") as c:
        yield c


def _same_rows(local, remote, rel: float = 1e-12) -> None:
    """Every column equal (values to ``rel``), in the same order; timings excluded."""
    assert len(local) == len(remote) > 0
    for r, q in zip(local, remote):
        for c in local.columns:
            if c in ("seconds", "stats_seconds", "timestamp", "run_id"):
                continue
            a, b = r.get(c), q.get(c)
            if c in ("value", "calibrated", "estimate") and a is not None and b is not None:
                assert b == pytest.approx(a, rel=rel, abs=1e-15), (r["measure"], c)
            else:
                assert b == a, (r["measure"], c, a, b)


# ------------------------------------------------------------------ addresses, clients
def test_parse_address_and_errors():
    assert parse_address("local") == ("local", None)
    assert parse_address("local:3") == ("local", 3)
    assert parse_address("tcp://10.0.0.1:8786") == ("remote", "tcp://10.0.0.1:8786")
    assert parse_address("host:8786") == ("remote", "host:8786")
    for bad in ("", "local:0", "local:x", "nonsense", 3):
        with pytest.raises(InvalidParameterError):
            parse_address(bad)  # type: ignore[arg-type]


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(RepscopeError, match="cannot connect to the Dask scheduler"):
        with dask_client("tcp://127.0.0.1:9", timeout=0.5):
            pass  # pragma: no cover


def test_executor_selection(client):
    reps = _reps(n=40, layers=1)
    assert active_client() is client
    with pytest.raises(InvalidParameterError, match="executor"):
        grid(reps, ["cka"], executor="spark")
    with pytest.raises(InvalidParameterError, match="client="):
        grid(reps, ["cka"], executor="local", client=client)
    local = grid(reps, ["cka"], executor="local")  # forced in-process inside the context
    assert grid(reps, ["cka"], client=client).column("value") == pytest.approx(
        local.column("value"), rel=1e-12)


def test_without_a_client_dask_executor_is_an_error(client):
    # outside every dask_client block (this module's client is not the default client)
    ctx = contextvars.Context()
    assert ctx.run(active_client) is None
    if distributed.client._get_global_client() is None:
        with pytest.raises(InvalidParameterError, match="needs a Dask client"):
            ctx.run(current_client, True)
        assert ctx.run(current_client) is None


# ------------------------------------------------------------------ exactness
def test_dask_grid_equals_in_process(client):
    reps = _reps()
    names = MOMENT + OTHER
    local = grid(reps, names, executor="local")
    remote = grid(reps, names, chunk_rows=25)  # picked up from the active context
    _same_rows(local, remote)
    assert len(local) == 9 * (len(names) + 1)  # linear_regression in both orders


def test_statistics_within_and_degenerate_rows_match(client):
    reps = _reps(n=16, widths=(4, 3), layers=2)  # n < 20: CKA warns; CCA d >= n - 1 for none
    reps[("c", "flat")] = np.ones((16, 3))  # constant: an error row for every measure
    bad = reps[("a", "l1")].copy()
    bad[3, 0] = np.nan
    reps[("c", "nan")] = bad  # non-finite: an error row
    names = ["cka", "mean_cca", "procrustes", "permutation_procrustes", "linear_regression"]
    for pairs in ("cross", "within"):
        local = grid(reps, names, pairs=pairs, executor="local")
        remote = grid(reps, names, pairs=pairs, chunk_rows=5)
        _same_rows(local, remote)
    cross = grid(reps, names, executor="local")
    assert any("n=16" in w for r in cross for w in r["warnings"])
    assert any(r["error"] and "constant" in r["error"] for r in cross)
    assert any(r["error"] and "NaN" in r["error"] for r in cross)
    assert any(r["error"] and "equal width" in r["error"] for r in cross)
    st = {"n_permutations": 15, "n_boot": 8}
    _same_rows(grid(reps, ["cka", "rsa"], stats=st, seed=3, executor="local"),
               grid(reps, ["cka", "rsa"], stats=st, seed=3))


def test_on_error_raise_propagates(client):
    reps = _reps(n=30, layers=1)
    reps[("c", "flat")] = np.ones((30, 4))
    with pytest.raises(repscope.DegenerateInputError):
        grid(reps, ["cka"], on_error="raise")


def test_results_db_single_writer_resume(client, tmp_path):
    reps = _reps()
    db = tmp_path / "r.sqlite"
    grid(reps, ["cka"], db=db, dataset="d", executor="local")  # a first, partial run
    with ResultsDB(db) as d:
        first = {(r["model_a"], r["layer_a"], r["model_b"], r["layer_b"], r["measure"]):
                 r["timestamp"] for r in d.rows()}
    table = grid(reps, ["cka", "procrustes", "rsa"], db=db, dataset="d")
    assert len(table) == 27
    with ResultsDB(db) as d:
        rows = d.rows()
    assert len(rows) == 27 and len({r["run_id"] for r in rows}) == 2
    for r in rows:  # rows stored before were skipped, not recomputed
        k = (r["model_a"], r["layer_a"], r["model_b"], r["layer_b"], r["measure"])
        if k in first:
            assert r["timestamp"] == first[k]
    again = grid(reps, ["cka", "procrustes", "rsa"], db=db, dataset="d")
    assert again.column("timestamp") == table.column("timestamp")


# ------------------------------------------------------------------ sources
def test_sources_are_read_where_they_live(client, tmp_path):
    zarr = pytest.importorskip("zarr")
    reps = _reps(n=90)
    lazy = {}
    for i, (k, v) in enumerate(reps.items()):
        if i % 2:
            np.save(tmp_path / f"{i}.npy", v)
            lazy[k] = np.load(tmp_path / f"{i}.npy", mmap_mode="r")
        else:
            z = zarr.create_array(store=str(tmp_path / f"{i}.zarr"), shape=v.shape,
                                  chunks=(20, v.shape[1]), dtype="f8")
            z[...] = v
            lazy[k] = zarr.open_array(str(tmp_path / f"{i}.zarr"), mode="r")
    kinds = {type(source_of(a)) for a in lazy.values()}
    assert kinds == {MemmapSource, ZarrSource}
    names = ["cka", "mean_cca", "rsa"]
    _same_rows(grid(reps, names, executor="local"), grid(lazy, names))


def test_source_of_rejects_what_must_be_shipped(tmp_path):
    x = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    src = source_of(mm)
    assert isinstance(src, MemmapSource)
    assert np.array_equal(src.read(1, 3), x[1:3]) and np.array_equal(src.open(), x)
    assert source_of(mm[1:3]) is None  # a view: its offset is not the file's
    assert source_of(x) is None
    fortran = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype="f4",
                                        shape=(5, 2), fortran_order=True)
    fortran[...] = np.arange(10).reshape(5, 2)
    fortran.flush()
    src = source_of(np.load(tmp_path / "f.npy", mmap_mode="r"))
    assert src is not None and src.order == "F"
    assert np.array_equal(src.read(0, 5), np.arange(10).reshape(5, 2))


# ------------------------------------------------------------------ merged statistics
def test_merged_chunk_moments_equal_full_data_moments(rng):
    xs = [rng.normal(size=(103, d)) + 5.0 for d in (3, 4)]
    ys = [rng.normal(size=(103, d)) - 2.0 for d in (2, 5, 1)]
    parts = [_tile_chunk(xs, ys, lo, hi) for lo, hi in chunk_bounds(103, 17)]
    assert len(parts) == 7
    merged = parts[0]
    for p in parts[1:]:
        merged = _merge_chunks(merged, p)
    full = SecondMoments.from_arrays(np.hstack(xs), np.hstack(ys))
    mom = merged[0]
    assert mom.n == full.n == 103
    for attr in ("mean_x", "mean_y", "sxx", "syy", "sxy"):
        np.testing.assert_allclose(getattr(mom, attr), getattr(full, attr), rtol=1e-12,
                                   atol=1e-10)
    widths = {("x", i): x.shape[1] for i, x in enumerate(xs)}
    widths.update({("y", i): y.shape[1] for i, y in enumerate(ys)})
    rows, cols = [("x", 0), ("x", 1)], [("y", 0), ("y", 1), ("y", 2)]
    pm = pair_moments(mom, rows, cols, widths, ("x", 1), ("y", 1))
    ref = SecondMoments.from_arrays(xs[1], ys[1])
    np.testing.assert_allclose(pm.sxy, ref.sxy, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(pm.sxx, ref.sxx, rtol=1e-12, atol=1e-10)
    for name in ("cka", "mean_cca", "procrustes", "linear_regression"):
        m = repscope.measure(name)
        assert float(m.from_moments(pm)) == pytest.approx(m(xs[1], ys[1]), rel=1e-12)
    assert all(f.ok for f in merged[1] + merged[2])


def test_chunk_flags_detect_constant_and_non_finite():
    flat = np.ones((6, 2))
    a, b = _chunk_flags(flat[:3]), _chunk_flags(flat[3:])
    assert not a.merge(b).ok and a.merge(b).const_row is not None
    varied = flat.copy()
    varied[4, 1] = 2.0
    assert _chunk_flags(varied[:3]).merge(_chunk_flags(varied[3:])).ok
    other = _chunk_flags(np.full((3, 2), 2.0))
    assert a.merge(other).ok  # constant within each chunk, different across chunks
    nan = varied.copy()
    nan[0, 0] = np.inf
    assert not _chunk_flags(nan).ok


def test_plan_tiles_covers_every_pair_once():
    keys = [("a", i) for i in range(5)] + [("b", i) for i in range(4)]
    widths = {k: 3 + i for i, k in enumerate(keys)}
    pairs = [(a, b) for a in keys[:5] for b in keys[5:]] + [(keys[0], keys[1])]
    for width in (5, 12, 1000):
        tiles = plan_tiles(pairs, widths, width)
        seen = [p for t in tiles for p in t.pairs]
        assert sorted(seen) == sorted(pairs)
        for t in tiles:
            for side in (t.rows, t.cols):
                assert len(side) == 1 or sum(widths[k] for k in side) <= width
            assert all(a in t.rows and b in t.cols for a, b in t.pairs)
    assert len(plan_tiles(pairs, widths, 1000)) == 1


# ------------------------------------------------------------------ end to end
def test_repscope_run_dask_local_end_to_end(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    import repscope.engine.distributed as rd
    from repscope.cli.main import app

    calls: list[set[type]] = []
    original = rd.run_grid_tasks

    def spy(client, tasks, reps, *args, **kwargs):  # the study runner's grid went to Dask
        calls.append({type(source_of(a)) for a in reps.values()})
        return original(client, tasks, reps, *args, **kwargs)

    monkeypatch.setattr(rd, "run_grid_tasks", spy)

    rng = np.random.default_rng(4)
    z = rng.normal(size=(150, 5))
    lines = []
    for model in ("a", "b"):
        acts = []
        for layer in range(3):
            x = np.tanh(z @ rng.normal(size=(5, 12))) + 0.2 * rng.normal(size=(150, 12))
            np.save(tmp_path / f"{model}{layer}.npy", x)
            acts.append(f'l{layer} = "{model}{layer}.npy"')
        lines.append(f'[[models]]\nname = "{model}"\nactivations = {{ {", ".join(acts)} }}\n')
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nname = "dask-e2e"\n\n' + "\n".join(lines)
        + '\n[compare]\nmeasures = ["cka", "procrustes", "mean_cca", "rsa"]\nprofile = false\n'
        + '\n[stats]\npermutations = 10\nmeasures = ["cka"]\n'
    )
    runner = CliRunner()
    outs = {}
    for label, extra in (("dask", ["--dask", "local:2"]), ("local", [])):
        out = tmp_path / label
        # a fresh context: outside this module's dask_client block, so "local" is in-process
        res = contextvars.Context().run(
            runner.invoke, app,
            ["run", str(study), "--out", str(out), "--no-report", "--json", *extra])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output.strip().splitlines()[-1])["rows"] == 36
        if label == "dask":  # two grids (with and without statistics), .npy files read in place
            assert calls == [{MemmapSource}, {MemmapSource}]
        con = sqlite3.connect(out / "results.sqlite")
        outs[label] = {r[:5]: r[5:] for r in con.execute(
            "SELECT model_a, layer_a, model_b, layer_b, measure, value, pvalue, error, "
            "warnings FROM results")}
        con.close()
    assert len(calls) == 2  # the in-process run did not use Dask
    assert outs["dask"].keys() == outs["local"].keys()
    for k, (v, p, err, warn) in outs["local"].items():
        dv, dp, derr, dwarn = outs["dask"][k]
        assert dv == pytest.approx(v, rel=1e-12) and dp == p and derr == err and dwarn == warn
