"""Tests of the Zarr v3 activation store: round trips, laziness, provenance, atomicity."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

import repscope
from repscope.core.errors import InputShapeError, InputValueError
from repscope.storage.activation_store import ActivationStore
from repscope.storage.entry_writer import EntryExistsError, EntryNotFoundError, StoreError, make_key


@pytest.fixture
def store(tmp_path: Path) -> ActivationStore:
    return ActivationStore(tmp_path / "acts.zarr")


def test_write_open_load_roundtrip(store: ActivationStore, rng: np.random.Generator) -> None:
    X = rng.standard_normal((50, 7))
    arr = store.write("m/l1/flatten", X, model="m", layer="l1", pooling="flatten", dataset="d")
    assert isinstance(arr, zarr.Array)
    assert arr.shape == (50, 7) and arr.dtype == np.float32
    np.testing.assert_array_equal(store.load("m/l1/flatten"), X.astype(np.float32))
    assert store.keys() == ["m/l1/flatten"]
    assert store.has("m/l1/flatten") and "m/l1/flatten" in store
    assert not store.has("m/l2/flatten")
    assert len(store) == 1 and list(store) == ["m/l1/flatten"]


def test_float64_storage_is_exact(store: ActivationStore, rng: np.random.Generator) -> None:
    X = rng.standard_normal((9, 3))
    store.write("k", X, dtype=np.float64)
    np.testing.assert_array_equal(store.load("k"), X)
    assert store.provenance("k")["dtype"] == "float64"


def test_provenance_fields(store: ActivationStore, rng: np.random.Generator) -> None:
    X = rng.standard_normal((20, 4))
    store.write(
        make_key("net", "fc1", "flatten"),
        X,
        model="net",
        model_revision="v1",
        weights_sha256="ab" * 32,
        layer="fc1",
        pooling="flatten",
        dataset="digits",
        dataset_sha256="cd" * 32,
        options={"spatial": "flatten", "seed": np.int64(3)},
    )
    p = store.provenance("net/fc1/flatten")
    assert p["model"] == "net" and p["model_revision"] == "v1"
    assert p["weights_sha256"] == "ab" * 32 and p["dataset_sha256"] == "cd" * 32
    assert p["layer"] == "fc1" and p["pooling"] == "flatten" and p["dataset"] == "digits"
    assert p["dtype"] == "float32" and p["n"] == 20 and p["d"] == 4
    assert p["repscope_version"] == repscope.__version__
    assert p["complete"] is True and p["key"] == "net/fc1/flatten"
    assert p["options"] == {"spatial": "flatten", "seed": 3}
    created = dt.datetime.fromisoformat(p["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 120
    assert store.find(model="net", layer="fc1") == ["net/fc1/flatten"]
    assert store.find(model="other") == []


def test_standard_fields_default_to_none(store: ActivationStore) -> None:
    store.write("k", np.ones((2, 2)))
    p = store.provenance("k")
    for field in ("model", "model_revision", "weights_sha256", "layer", "dataset"):
        assert field in p and p[field] is None


def test_open_is_lazy(store: ActivationStore, rng: np.random.Generator) -> None:
    X = rng.standard_normal((100, 5))
    store.write("k", X, chunk_rows=10)
    arr = store.open("k")
    assert isinstance(arr, zarr.Array) and not isinstance(arr, np.ndarray)
    assert arr.chunks == (10, 5) and arr.nchunks == 10
    np.testing.assert_array_equal(arr[35:47], X[35:47].astype(np.float32))
    with pytest.raises(ValueError, match="read-only|read only"):  # read-only view
        arr[0, 0] = 1.0


def test_iterator_write_chunks_and_order(store: ActivationStore, rng: np.random.Generator) -> None:
    blocks = [rng.standard_normal((m, 6)) for m in (3, 0, 11, 7, 1, 25)]
    store.write("k", iter(blocks), chunk_rows=8)
    out = store.load("k")
    np.testing.assert_array_equal(out, np.concatenate(blocks).astype(np.float32))
    arr = store.open("k")
    assert arr.nchunks == int(np.ceil(47 / 8))


def test_writer_buffers_at_most_one_chunk(store: ActivationStore, rng: np.random.Generator) -> None:
    with store.writer("k", chunk_rows=16) as w:
        for _ in range(10):
            w.append(rng.standard_normal((5, 3)))
            assert w._buffered < 16 + 5  # flushed whenever a chunk is full
            assert w._data is None or w._data.shape[0] % 16 == 0
    assert store.open("k").shape == (50, 3)


def test_torch_blocks_accepted(store: ActivationStore) -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(12, dtype=torch.float64).reshape(4, 3).requires_grad_(True)
    store.write("t", t * 2)
    np.testing.assert_array_equal(store.load("t"), np.arange(12).reshape(4, 3) * 2)


def test_reopen_existing_store(tmp_path: Path, rng: np.random.Generator) -> None:
    X = rng.standard_normal((8, 2))
    ActivationStore(tmp_path / "s").write("a/b/c", X, model="a")
    again = ActivationStore(tmp_path / "s")
    assert again.keys() == ["a/b/c"]
    np.testing.assert_array_equal(again.load("a/b/c"), X.astype(np.float32))
    ro = ActivationStore(tmp_path / "s", mode="r")
    assert ro.provenance("a/b/c")["model"] == "a"
    with pytest.raises(StoreError, match="read-only"):
        ro.write("x", X)
    # the store is a valid Zarr v3 hierarchy readable without repscope
    root = zarr.open_group(str(tmp_path / "s"), mode="r")
    assert root.attrs["repscope_activation_store"] == 1


def test_keys_with_slashes_and_odd_characters(store: ActivationStore) -> None:
    keys = ["org/model name/enc.layer.3/mean", "..", ".hidden", "a%2Fb", "ünï/cödé"]
    for i, k in enumerate(keys):
        store.write(k, np.full((2, 2), i))
    assert store.keys() == sorted(keys)
    for i, k in enumerate(keys):
        assert store.load(k)[0, 0] == i
    with pytest.raises(StoreError):
        store.write("", np.ones((2, 2)))


def test_existing_key_needs_overwrite(store: ActivationStore) -> None:
    store.write("k", np.zeros((3, 2)))
    with pytest.raises(EntryExistsError, match="overwrite=True"):
        store.write("k", np.ones((3, 2)))
    np.testing.assert_array_equal(store.load("k"), 0)
    store.write("k", np.ones((4, 2)), overwrite=True)
    np.testing.assert_array_equal(store.load("k"), 1)
    assert store.provenance("k")["n"] == 4
    assert store.staging_entries() == []


def test_failed_iterator_leaves_no_entry(store: ActivationStore) -> None:
    def gen():
        yield np.ones((4, 3))
        yield np.ones((4, 3))
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError, match="crash"):
        store.write("k", gen(), chunk_rows=2)
    assert not store.has("k") and store.keys() == []
    assert store.staging_entries() == []


def test_failed_overwrite_keeps_old_entry(store: ActivationStore) -> None:
    store.write("k", np.zeros((3, 2)))

    def gen():
        yield np.ones((3, 2))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.write("k", gen(), overwrite=True)
    np.testing.assert_array_equal(store.load("k"), 0)


def test_killed_writer_is_invisible_and_cleaned(tmp_path: Path) -> None:
    path = tmp_path / "s"
    ActivationStore(path)
    code = textwrap.dedent(
        f"""
        import os, numpy as np
        from repscope.storage.activation_store import ActivationStore
        s = ActivationStore({str(path)!r})
        w = s.writer("victim", chunk_rows=4, model="m")
        for _ in range(5):
            w.append(np.ones((4, 3)))
        os._exit(0)  # simulated kill: no commit, no cleanup
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    s = ActivationStore(path)
    assert not s.has("victim") and s.keys() == []
    assert len(s.staging_entries()) == 1  # the abandoned write is there...
    with pytest.raises(EntryNotFoundError):
        s.open("victim")
    assert len(s.cleanup()) == 1  # ...and is removed, since its process is gone
    assert s.staging_entries() == []


