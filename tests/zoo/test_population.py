"""The zoo's populations: one factor at a time, deterministic training, cached with provenance."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.zoo.images import ImageSet
from repscope.zoo.population import ModelSpec, population, training_subset

torch = pytest.importorskip("torch")


def _images(n: int, seed: int) -> ImageSet:
    """Learnable 28 × 28 images: class c lights up row block c."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.uniform(0, 0.3, size=(n, 28, 28)).astype(np.float32)
    for i, c in enumerate(labels):
        images[i, 2 * c: 2 * c + 3] += 0.7
    return ImageSet(f"toy-{seed}", images, labels, tuple(map(str, range(10))), f"sha{seed}",
                    "generated")


def test_presets_vary_one_factor_at_a_time() -> None:
    for preset in ("quick", "full"):
        specs = population(preset)
        factors = Counter(f for s in specs for f, _ in s.factors)
        assert set(factors) == {"seed", "width", "depth", "architecture", "objective", "data",
                                "time"}
        widths = [int(lvl) for s in specs for f, lvl in s.factors if f == "width"]
        assert max(widths) / min(widths) >= 16
        assert len({s.name for s in specs}) == len(specs)  # each model listed once
        base = specs[0]
        for s in specs:  # every model differs from the base in the factors it belongs to only
            diff = {k for k in ("family", "width", "depth", "seed", "data", "epochs")
                    if getattr(s, k) != getattr(base, k)}
            allowed = {"seed": {"seed"}, "width": {"width"}, "depth": {"depth"},
                       "architecture": {"family", "width", "depth", "seed"},
                       "objective": {"family", "seed"}, "data": {"data"}, "time": {"epochs"}}
            assert diff <= set().union(*(allowed[f] for f, _ in s.factors)), (s.name, diff)
    assert Counter(f for s in population("full") for f, _ in s.factors)["seed"] == 5
    with pytest.raises(InvalidParameterError, match="unknown preset"):
        population("huge")


def test_training_subsets_are_disjoint_halves_and_20_percent_noise() -> None:
    labels = np.random.default_rng(0).integers(0, 10, size=1000)
    spec = ModelSpec(n_train=800)
    i0, _ = training_subset(labels, replace(spec, data="half0"))
    i1, _ = training_subset(labels, replace(spec, data="half1"))
    full, y = training_subset(labels, spec)
    assert len(i0) == len(i1) == 400 and not set(i0) & set(i1)
    assert set(i0) | set(i1) == set(full)
    noisy, yn = training_subset(labels, replace(spec, data="noise20"))
    assert (noisy == full).all() and 0.16 < np.mean(yn != y) < 0.24
    noisy2, yn2 = training_subset(labels, replace(spec, data="noise20", seed=3))
    assert (yn2 == yn).all()  # the same corrupted set for every seed


def test_training_is_cached_deterministic_and_has_provenance(tmp_path: Path) -> None:
    from repscope.zoo.training import load_network, train_population

    train, test = _images(300, 0), _images(100, 1)
    base = ModelSpec(width=16, depth=2, epochs=8.0, n_train=200)
    specs = [base, replace(base, epochs=0.5), replace(base, family="cnn", width=2),
             replace(base, family="mixer", width=8), replace(base, family="autoencoder")]
    zoo = train_population(specs, train, test, folder=tmp_path)
    entry = zoo.entries[base.name]
    assert entry["data"]["sha256"] == "sha0" and entry["data"]["n"] == 200
    assert entry["steps"] == 16 and entry["samples_seen"] == 1600  # 2 batches an epoch
    assert entry["training_flops"] == 6 * entry["macs_per_input"] * 1600 > 0
    assert entry["test_accuracy"] > 0.5 and len(entry["weights_sha256"]) == 64
    assert zoo.entries[specs[1].name]["steps"] == 1
    assert "test_reconstruction_mse" in zoo.entries[specs[-1].name]
    stamp = (tmp_path / f"{base.name}.pt").stat().st_mtime_ns
    again = train_population(specs, train, test, folder=tmp_path)  # all cached
    assert (tmp_path / f"{base.name}.pt").stat().st_mtime_ns == stamp
    assert again.entries[base.name]["weights_sha256"] == entry["weights_sha256"]
    # the half-epoch checkpoint of the 1-epoch run is the model trained for half an epoch
    alone = train_population([replace(base, epochs=0.5)], train, test, folder=tmp_path / "b")
    assert alone.entries[specs[1].name]["weights_sha256"] == \
        zoo.entries[specs[1].name]["weights_sha256"]
    net = load_network(base, tmp_path)
    assert not net.training and net.layer_names[-2:] == ["embedding", "logits"]
    with torch.no_grad():
        assert tuple(zoo.load(specs[2].name)(torch.as_tensor(test.images[:3])).shape) == (3, 10)
    with pytest.raises(RepscopeError, match="not in the zoo"):
        load_network(replace(base, seed=9), tmp_path)


