"""CIFAR-10 pipeline: batch format, ResNet-18 architecture, tiny end-to-end run."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from repscope.cli import main as cli_main
from repscope.identifiability import DatasetNotFoundError
from repscope.identifiability.experiments.cifar10 import (
    load_cifar10,
    resnet18_cifar,
    write_cifar10_batches,
)

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"]


def _images(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 10, size=n)
    base = (y * 25.0)[:, None, None, None]
    x = np.clip(base + rng.normal(0, 30, size=(n, 3, 32, 32)), 0, 255).astype(np.uint8)
    return x, y


@pytest.fixture
def tiny_cifar(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (xtr, ytr), (xte, yte) = _images(rng, 40), _images(rng, 16)
    return write_cifar10_batches(tmp_path / "cifar-10-batches-py", xtr, ytr, xte, yte, NAMES)


def test_batches_have_the_official_layout(tiny_cifar: Path) -> None:
    names = sorted(p.name for p in tiny_cifar.iterdir())
    assert names == ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3",
                     "data_batch_4", "data_batch_5", "test_batch"]
    with open(tiny_cifar / "data_batch_1", "rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    assert {b"data", b"labels", b"batch_label", b"filenames"} <= set(d)
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (8, 3072)
    assert isinstance(d[b"labels"], list)
    with open(tiny_cifar / "batches.meta", "rb") as fh:
        meta = pickle.load(fh, encoding="bytes")
    assert meta[b"label_names"][0] == b"airplane"


def test_load_roundtrip(tiny_cifar: Path, tmp_path: Path) -> None:
    data = load_cifar10(tiny_cifar.parent)  # finds the cifar-10-batches-py subdirectory
    assert data.x_train.shape == (40, 3, 32, 32) and data.x_test.shape == (16, 3, 32, 32)
    assert data.label_names == tuple(NAMES)
    rng = np.random.default_rng(0)
    (xtr, ytr), _ = _images(rng, 40), _images(rng, 16)
    np.testing.assert_array_equal(data.x_train, xtr)
    np.testing.assert_array_equal(data.y_train, ytr)
    # the red plane of an image is the first 1024 bytes of its row (row-major 32 × 32)
    with open(tiny_cifar / "data_batch_1", "rb") as fh:
        row = pickle.load(fh, encoding="bytes")[b"data"][0]
    np.testing.assert_array_equal(data.x_train[0, 0], row[:1024].reshape(32, 32))


def test_missing_data_gives_a_clear_error(tmp_path: Path, tiny_cifar: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist.*cifar-10-python.tar.gz"):
        load_cifar10(tmp_path / "nowhere")
    (tiny_cifar / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="lacks data_batch_3"):
        load_cifar10(tiny_cifar)
    bad = tmp_path / "bad"
    write_cifar10_batches(bad, *_images(np.random.default_rng(1), 10),
                          *_images(np.random.default_rng(2), 4), NAMES)
    with open(bad / "test_batch", "wb") as fh:
        pickle.dump({b"data": np.zeros((4, 10), np.uint8), b"labels": [0] * 4}, fh)
    with pytest.raises(DatasetNotFoundError, match="3072"):
        load_cifar10(bad)


def test_resnet18_architecture() -> None:
    net = resnet18_cifar(10)
    # the CIFAR ResNet-18 with a 10-way head has 11,173,962 parameters
    assert sum(p.numel() for p in net.parameters()) == 11_173_962
    assert isinstance(net.stem[0], torch.nn.Conv2d) and net.stem[0].kernel_size == (3, 3)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    small = resnet18_cifar(3, base_width=4).eval()
    with torch.no_grad():
        assert small(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_cifar10_pipeline_end_to_end(tiny_cifar: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["paper", "cifar10", "--data-dir", str(tiny_cifar), "--out", str(out),
            "--dims", "2,3", "--seeds", "2", "--steps", "3", "--batch-size", "8",
            "--base-width", "4", "--eval-every", "2", "--n-candidates", "10", "--threads", "1",
            "--device", "cpu", "--json", "--no-progress"]
    res = CliRunner().invoke(cli_main.app, args)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [(r["dim"], r["seed_a"], r["seed_b"]) for r in rows] == [(2, 0, 1), (3, 0, 1)]
    for r in rows:
        assert 0.0 <= r["m_cca_f_test"] <= 1.0 and 0.0 <= r["m_cca_f_train"] <= 1.0
        assert r["loss_diff"] == pytest.approx(abs(r["test_loss_a"] - r["test_loss_b"]))
        assert r["kl"] >= 0 and np.isfinite(r["test_loss_a"])
    for name in ("pairs.csv", "fig5_loss_diff_vs_mcca.png", "fig5_loss_diff_vs_mcca.svg",
                 "fig3_left_embeddings.png", "fig3_left_embeddings.svg", "models/M2_seed1.pt"):
        assert (out / name).is_file(), name
    z = np.load(out / "models" / "M3_seed0.npz", allow_pickle=False)
    assert z["F_train"].shape == (40, 3) and z["F_test"].shape == (16, 3)
    assert z["G"].shape == (10, 3) and z["test_loss_log"].shape == (1,)
    # resumable: a second run with a third seed trains only the new models
    before = {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*.npz")}
    res2 = CliRunner().invoke(cli_main.app, [*args[:-2], "--seeds", "3", "--no-progress"])
    assert res2.exit_code == 0, res2.output
    after = {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*.npz")}
    assert {k: after[k] for k in before} == before and len(after) == 6
    assert len(pd.read_csv(out / "pairs.csv")) == 6


def test_cli_reports_missing_data_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["repscope", "paper", "cifar10", "--data-dir",
                                      str(tmp_path / "absent"), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exc:
        cli_main.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 not found" in err and "data_batch_1" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cifar10_pipeline_on_gpu(tiny_cifar: Path, tmp_path: Path) -> None:
    from repscope.identifiability.experiments.cifar10 import run_cifar10

    df = run_cifar10(tiny_cifar, tmp_path, dims=(2,), seeds=2, steps=4, batch_size=8,
                     base_width=8, eval_every=2, n_candidates=10, device="auto",
                     progress=False)
    assert len(df) == 1 and 0 <= df.m_cca_f_test.iloc[0] <= 1
    ckpt = torch.load(tmp_path / "models" / "M2_seed0.pt", weights_only=True)
    assert ckpt["device"].startswith("cuda")
    assert next(iter(ckpt["f"].values())).device.type == "cpu"  # portable checkpoints