def test_incomplete_entry_is_not_listed(store: ActivationStore) -> None:
    """Even an entry folder moved in by hand without the complete flag stays invisible."""
    store.write("k", np.ones((2, 2)))
    meta_path = store.path / "entries" / "k" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["complete"] = False
    meta_path.write_text(json.dumps(meta))
    assert not store.has("k") and store.keys() == []
    store.write("k", np.zeros((2, 2)))  # an incomplete entry may be replaced without overwrite
    assert store.has("k")


def test_cleanup_keeps_live_writers(store: ActivationStore) -> None:
    w = store.writer("k")
    w.append(np.ones((2, 2)))
    assert store.cleanup() == []  # our own process is alive
    w.commit()
    assert store.has("k")


def test_delete(store: ActivationStore) -> None:
    store.write("k", np.ones((2, 2)))
    store.delete("k")
    assert not store.has("k")
    with pytest.raises(EntryNotFoundError, match="no complete entry"):
        store.delete("k")


def test_not_found_suggests_close_keys(store: ActivationStore) -> None:
    store.write("model/layer1/mean", np.ones((2, 2)))
    with pytest.raises(EntryNotFoundError, match="model/layer1/mean"):
        store.load("model/layer2/mean")
    with pytest.raises(KeyError):
        store.provenance("nope")