def test_architectures_expose_layers_at_matching_relative_depths() -> None:
    from repscope.extract import extract_torch
    from repscope.zoo.architectures import build_network, macs_per_input

    x = torch.zeros(4, 28, 28)
    for fam, width in (("mlp", 8), ("cnn", 2), ("mixer", 8), ("autoencoder", 8)):
        net = build_network(fam, width, 2)
        reps = extract_torch(net, x.numpy(), net.layer_names)
        assert list(reps) == net.layer_names and net.layer_names[-1].endswith("logits")
        assert all(v.shape[0] == 4 for v in reps.values())
        assert macs_per_input(net) > 0
    assert macs_per_input(build_network("mlp", 10, 1)) == 784 * 10 + 10 * 10
    with pytest.raises(InvalidParameterError, match="unknown architecture"):
        build_network("resnet", 8, 2)


def test_cli_trains_a_preset_from_fashion_mnist_files(tmp_path: Path, monkeypatch) -> None:
    """`repscope zoo train` on tiny IDX files of Fashion-MNIST's format."""
    from idx_files import idx_bytes as idx
    from typer.testing import CliRunner

    from repscope.cli.main import app
    from repscope.zoo import sources

    folder = tmp_path / "fashion"
    folder.mkdir()
    for prefix, n, seed in (("train", 500, 0), ("t10k", 100, 1)):
        data = _images(n, seed)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(idx(data.images * 255))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(idx(data.labels))
    src = sources.SOURCES["fashion_mnist"]
    monkeypatch.setitem(sources.SOURCES, "fashion_mnist",
                        replace(src, system_root=str(folder)))
    res = CliRunner().invoke(app, ["zoo", "train", "--preset", "test", "--out",
                                   str(tmp_path / "zoo")])
    assert res.exit_code == 0, res.output
    n_models = len(population("test"))
    assert f"{n_models} models in" in res.output and "accuracy" in res.output
    assert "reconstruction MSE" in res.output and "FLOPs" in res.output
    listing = CliRunner().invoke(app, ["zoo", "data"])
    assert listing.exit_code == 0 and "fashion-mnist-train" in listing.output


def test_forward_from_any_layer_reproduces_the_network() -> None:
    from repscope.extract import extract_torch
    from repscope.zoo.architectures import build_network

    x = torch.as_tensor(_images(6, 3).images)
    for fam, width in (("mlp", 8), ("cnn", 2), ("mixer", 8), ("autoencoder", 8)):
        net = build_network(fam, width, 2).eval()
        with torch.no_grad():
            out = net(x)
            reps = extract_torch(net, x.numpy(), net.layer_names)
            for layer in net.layer_names:
                again = net.forward_from(layer, torch.as_tensor(np.asarray(reps[layer])))
                assert torch.allclose(again, out, atol=1e-5), (fam, layer)
