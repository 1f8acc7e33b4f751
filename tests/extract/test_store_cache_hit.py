"""An entry already complete with the same provenance is a cache hit, not an error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from repscope.storage.activation_store import ActivationStore
from repscope.storage.entry_writer import EntryExistsError, provenance_difference, same_content

torch = pytest.importorskip("torch")

HASHED = {"model": "m", "layer": "l", "pooling": "mean", "weights_sha256": "w1",
          "dataset_sha256": "d1", "options": {"extractor": "torch"}, "extractor_version": 1}


def test_identical_entry_written_meanwhile_is_a_cache_hit(tmp_path: Path) -> None:
    store = ActivationStore(tmp_path / "s")
    w1 = store.writer("k", **HASHED)
    w2 = store.writer("k", **HASHED)  # both started before either committed (two runs)
    w1.append(np.zeros((3, 2)))
    w2.append(np.zeros((3, 2)))
    w1.commit()
    w2.commit()  # the same weights, data and options: keep the stored entry
    assert (w1.reused, w2.reused) == (False, True)
    assert store.keys() == ["k"] and store.staging_entries() == []
    np.testing.assert_array_equal(store.load("k"), 0)


def test_other_provenance_still_conflicts(tmp_path: Path) -> None:
    store = ActivationStore(tmp_path / "s")
    w1 = store.writer("k", **HASHED)
    w2 = store.writer("k", **{**HASHED, "weights_sha256": "w2"})
    w3 = store.writer("k", **HASHED, dtype=np.float64)  # another dtype is other content
    w1.append(np.zeros((3, 2)))
    w2.append(np.ones((3, 2)))
    w1.commit()
    with pytest.raises(EntryExistsError, match=r"weights_sha256: stored 'w1', now 'w2'"):
        w2.commit()
    assert store.staging_entries() == [w3.staging.name]  # w2's copy is gone
    np.testing.assert_array_equal(store.load("k"), 0)
    w3.append(np.zeros((3, 2)))
    with pytest.raises(EntryExistsError, match="dtype: stored 'float32', now 'float64'"):
        w3.commit()
    assert store.staging_entries() == []


def test_without_hashes_nothing_shows_two_entries_are_the_same() -> None:
    bare = {"model": "m", "layer": "l", "weights_sha256": None, "dataset_sha256": None}
    assert not same_content(bare, dict(bare))
    assert "no weights_sha256 or dataset_sha256 recorded" in provenance_difference(bare, bare)
    assert same_content({**HASHED, "created": "t1", "repscope_version": "0.1", "chunk_rows": 8},
                        {**HASHED, "created": "t2", "repscope_version": "0.2", "chunk_rows": 9})
    assert not same_content(HASHED, {**HASHED, "layer": "l2"})
    assert not same_content(HASHED, {**HASHED, "n": 5})


def _set_attr(store: ActivationStore, key: str, **attrs: object) -> None:
    meta_path = store._entry_dir(key) / "zarr.json"
    meta = json.loads(meta_path.read_text())
    for k, v in attrs.items():
        if v is None:
            meta["attributes"].pop(k, None)
        else:
            meta["attributes"][k] = v
    meta_path.write_text(json.dumps(meta))


def test_extractor_version_is_part_of_the_cache_key(tmp_path: Path) -> None:
    from repscope.extract import extract_torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    store = ActivationStore(tmp_path / "s")
    first = extract_torch(model, x, ["0"], store=store, model_id="net")
    (key,) = store.keys()
    assert store.provenance(key)["extractor_version"] == 1 and first.reused == ()
    _set_attr(store, key, extractor_version=None)  # written before extractor versions
    assert extract_torch(model, x, ["0"], store=store, model_id="net").reused == ("0",)
    _set_attr(store, key, extractor_version=2)  # another extractor wrote it
    with pytest.raises(EntryExistsError, match="extractor_version: stored 2, now 1"):
        extract_torch(model, x, ["0"], store=store, model_id="net")