def test_token_index_roundtrip(store: ActivationStore, rng: np.random.Generator) -> None:
    X = rng.standard_normal((6, 2))
    idx = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [1, 2], [2, 0]])
    store.write("tok", [X[:2], X[2:]], token_index=[idx[:2], idx[2:]])
    np.testing.assert_array_equal(store.token_index("tok"), idx)
    assert store.provenance("tok")["has_token_index"] is True
    store.write("pooled", X)
    assert store.token_index("pooled") is None


@pytest.mark.parametrize(
    ("blocks", "exc", "match"),
    [
        ([np.ones((2, 3)), np.ones((2, 4))], InputShapeError, "columns"),
        ([np.ones(3)], InputShapeError, "1-D"),
        ([np.ones((2, 2, 2))], InputShapeError, "2-D"),
        ([np.array([["a", "b"]])], InputValueError, "non-numeric"),
        ([np.array([[1.0, np.nan]])], InputValueError, "NaN"),
        ([np.full((1, 2), 1e300)], InputValueError, "NaN or Inf"),  # overflows float32
        ([], StoreError, "no rows"),
        ([np.ones((0, 3))], StoreError, "no rows"),
    ],
)
def test_bad_blocks(store: ActivationStore, blocks, exc, match) -> None:
    with pytest.raises(exc, match=match):
        store.write("k", iter(blocks))
    assert not store.has("k") and store.staging_entries() == []


def test_bad_token_index(store: ActivationStore) -> None:
    with pytest.raises(InputShapeError, match="token_index"):
        store.write("k", [np.ones((2, 2))], token_index=[np.zeros((3, 2), dtype=int)])
    with pytest.raises(StoreError, match="different numbers"):
        store.write("k", [np.ones((2, 2))] * 2, token_index=[np.zeros((2, 2), dtype=int)])
    with store.writer("k2") as w, pytest.raises(StoreError, match="every block"):
        w.append(np.ones((2, 2)), np.zeros((2, 2), dtype=int))
        w.append(np.ones((2, 2)))


def test_provenance_validation(store: ActivationStore) -> None:
    with pytest.raises(StoreError, match="JSON"):
        store.write("k", np.ones((2, 2)), model=object())
    with pytest.raises(StoreError, match="filled in by the store"):
        store.write("k", np.ones((2, 2)), n=5)
    with pytest.raises(StoreError, match="finite"):
        store.write("k", np.ones((2, 2)), score=float("nan"))
    assert store.keys() == []


def test_writer_state_errors(store: ActivationStore) -> None:
    w = store.writer("k")
    w.append(np.ones((2, 2)))
    w.commit()
    with pytest.raises(StoreError, match="committed"):
        w.append(np.ones((2, 2)))
    with pytest.raises(StoreError, match="chunk_rows"):
        store.writer("z", chunk_rows=0)
    with pytest.raises(StoreError, match="numeric"):
        store.writer("z", dtype=object)


def test_refuses_foreign_directories(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    with pytest.raises(StoreError, match="not an activation store"):
        ActivationStore(tmp_path / "busy")
    zarr.open_group(str(tmp_path / "z"), mode="w")
    with pytest.raises(StoreError, match="not a repscope store"):
        ActivationStore(tmp_path / "z")
    with pytest.raises(StoreError, match="no activation store"):
        ActivationStore(tmp_path / "missing", mode="r")
    with pytest.raises(StoreError, match="mode"):
        ActivationStore(tmp_path / "x", mode="w")


def test_concurrent_writers_same_key(store: ActivationStore) -> None:
    """Two writers race for one key: exactly one commit wins, the other fails cleanly."""
    w1 = store.writer("k")
    w2 = store.writer("k")
    w1.append(np.zeros((2, 2)))
    w2.append(np.ones((2, 2)))
    w1.commit()
    with pytest.raises(EntryExistsError):
        w2.commit()
    np.testing.assert_array_equal(store.load("k"), 0)
    assert store.staging_entries() == []


def test_memory_is_bounded_while_streaming(store: ActivationStore) -> None:
    """Writing 16 MB through the store keeps peak Python allocations near one chunk."""
    import tracemalloc

    d, rows, chunk = 512, 8000, 256  # 8000 x 512 float32 = 16 MB in total

    def gen():
        for _ in range(rows // 100):
            yield np.ones((100, d), dtype=np.float32)

    tracemalloc.start()
    try:
        store.write("big", gen(), chunk_rows=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    total = rows * d * 4
    assert store.open("big").shape == (rows, d)
    assert peak < total / 4, f"peak {peak / 2**20:.1f} MiB for {total / 2**20:.1f} MiB of data"
